"""Let waiting customers leave the queue by saying so.

While a customer waits for an agent the bot is paused, but Rasa still stores
every message with its NLU result. Each round ``QueueExitWatcher`` reads the
tracker of every *waiting* ticket (never an assigned one: then the customer
talks to the agent) and, if the customer wrote 取消 / 不用了 / ... or anything
parsed as ``deny`` after the ticket was opened, cancels the ticket, resumes
the bot and triggers ``EXTERNAL_queue_left`` (the bot confirms).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Dict, List, Sequence, Set

from actions.handoff.rasa_api import RasaClient, RasaError, RasaUnavailable
from actions.handoff.tickets import Ticket, TicketStore
from kefu_nlu.normalize import normalize_text

log = logging.getLogger(__name__)

LEAVE_INTENT = "deny"
LEAVE_TEXTS = frozenset({"取消", "取消排队", "不用了", "不排了", "算了"})
QUEUE_LEFT_INTENT = "EXTERNAL_queue_left"
# The bot paused without listening, so Rasa's rules (``intent: X`` means "after
# action_listen") would not match the external intent without this marker.
RESUME_EVENTS = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
_TRIM = " \t\r\n\u3000。.!！~～,，、…"

Event = Dict[str, Any]


def is_leave_request(event: Event) -> bool:
    """True for a customer message that asks to leave the queue."""
    if event.get("event") != "user" or (event.get("metadata") or {}).get("is_external"):
        return False
    intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
    if intent == LEAVE_INTENT:
        return True
    return normalize_text(str(event.get("text") or "")).strip(_TRIM) in LEAVE_TEXTS


def messages_while_queued(events: Sequence[Event], opened_at: datetime) -> List[Event]:
    """The events the customer caused after the ticket was opened.

    Rasa's own order decides when it can: the bot pauses the conversation
    right after opening the ticket, so everything after a still-active
    ``pause`` counts. Without one, events stamped after ``opened_at`` count
    (that compares Rasa's clock with the store's).
    """
    for index in range(len(events) - 1, -1, -1):
        kind = events[index].get("event")
        if kind == "resume":
            break
        if kind == "pause":
            return list(events[index + 1:])
    cutoff = opened_at.timestamp()
    return [e for e in events if float(e.get("timestamp") or 0) > cutoff]


def wants_to_leave(tracker: Dict[str, Any], ticket: Ticket) -> bool:
    """True if the customer asked to leave the queue since ``ticket`` was opened."""
    events = tracker.get("events") or []
    return any(is_leave_request(e) for e in messages_while_queued(events, ticket.created_at))


class QueueExitWatcher:
    """Cancels waiting tickets whose customer asked to leave; hands them back to the bot."""

    def __init__(self, store: TicketStore, rasa: RasaClient) -> None:
        self.store = store
        self.rasa = rasa
        self._unresumed: Set[str] = set()  # cancelled, but Rasa was down: resume next round

    async def run_once(self) -> int:
        """Check every waiting ticket once; returns how many customers left the queue.

        Raises ``RasaUnavailable`` (after the first failed call) so the caller
        can back off; cancelled tickets whose hand-back failed are retried.
        """
        for conversation_id in sorted(self._unresumed):
            await asyncio.to_thread(self._resume, conversation_id)
        left = 0
        for ticket in await asyncio.to_thread(self.store.waiting_queue):
            left += await asyncio.to_thread(self._check, ticket)
        return left

    def _check(self, ticket: Ticket) -> int:
        try:
            tracker = self.rasa.get_tracker(ticket.conversation_id)
        except RasaUnavailable:
            raise
        except RasaError as exc:  # e.g. 404: nothing to read, try again next round
            log.warning("reading tracker of ticket %s failed: %s", ticket.id, exc)
            return 0
        if not wants_to_leave(tracker, ticket):
            return 0
        if self.store.cancel_by_customer(ticket.conversation_id) is None:
            return 0  # an agent claimed it meanwhile: the customer stays with the agent
        log.info("customer left the queue (ticket %s)", ticket.id)
        self._unresumed.add(ticket.conversation_id)
        self._resume(ticket.conversation_id)
        return 1

    def _resume(self, conversation_id: str) -> None:
        """Resume the bot and let it confirm; on a refusal (4xx) give up."""
        try:
            self.rasa.append_events(conversation_id, RESUME_EVENTS)
            self.rasa.trigger_intent(conversation_id, QUEUE_LEFT_INTENT)
        except RasaUnavailable:
            raise  # stays in _unresumed
        except RasaError as exc:
            log.warning("handing conversation back after queue exit refused: %s", exc)
        self._unresumed.discard(conversation_id)
