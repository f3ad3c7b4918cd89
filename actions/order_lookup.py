"""Choosing the order and proving ownership (``order_form``).

- ``action_prepare_order_task`` starts a task: remembers it, resolves who the
  customer is, keeps the order in focus only if it still fits, and stops
  early while verification is locked.
- ``action_ask_order_id`` offers a logged-in customer their relevant recent
  orders as buttons, and asks anyone else to type the number.
- ``validate_order_form`` checks the number and, for anonymous customers,
  the phone number on the order (3 wrong answers lock for 15 minutes).

An order that does not exist and an order of someone else get the same
answer, so nobody learns which order numbers exist.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import clock
from actions.backends.base import ShopBackend
from actions.backends.factory import get_backend
from actions.backends.models import Order
from actions.conversation import digits, latest_entity_values, latest_intent
from actions.identity import (
    failure_events,
    locked_until,
    phone_matches,
    resolve_identity,
    verified_events,
)
from actions.labels import label
from actions.order_choice import TITLE_SEPARATOR, chosen_order
from actions.order_tasks import TASK_DETAIL_SLOTS, relevant_statuses, task_for_intent
from actions.services import Events, ShopAction, ShopFormValidation

ORDER_BUTTONS = 5


def order_digits(value: Any) -> Optional[str]:
    """The order number in ``value`` if it is 12-20 digits, else ``None``."""
    number = digits(value)
    return number if 12 <= len(number) <= 20 else None


def order_button(order: Order) -> Dict[str, str]:
    """A button naming an order by its tail, first item and status."""
    item = order.items[0].name if order.items else ""
    title = TITLE_SEPARATOR.join([f"尾号{order.id[-4:]}", item, label("order_status", order.status)])
    payload = "/inform" + json.dumps({"order_id": order.id}, ensure_ascii=False)
    return {"title": title, "payload": payload}


def order_in_focus_fits(order: Optional[Order], task: str) -> bool:
    """Keep the order in focus for a new task only if its status fits."""
    statuses = relevant_statuses(task)
    return order is not None and (statuses is None or order.status in statuses)


class ActionPrepareOrderTask(ShopAction):
    """Start an order task (see module docstring)."""

    def name(self) -> Text:
        return "action_prepare_order_task"

    def run_with(self, backend: ShopBackend, dispatcher: CollectingDispatcher,
                 tracker: Tracker, domain: DomainDict) -> Events:
        intent = latest_intent(tracker)
        task = task_for_intent(intent) or tracker.get_slot("order_task") or "status"
        identity, events = resolve_identity(tracker)
        events += [SlotSet("order_task", task), SlotSet("handoff_reason", None)]
        events += [SlotSet(s, None) for s in TASK_DETAIL_SLOTS]
        order_id = self._order_in_focus(backend, tracker, identity, task)
        events.append(SlotSet("order_id", order_id))
        verified = order_id is not None and order_id in identity.verified_orders
        if not identity.logged_in and not verified and locked_until(tracker, clock.now()):
            dispatcher.utter_message(response="utter_verification_locked")
            return events + [SlotSet("task_stage", "blocked"),
                             SlotSet("handoff_reason", "verification_locked")]
        return events + [SlotSet("task_stage", "collect_order")]

    @staticmethod
    def _order_in_focus(backend: ShopBackend, tracker: Tracker, identity: Any,
                        task: str) -> Optional[str]:
        """The order the task is about: named in this message, or kept."""
        named = latest_entity_values(tracker, "order_id")
        if named:
            return order_digits(named[-1])
        current = order_digits(tracker.get_slot("order_id"))
        if current is None:
            return None
        order = backend.get_order(current)
        if order is None or not identity.owns(order):
            return None
        return current if order_in_focus_fits(order, task) else None


class ActionAskOrderId(ShopAction):
    """Ask which order: buttons for logged-in customers, else type it."""

    def name(self) -> Text:
        return "action_ask_order_id"

    def run_with(self, backend: ShopBackend, dispatcher: CollectingDispatcher,
                 tracker: Tracker, domain: DomainDict) -> Events:
        identity, events = resolve_identity(tracker)
        if identity.logged_in:
            task = tracker.get_slot("order_task")
            orders = backend.list_orders(identity.customer_id, relevant_statuses(task),
                                         ORDER_BUTTONS)
            if orders:
                dispatcher.utter_message(response="utter_choose_order",
                                         buttons=[order_button(o) for o in orders])
                return events
        dispatcher.utter_message(response="utter_ask_order_id")
        return events


class ValidateOrderForm(ShopFormValidation):
    """Validate the order number and, for anonymous customers, the phone."""

    def name(self) -> Text:
        return "validate_order_form"

    def events_when_backend_down(self) -> List[Dict[Text, Any]]:
        return [SlotSet("order_id", None)]

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[Text]:
        identity, _events = resolve_identity(tracker)
        order_id = tracker.get_slot("order_id")
        if identity.logged_in or (order_id and order_id in identity.verified_orders):
            return ["order_id"]
        return ["order_id", "verify_phone"]

    def validate_order_id(self, value: Any, dispatcher: CollectingDispatcher,
                          tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        order_id = order_digits(value) or chosen_order(tracker)
        if order_id is None:
            dispatcher.utter_message(response="utter_order_id_invalid")
            return {"order_id": None}
        identity, _events = resolve_identity(tracker)
        if identity.logged_in or order_id in identity.verified_orders:
            order = get_backend().get_order(order_id)
            if order is None or not identity.owns(order):
                dispatcher.utter_message(response="utter_order_not_found")
                return {"order_id": None}
        # anonymous: existence is revealed only after the phone matches
        return {"order_id": order_id}

    def validate_verify_phone(self, value: Any, dispatcher: CollectingDispatcher,
                              tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        now = clock.now()
        if locked_until(tracker, now):
            dispatcher.utter_message(response="utter_verification_locked")
            return {"verify_phone": "locked"}
        number = digits(value)
        if len(number) not in (4, 11):
            dispatcher.utter_message(response="utter_ask_verify_phone_format")
            return {"verify_phone": None}
        backend = get_backend()
        order = backend.get_order(tracker.get_slot("order_id") or "")
        owner = backend.get_customer(order.customer_id) if order else None
        if order is not None and phone_matches(number, order, owner):
            return {"verify_phone": "ok", **_slot_dict(verified_events(tracker, order.id))}
        locked, events = failure_events(tracker, now)
        if locked:
            dispatcher.utter_message(response="utter_verification_locked")
            return {"verify_phone": "locked", "handoff_reason": "verification_locked",
                    **_slot_dict(events)}
        dispatcher.utter_message(response="utter_verification_failed")
        return {"verify_phone": None, "order_id": None, **_slot_dict(events)}


def _slot_dict(events: List[Dict[Text, Any]]) -> Dict[Text, Any]:
    """``SlotSet`` events as a ``{slot: value}`` dict for form validation."""
    return {event["name"]: event["value"] for event in events if event.get("event") == "slot"}
