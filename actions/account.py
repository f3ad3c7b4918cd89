"""Membership, points and coupons of the logged-in customer."""
from __future__ import annotations

from decimal import Decimal
from typing import List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import clock
from actions.backends.base import ShopBackend
from actions.backends.models import Coupon, Order
from actions.identity import resolve_identity
from actions.labels import label
from actions.order_actions import owned_order
from actions.order_info import fmt_day, tail
from actions.services import Events, ShopAction

POINTS_PER_YUAN = 100


def points_value(points: int) -> str:
    """What ``points`` are worth in yuan (100 points = 1 yuan)."""
    return f"{Decimal(points) / POINTS_PER_YUAN:.2f}"


def coupon_problem(coupon: Coupon, order: Optional[Order]) -> Optional[str]:
    """Why ``coupon`` cannot be used (on ``order``), as a response name."""
    if coupon.used:
        return "utter_coupon_used"
    if coupon.expires_at <= clock.now():
        return "utter_coupon_expired"
    if order is not None and order.total < coupon.min_spend:
        return "utter_coupon_below_min_spend"
    return None


def coupon_line(coupon: Coupon) -> str:
    """``满199减30（12月31日到期）``."""
    return (f"· {coupon.title}：满{coupon.min_spend:.0f}减{coupon.amount:.0f}"
            f"（{fmt_day(coupon.expires_at)}到期）")


class ActionCheckMembership(ShopAction):
    """Tier, points and their value; anonymous customers are asked to log in."""

    def name(self) -> Text:
        return "action_check_membership"

    def run_with(self, backend: ShopBackend, dispatcher: CollectingDispatcher,
                 tracker: Tracker, domain: DomainDict) -> Events:
        identity, events = resolve_identity(tracker)
        customer = backend.get_customer(identity.customer_id) if identity.logged_in else None
        if customer is None:
            dispatcher.utter_message(response="utter_login_needed")
            return events
        dispatcher.utter_message(response="utter_membership", tier=label("tier", customer.tier),
                                 points=customer.points, value=points_value(customer.points))
        return events


class ActionCheckCoupon(ShopAction):
    """Usable coupons with conditions and expiry, and why others can't be used."""

    def name(self) -> Text:
        return "action_check_coupon"

    def run_with(self, backend: ShopBackend, dispatcher: CollectingDispatcher,
                 tracker: Tracker, domain: DomainDict) -> Events:
        identity, events = resolve_identity(tracker)
        if not identity.logged_in:
            dispatcher.utter_message(response="utter_login_needed")
            return events
        order = owned_order(backend, tracker)
        coupons = backend.list_coupons(identity.customer_id)
        usable = [c for c in coupons if coupon_problem(c, None) is None]
        self._tell_usable(usable, dispatcher)
        if order is not None:
            self._tell_order_problems(usable, order, dispatcher)
        return events

    @staticmethod
    def _tell_usable(usable: List[Coupon], dispatcher: CollectingDispatcher) -> None:
        if usable:
            dispatcher.utter_message(response="utter_coupons", count=len(usable),
                                     coupons="\n".join(coupon_line(c) for c in usable))
        else:
            dispatcher.utter_message(response="utter_no_coupons")

    @staticmethod
    def _tell_order_problems(usable: List[Coupon], order: Order,
                             dispatcher: CollectingDispatcher) -> None:
        for coupon in usable:
            problem = coupon_problem(coupon, order)
            if problem:
                dispatcher.utter_message(response=problem, title=coupon.title,
                                         min_spend=f"{coupon.min_spend:.0f}",
                                         total=f"{order.total:.2f}", order_tail=tail(order))
