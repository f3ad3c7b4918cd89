"""Answers about one order: status, logistics, urging, payment, refunds.

Each function takes the order (ownership already checked) and utters the
answer from ``domain.yml``; none of them reveals the address or phone.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Text

from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import clock
from actions.backends.base import ShopBackend
from actions.backends.models import Order, Shipment
from actions.labels import label

DISPATCH_PROMISE = timedelta(hours=48)
TRANSIT_DAYS = 3
Events = List[Dict[Text, Any]]


def fmt_time(value: Optional[datetime]) -> str:
    """``11月23日 14:05`` in the shop's time zone."""
    if value is None:
        return ""
    local = value.astimezone(clock.SHOP_TIMEZONE)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def fmt_day(value: datetime) -> str:
    """``11月25日``."""
    local = value.astimezone(clock.SHOP_TIMEZONE)
    return f"{local.month}月{local.day}日"


def dispatch_deadline(order: Order) -> datetime:
    """When a paid order is promised to ship (48 h after payment)."""
    return (order.paid_at or order.created_at) + DISPATCH_PROMISE


def logistics_lines(shipment: Shipment) -> str:
    """The latest logistics events, newest first, one per line."""
    return "\n".join(f"· {fmt_time(e.time)} {e.location} {e.description}".rstrip()
                     for e in shipment.latest_events(3))


def expected_delivery(order: Order) -> str:
    """Expected delivery day of a shipped order."""
    return fmt_day((order.shipped_at or clock.now()) + timedelta(days=TRANSIT_DAYS))


def tail(order: Order) -> str:
    """Last four digits, how orders are named to customers."""
    return order.id[-4:]


def tell_status(order: Order, dispatcher: CollectingDispatcher) -> None:
    """The state of an order in plain Chinese."""
    status = label("order_status", order.status)
    if order.status == "paid":
        dispatcher.utter_message(response="utter_order_paid_not_shipped", order_tail=tail(order),
                                 status=status, dispatch_by=fmt_time(dispatch_deadline(order)))
    elif order.status in ("shipped", "delivered") and order.shipment:
        tell_tracking(order, dispatcher)
    else:
        dispatcher.utter_message(response="utter_order_status", order_tail=tail(order),
                                 status=status, created=fmt_time(order.created_at),
                                 total=f"{order.total:.2f}")


def tell_tracking(order: Order, dispatcher: CollectingDispatcher) -> None:
    """Carrier, tracking number, latest events and the expected delivery."""
    if order.shipment is None or order.status not in ("shipped", "delivered"):
        tell_status_not_shipped(order, dispatcher)
        return
    shipment = order.shipment
    common = dict(order_tail=tail(order), carrier=shipment.carrier,
                  tracking_number=shipment.tracking_number,
                  events=logistics_lines(shipment) or label("text", "no_logistics"))
    if order.status == "delivered":
        dispatcher.utter_message(response="utter_tracking_delivered",
                                 delivered=fmt_time(order.delivered_at), **common)
    else:
        dispatcher.utter_message(response="utter_tracking", eta=expected_delivery(order),
                                 **common)


def tell_status_not_shipped(order: Order, dispatcher: CollectingDispatcher) -> None:
    """A look-up of logistics for an order that has not shipped."""
    if order.status == "paid":
        tell_status(order, dispatcher)
    else:
        dispatcher.utter_message(response="utter_tracking_none", order_tail=tail(order),
                                 status=label("order_status", order.status))


def urge(order: Order, backend: ShopBackend, dispatcher: CollectingDispatcher) -> None:
    """Record an urge for an unshipped order (once a day); else track."""
    if order.status == "paid":
        first = backend.record_shipment_urge(order.id, clock.today())
        response = "utter_urge_recorded" if first else "utter_urge_already"
        dispatcher.utter_message(response=response, order_tail=tail(order),
                                 dispatch_by=fmt_time(dispatch_deadline(order)))
    elif order.status in ("shipped", "delivered"):
        tell_tracking(order, dispatcher)
    else:
        dispatcher.utter_message(response="utter_urge_not_possible", order_tail=tail(order),
                                 status=label("order_status", order.status))


def payment(order: Order, dispatcher: CollectingDispatcher) -> Events:
    """Payment state; charged-but-unpaid is explained and a human offered."""
    if order.status == "pending_payment":
        dispatcher.utter_message(response="utter_payment_pending", order_tail=tail(order))
        return [SlotSet("handoff_reason", "payment_dispute")]
    if order.status == "cancelled":
        dispatcher.utter_message(response="utter_payment_cancelled", order_tail=tail(order))
        return []
    dispatcher.utter_message(response="utter_payment_received", order_tail=tail(order),
                             paid=fmt_time(order.paid_at), total=f"{order.total:.2f}")
    return []


def refund_status(order: Order, backend: ShopBackend,
                  dispatcher: CollectingDispatcher) -> None:
    """The latest after-sales case of the order: status, amount, timing."""
    cases = backend.list_after_sales(order.id)
    if not cases:
        dispatcher.utter_message(response="utter_refund_none", order_tail=tail(order))
        return
    case = cases[0]
    response = "utter_refund_status_done" if not case.is_open else "utter_refund_status"
    dispatcher.utter_message(
        response=response, case_id=case.id, order_tail=tail(order),
        case_type=label("after_sale_type", case.type),
        case_status=label("after_sale_status", case.status),
        amount=f"{case.amount:.2f}",
    )
