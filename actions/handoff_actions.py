"""Human hand-over from the bot's side (人机协同).

- ``action_request_handoff``: on 转人工, a complaint, a second failed round or
  a case the bot may not decide (slot ``handoff_reason``). In service hours
  with an agent online it opens a ticket with the customer's (masked)
  profile, the order in focus, the reason and a summary, tells the queue
  position and wait, and pauses the bot; otherwise it takes a message and a
  callback preference (``callback_form``) for a ticket handled later.
- ``action_handoff_closed``: the agent closed; the bot asks for a rating.
- ``action_store_csat``: stores a 1-5 rating, on the ticket after a human
  hand-over, else as the bot's own rating (once per conversation).
- ``action_offer_csat``: after the customer thanks the bot for a resolved
  task, asks for a rating once per conversation.
- ``action_session_start``: a new session must not hand a conversation that
  a human owns (or that waits for one) back to the bot.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import clock
from actions.backends.base import BackendUnavailable
from actions.conversation import action_before_latest_message, latest_intent
from actions.ratings import pending_rating_question, rating_value
from actions.backends.factory import database_url, get_backend
from actions.handoff.tickets import HandoffError, Ticket, TicketStore, within_service_hours
from actions.identity import resolve_identity
from actions.intent_titles import load_titles
from actions.masking import mask_phone

logger = logging.getLogger(__name__)

SUMMARY_INTENTS = 6
SUMMARY_ANSWERS = 3
ANSWER_CHARS = 60
IGNORED_INTENTS = {"nlu_fallback", "request_human", "EXTERNAL_handoff_closed",
                   "EXTERNAL_queue_left", "session_start"}
Events = List[Dict[Text, Any]]


@lru_cache(maxsize=1)
def ticket_store() -> TicketStore:
    """The process-wide ticket store on the project database."""
    store = TicketStore(database_url())
    store.create_schema()
    return store


def workspace_url() -> str:
    return os.environ.get("KEFU_WORKSPACE_URL", "http://localhost:8081").rstrip("/")


def handoff_reason(tracker: Tracker) -> str:
    """Why the conversation goes to a human."""
    intent = latest_intent(tracker)
    if intent == "complain":
        return "complaint"
    if tracker.get_slot("handoff_reason"):
        return tracker.get_slot("handoff_reason")
    if action_before_latest_message(tracker) == "utter_offer_human":
        return "repeated_fallback"
    return "request_human"


def conversation_summary(tracker: Tracker) -> str:
    """Intents so far and the bot's latest answers, for the agent."""
    titles = load_titles()
    asked: List[str] = []
    for event in tracker.events:
        if event.get("event") != "user":
            continue
        parse = event.get("parse_data") or {}
        predicted = parse.get("intent") or {}
        intent = predicted.get("full_retrieval_intent_name") or predicted.get("name") or ""
        if intent in IGNORED_INTENTS:
            continue
        title = titles.get(intent, intent)
        if title and title not in asked:
            asked.append(title)
    answers = [str(e.get("text") or "")[:ANSWER_CHARS] for e in tracker.events
               if e.get("event") == "bot" and e.get("text")][-SUMMARY_ANSWERS:]
    parts = ["客户诉求：" + ("、".join(asked[-SUMMARY_INTENTS:]) or "未说明")]
    if answers:
        parts.append("机器人已答复：" + " / ".join(answers))
    return "\n".join(parts)


def customer_facts(tracker: Tracker) -> Dict[str, Optional[str]]:
    """Customer id, masked phone and tier (all ``None`` when anonymous)."""
    identity, _events = resolve_identity(tracker)
    facts: Dict[str, Optional[str]] = {"customer_id": None, "masked_phone": None, "tier": None,
                                       "order_id": None}
    try:
        backend = get_backend()
        if identity.logged_in:
            customer = backend.get_customer(identity.customer_id)
            if customer:
                facts.update(customer_id=customer.id, masked_phone=mask_phone(customer.phone),
                             tier=customer.tier)
        order_id = tracker.get_slot("order_id")
        order = backend.get_order(order_id) if order_id else None
        if order is not None and identity.owns(order):
            facts["order_id"] = order.id
    except BackendUnavailable as error:
        logger.warning("customer profile unavailable for the ticket: %s", error)
    return facts


def ticket_fields(tracker: Tracker, reason: str) -> Dict[str, Any]:
    """What every ticket records: conversation, reason, customer, summary."""
    return dict(
        conversation_id=tracker.sender_id,
        channel=tracker.get_latest_input_channel() or "unknown",
        reason=reason,
        summary=conversation_summary(tracker),
        **customer_facts(tracker),
    )


def link_transcript(store: TicketStore, ticket: Ticket) -> None:
    """Point the ticket at its page in the agent workspace."""
    if not ticket.transcript_url:
        store.set_transcript_url(ticket.id, f"{workspace_url()}/#/ticket/{ticket.id}")


