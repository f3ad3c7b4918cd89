"""Changes to an order: cancel, return, refund, new address, invoice.

``check_eligibility`` decides whether a change may start (and utters why
not); ``details_form`` collects what the change needs (reason, address,
invoice data, confirmation); ``apply_change`` performs it. Every write is
idempotent in the backend: repeating a request never creates a second case.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Dict, List, Optional, Text

from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import clock
from actions.backends.base import NotAllowed, ShopBackend
from actions.backends.models import Address, Order
from actions.labels import label
from actions.masking import mask_address, mask_name, mask_phone
from actions.order_info import tail

RETURN_WINDOW = timedelta(days=7)
CHANGE_TASKS = ("cancel", "return", "refund", "address", "invoice")
Events = List[Dict[Text, Any]]

PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
REGION_RE = re.compile(r"^(.+?(?:省|自治区|市))?(.+?(?:市|自治州|盟|地区))?(.+?(?:区|县|旗|市))")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def details_needed(task: str, invoice_title: Optional[str] = None) -> List[str]:
    """Slots ``details_form`` asks for, in order, for ``task``."""
    if task == "cancel":
        return ["confirmed"]
    if task in ("return", "refund"):
        return ["after_sale_reason", "confirmed"]
    if task == "address":
        return ["new_address", "confirmed"]
    if task == "invoice":
        company = invoice_title not in (None, "个人")
        return ["invoice_title"] + (["invoice_tax_number"] if company else []) + [
            "invoice_email", "confirmed"]
    return []


def _open_case(order: Order, backend: ShopBackend) -> bool:
    return any(case.is_open for case in backend.list_after_sales(order.id))


def check_eligibility(task: str, order: Order, backend: ShopBackend,
                      dispatcher: CollectingDispatcher) -> bool:
    """May ``task`` start on ``order``? Utters the reason when not."""
    reason = _ineligible_reason(task, order, backend)
    if reason:
        dispatcher.utter_message(response=reason, order_tail=tail(order),
                                 status=label("order_status", order.status))
    return reason is None


def _ineligible_reason(task: str, order: Order, backend: ShopBackend) -> Optional[str]:
    """The response explaining why ``task`` cannot run, or ``None``."""
    status = order.status
    if task == "cancel":
        if status == "cancelled":
            return "utter_cancel_already"
        if status in ("shipped", "delivered"):
            return "utter_cancel_not_possible_shipped"
    elif task == "address" and status not in ("pending_payment", "paid"):
        return "utter_address_not_possible"
    elif task in ("return", "refund"):
        return _after_sale_reason(task, order, backend)
    elif task == "invoice" and status in ("pending_payment", "cancelled"):
        return "utter_invoice_not_possible"
    return None


def _after_sale_reason(task: str, order: Order, backend: ShopBackend) -> Optional[str]:
    if order.status in ("pending_payment", "cancelled"):
        return "utter_after_sale_not_paid"
    if _open_case(order, backend):
        return "utter_after_sale_open_case"
    if task == "return":
        if order.status != "delivered":
            return "utter_return_not_delivered"
        if order.delivered_at and clock.now() - order.delivered_at > RETURN_WINDOW:
            return "utter_return_window_passed"
    if task == "refund" and order.status == "delivered":
        return "utter_refund_needs_return"
    return None


def parse_address(text: str) -> Optional[Address]:
    """``张三 13800138000 上海市浦东新区 世纪大道100号`` -> ``Address``."""
    phone = PHONE_RE.search(text or "")
    if not phone:
        return None
    rest = (text[:phone.start()] + " " + text[phone.end():]).replace("，", " ").replace(",", " ")
    parts = rest.split()
    if len(parts) < 2:
        return None
    name, location = parts[0], "".join(parts[1:])
    region = REGION_RE.match(location)
    if not region or len(location) <= region.end() or not 1 < len(name) <= 10:
        return None
    return Address(name=name, phone=phone.group(), region=location[:region.end()],
                   detail=location[region.end():])


def valid_tax_number(value: str) -> bool:
    """Unified social credit code (统一社会信用代码): 18 chars with check digit."""
    code = (value or "").strip().upper()
    if len(code) != 18 or any(ch not in USCC_CHARS for ch in code):
        return False
    total = sum(USCC_CHARS.index(ch) * w for ch, w in zip(code[:17], USCC_WEIGHTS))
    return USCC_CHARS[(31 - total % 31) % 31] == code[17]


def valid_email(value: str) -> bool:
    """A plausible e-mail address."""
    return bool(EMAIL_RE.match((value or "").strip()))


def ask_confirmation(task: str, order: Order, slots: Dict[str, Any],
                     dispatcher: CollectingDispatcher) -> None:
    """Summarise the change and ask the customer to confirm it."""
    common = dict(order_tail=tail(order), total=f"{order.total:.2f}")
    if task == "address":
        address = parse_address(slots.get("new_address") or "")
        if address:
            common.update(name=mask_name(address.name), phone=mask_phone(address.phone),
                          address=mask_address(address.region, address.detail))
    if task == "invoice":
        common.update(title=slots.get("invoice_title") or "",
                      email=slots.get("invoice_email") or "")
    if task in ("return", "refund"):
        common.update(reason=slots.get("after_sale_reason") or "")
    dispatcher.utter_message(response=f"utter_confirm_{task}", **common)


def apply_change(task: str, order: Order, slots: Dict[str, Any], backend: ShopBackend,
                 dispatcher: CollectingDispatcher) -> Events:
    """Perform the confirmed change and tell the customer the outcome."""
    try:
        if task == "cancel":
            _, changed = backend.cancel_order(order.id)
            response = "utter_cancel_done" if changed else "utter_cancel_already"
            dispatcher.utter_message(response=response, order_tail=tail(order))
        elif task in ("return", "refund"):
            _create_case(task, order, slots, backend, dispatcher)
        elif task == "address":
            address = parse_address(slots.get("new_address") or "")
            if address is None:
                dispatcher.utter_message(response="utter_ask_new_address")
                return []
            backend.change_address(order.id, address)
            dispatcher.utter_message(response="utter_address_done", order_tail=tail(order),
                                     address=mask_address(address.region))
        elif task == "invoice":
            request, created = backend.create_invoice_request(
                order.id, slots.get("invoice_title") or "个人",
                slots.get("invoice_tax_number"), slots.get("invoice_email") or "")
            dispatcher.utter_message(response="utter_invoice_done", order_tail=tail(order),
                                     invoice_id=request.id, email=request.email)
    except NotAllowed as refusal:
        dispatcher.utter_message(response=_refusal_response(task, refusal.reason),
                                 order_tail=tail(order),
                                 status=label("order_status", order.status))
    return []


def _create_case(task: str, order: Order, slots: Dict[str, Any], backend: ShopBackend,
                 dispatcher: CollectingDispatcher) -> None:
    case_type = "return" if task == "return" else "refund"
    case, created = backend.create_after_sale(order.id, case_type, order.total,
                                              slots.get("after_sale_reason") or "")
    response = "utter_after_sale_created" if created else "utter_after_sale_exists"
    dispatcher.utter_message(response=response, order_tail=tail(order), case_id=case.id,
                             amount=f"{case.amount:.2f}",
                             case_type=label("after_sale_type", case.type))


def _refusal_response(task: str, reason: str) -> str:
    """The response for a backend refusal that raced with our checks."""
    if task == "cancel" and reason != "cancelled":
        return "utter_cancel_not_possible_shipped"
    if task == "address":
        return "utter_address_not_possible"
    return "utter_change_not_possible"


def decline(task: str, order: Order, dispatcher: CollectingDispatcher) -> Events:
    """The customer said no at the confirmation."""
    dispatcher.utter_message(response="utter_change_declined", order_tail=tail(order))
    return [SlotSet("task_stage", "done")]
