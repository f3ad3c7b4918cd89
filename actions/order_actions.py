"""Order task actions: answer or start a change once the order is known.

- ``action_order_task`` runs when ``order_form`` is done: it re-checks that
  the verified customer owns the order, then answers read tasks or checks
  whether a change may start (then ``details_form`` collects the details).
- ``validate_details_form`` validates reason, address, invoice data and asks
  for confirmation; ``action_apply_order_change`` performs the change.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import clock, order_changes, order_info
from actions.backends.base import ShopBackend
from actions.backends.models import Order
from actions.identity import locked_until, resolve_identity
from actions.services import Events, ShopAction, ShopFormValidation

READ_TASKS = ("status", "track", "urge", "payment", "refund_status")
DETAIL_SLOTS = ("after_sale_reason", "new_address", "invoice_title",
                "invoice_tax_number", "invoice_email", "confirmed")


def owned_order(backend: ShopBackend, tracker: Tracker) -> Optional[Order]:
    """The order in focus if the verified customer may see it, else ``None``."""
    identity, _events = resolve_identity(tracker)
    order_id = tracker.get_slot("order_id")
    order = backend.get_order(order_id) if order_id else None
    return order if order is not None and identity.owns(order) else None


def answer_read_task(task: str, order: Order, backend: ShopBackend,
                     dispatcher: CollectingDispatcher) -> Events:
    """Answer status, tracking, urge, payment and refund-status tasks."""
    if task == "track":
        order_info.tell_tracking(order, dispatcher)
        if order.status == "delivered":
            # "签收了但没收到" is for a person to decide
            return [SlotSet("handoff_reason", "delivery_dispute")]
    elif task == "urge":
        order_info.urge(order, backend, dispatcher)
    elif task == "payment":
        return order_info.payment(order, dispatcher)
    elif task == "refund_status":
        order_info.refund_status(order, backend, dispatcher)
    else:
        order_info.tell_status(order, dispatcher)
    return []


class ActionOrderTask(ShopAction):
    """Carry out the order task once the order is chosen and verified."""

    def name(self) -> Text:
        return "action_order_task"

    def run_with(self, backend: ShopBackend, dispatcher: CollectingDispatcher,
                 tracker: Tracker, domain: DomainDict) -> Events:
        order = owned_order(backend, tracker)
        if order is None:
            return self._not_verified(tracker, dispatcher)
        task = tracker.get_slot("order_task") or "status"
        if task in READ_TASKS:
            return answer_read_task(task, order, backend, dispatcher) + [
                SlotSet("task_stage", "done")]
        if not order_changes.check_eligibility(task, order, backend, dispatcher):
            return [SlotSet("task_stage", "done")]
        return [SlotSet("task_stage", "collect_details")]

    @staticmethod
    def _not_verified(tracker: Tracker, dispatcher: CollectingDispatcher) -> Events:
        if locked_until(tracker, clock.now()):
            return [SlotSet("task_stage", "blocked")]
        dispatcher.utter_message(response="utter_order_not_found")
        return [SlotSet("task_stage", "done"), SlotSet("order_id", None)]


class ValidateDetailsForm(ShopFormValidation):
    """Collect and check what a change needs, then ask for confirmation."""

    def name(self) -> Text:
        return "validate_details_form"

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[Text]:
        return order_changes.details_needed(tracker.get_slot("order_task") or "",
                                            tracker.get_slot("invoice_title"))

    def validate_after_sale_reason(self, value: Any, dispatcher: CollectingDispatcher,
                                   tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        reason = str(value or "").strip()[:200]
        if len(reason) < 2:
            dispatcher.utter_message(response="utter_ask_after_sale_reason")
            return {"after_sale_reason": None}
        return {"after_sale_reason": reason}

    def validate_new_address(self, value: Any, dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if order_changes.parse_address(str(value or "")) is None:
            dispatcher.utter_message(response="utter_address_invalid")
            return {"new_address": None}
        return {"new_address": str(value)}

    def validate_invoice_title(self, value: Any, dispatcher: CollectingDispatcher,
                               tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        title = str(value or "").strip()
        if title in ("个人", "个人发票", "自己", "我自己"):
            return {"invoice_title": "个人", "invoice_tax_number": None}
        if not 4 <= len(title) <= 60:
            dispatcher.utter_message(response="utter_invoice_title_invalid")
            return {"invoice_title": None}
        return {"invoice_title": title}

    def validate_invoice_tax_number(self, value: Any, dispatcher: CollectingDispatcher,
                                    tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        code = "".join(str(value or "").split()).upper()
        if not order_changes.valid_tax_number(code):
            dispatcher.utter_message(response="utter_tax_number_invalid")
            return {"invoice_tax_number": None}
        return {"invoice_tax_number": code}

    def validate_invoice_email(self, value: Any, dispatcher: CollectingDispatcher,
                               tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        email = str(value or "").strip()
        if not order_changes.valid_email(email):
            dispatcher.utter_message(response="utter_email_invalid")
            return {"invoice_email": None}
        return {"invoice_email": email}

    def validate_confirmed(self, value: Any, dispatcher: CollectingDispatcher,
                           tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return {"confirmed": bool(value)}


class ActionAskConfirmed(ShopAction):
    """Summarise the change (masked) and ask the customer to confirm it."""

    def name(self) -> Text:
        return "action_ask_confirmed"

    def run_with(self, backend: ShopBackend, dispatcher: CollectingDispatcher,
                 tracker: Tracker, domain: DomainDict) -> Events:
        order = owned_order(backend, tracker)
        if order is not None:
            slots = {name: tracker.get_slot(name) for name in DETAIL_SLOTS}
            order_changes.ask_confirmation(tracker.get_slot("order_task") or "", order,
                                           slots, dispatcher)
        return []


class ActionApplyOrderChange(ShopAction):
    """Perform the change the customer confirmed (or drop it)."""

    def name(self) -> Text:
        return "action_apply_order_change"

    def run_with(self, backend: ShopBackend, dispatcher: CollectingDispatcher,
                 tracker: Tracker, domain: DomainDict) -> Events:
        order = owned_order(backend, tracker)
        task = tracker.get_slot("order_task") or ""
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found")
            return [SlotSet("task_stage", "done")]
        if not tracker.get_slot("confirmed"):
            return order_changes.decline(task, order, dispatcher)
        slots = {name: tracker.get_slot(name) for name in DETAIL_SLOTS}
        events = order_changes.apply_change(task, order, slots, backend, dispatcher)
        return events + [SlotSet("task_stage", "done")]