def agents_available(store: TicketStore) -> bool:
    """In service hours and at least one agent online."""
    return within_service_hours(clock.now()) and store.agents_online() > 0


class ActionRequestHandoff(Action):
    """Queue the conversation for a human, or take a message (see module)."""

    def name(self) -> Text:
        return "action_request_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        try:
            store = ticket_store()
            if not agents_available(store):
                dispatcher.utter_message(response="utter_handoff_offline")
                return [SlotSet("handoff_stage", "offline"),
                        SlotSet("handoff_reason", handoff_reason(tracker))]
            return self._queue(store, dispatcher, tracker)
        except (HandoffError, BackendUnavailable, OSError) as error:
            logger.error("hand-over failed: %s", error)
            dispatcher.utter_message(response="utter_handoff_failed")
            return [SlotSet("handoff_stage", "failed")]

    @staticmethod
    def _queue(store: TicketStore, dispatcher: CollectingDispatcher, tracker: Tracker) -> Events:
        ticket = store.open_ticket(**ticket_fields(tracker, handoff_reason(tracker)))
        link_transcript(store, ticket)
        position = store.position(ticket.id) or 1
        wait = store.estimated_wait_minutes(ticket.id)
        store.set_last_notified_position(ticket.id, position)
        dispatcher.utter_message(response="utter_handoff_queued", queue_position=position,
                                 queue_wait_minutes=wait)
        # action_listen after the pause: when the agent hands back, rules for
        # EXTERNAL_* intents only match right after a listen
        return [SlotSet("handoff_stage", "queued"), SlotSet("handoff_reason", None),
                SlotSet("queue_position", position), SlotSet("queue_wait_minutes", wait),
                ConversationPaused(), ActionExecuted("action_listen")]


class ActionSubmitCallback(Action):
    """Create a callback ticket from the message left outside service hours."""

    def name(self) -> Text:
        return "action_submit_callback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        try:
            reason = tracker.get_slot("handoff_reason") or "request_human"
            store = ticket_store()
            ticket = store.open_callback_ticket(
                **ticket_fields(tracker, reason),
                message=str(tracker.get_slot("callback_message") or ""),
                preference=str(tracker.get_slot("callback_preference") or ""),
            )
            link_transcript(store, ticket)
        except (HandoffError, OSError) as error:
            logger.error("callback ticket failed: %s", error)
            dispatcher.utter_message(response="utter_handoff_failed")
            return []
        dispatcher.utter_message(response="utter_callback_done")
        return [SlotSet("handoff_reason", None), SlotSet("callback_message", None),
                SlotSet("callback_preference", None)]


class ActionHandoffClosed(Action):
    """The agent closed the conversation: the bot is back and asks for a rating."""

    def name(self) -> Text:
        return "action_handoff_closed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        dispatcher.utter_message(response="utter_handoff_closed")
        dispatcher.utter_message(response="utter_ask_csat")
        return [SlotSet("handoff_stage", None), SlotSet("csat_asked", True)]


class ActionStoreCsat(Action):
    """Store the customer's rating and thank them."""

    def name(self) -> Text:
        return "action_store_csat"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        rating = rating_value(tracker)
        if rating is None:  # ask again, the same question as before
            dispatcher.utter_message(
                response=pending_rating_question(tracker) or "utter_ask_csat_bot")
            return []
        try:
            store = ticket_store()
            if store.record_csat(tracker.sender_id, rating) is None:
                store.record_bot_csat(tracker.sender_id, rating)
        except (HandoffError, OSError) as error:
            logger.error("rating not stored: %s", error)
        dispatcher.utter_message(response="utter_rate_thanks")
        return [SlotSet("rating", None), SlotSet("csat_asked", True)]


class ActionOfferCsat(Action):
    """Ask for a rating once, after a task the bot resolved."""

    def name(self) -> Text:
        return "action_offer_csat"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        if tracker.get_slot("csat_asked") or tracker.get_slot("task_stage") != "done":
            return []
        dispatcher.utter_message(response="utter_ask_csat_bot")
        return [SlotSet("csat_asked", True)]


class ActionSessionStart(Action):
    """Start a session, keeping slots and a human's ownership of the conversation."""

    def name(self) -> Text:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        events: Events = [SessionStarted()]
        events += [SlotSet(name, value) for name, value in tracker.slots.items()
                   if value is not None and name != "requested_slot"]
        events.append(ActionExecuted("action_listen"))
        try:
            if ticket_store().active_ticket_for(tracker.sender_id) is not None:
                events.append(ConversationPaused())
        except (HandoffError, OSError) as error:
            logger.error("could not check the hand-over state: %s", error)
        return events
