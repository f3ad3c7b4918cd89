"""Human handoff: the ticket queue shared by the bot and the agent workspace.

- ``tickets``: ``TicketStore`` (tickets, queue positions, wait estimates,
  agent accounts and sessions on SQLAlchemy Core) and
  ``within_service_hours``.
- ``rasa_api``: ``RasaClient``, a small client for Rasa's HTTP API used by the
  workspace to talk to customers.

Nothing here registers Rasa actions; importing it has no side effects.
"""
from actions.handoff.rasa_api import RasaClient, RasaError, RasaUnavailable
from actions.handoff.tickets import (
    Agent,
    AgentExists,
    HandoffError,
    NotAssignee,
    QueueEntry,
    Ticket,
    TicketConflict,
    TicketNotFound,
    TicketStore,
    within_service_hours,
)

__all__ = [
    "Agent",
    "AgentExists",
    "HandoffError",
    "NotAssignee",
    "QueueEntry",
    "RasaClient",
    "RasaError",
    "RasaUnavailable",
    "Ticket",
    "TicketConflict",
    "TicketNotFound",
    "TicketStore",
    "within_service_hours",
]
