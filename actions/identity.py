"""Who the customer is, and which orders they may see.

- A logged-in customer sends message metadata ``customer_token``: an HS256
  JWT signed with ``KEFU_CUSTOMER_TOKEN_SECRET`` whose ``sub`` is the
  customer id and with a required ``exp``. Invalid or expired tokens are
  ignored (anonymous) and logged without the token.
- An anonymous customer proves ownership of one order with its number and
  the phone number on it (full or last 4 digits). Three wrong answers lock
  verification for the conversation for 15 minutes.

Identity lives in slots that only actions can set (custom mappings), so a
customer cannot claim an identity by typing entities.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

import jwt
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from actions.backends.models import Customer, Order
from actions.conversation import digits

logger = logging.getLogger(__name__)

TOKEN_METADATA_KEY = "customer_token"
SECRET_ENV = "KEFU_CUSTOMER_TOKEN_SECRET"
MAX_FAILURES = 3
LOCK_DURATION = timedelta(minutes=15)


def customer_id_from_token(token: Any, secret: Optional[str]) -> Optional[str]:
    """The ``sub`` of a valid token, else ``None`` (logged, token never shown)."""
    if not token or not isinstance(token, str):
        return None
    if not secret:
        logger.warning("customer_token received but %s is not set; treated as anonymous",
                       SECRET_ENV)
        return None
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        logger.info("expired customer_token ignored")
        return None
    except jwt.InvalidTokenError as error:
        logger.warning("invalid customer_token ignored (%s)", type(error).__name__)
        return None
    subject = claims.get("sub")
    return str(subject) if subject not in (None, "") else None


@dataclass(frozen=True)
class Identity:
    """The verified customer (if logged in) and orders proven by phone."""

    customer_id: Optional[str]
    verified_orders: FrozenSet[str]

    @property
    def logged_in(self) -> bool:
        return self.customer_id is not None

    def owns(self, order: Order) -> bool:
        """True when this customer may see and change ``order``."""
        if self.customer_id is not None and order.customer_id == self.customer_id:
            return True
        return order.id in self.verified_orders


def _metadata(tracker: Tracker) -> Dict[str, Any]:
    metadata = (tracker.latest_message or {}).get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def resolve_identity(tracker: Tracker) -> Tuple[Identity, List[Dict[str, Any]]]:
    """The identity for this turn and the slot events that record it.

    A token in the latest message decides (valid: that customer; invalid:
    anonymous); without one, the identity recorded earlier stays.
    """
    metadata = _metadata(tracker)
    previous = tracker.get_slot("customer_id")
    if TOKEN_METADATA_KEY in metadata:
        customer_id = customer_id_from_token(metadata.get(TOKEN_METADATA_KEY),
                                             os.environ.get(SECRET_ENV))
    else:
        customer_id = previous
    events = [SlotSet("customer_id", customer_id)] if customer_id != previous else []
    verified = frozenset(tracker.get_slot("verified_order_ids") or [])
    return Identity(customer_id, verified), events


def phone_matches(answer: Optional[str], order: Order, owner: Optional[Customer]) -> bool:
    """Does ``answer`` (11 digits, or the last 4) match a phone on the order?"""
    number = digits(answer)
    phones = {order.address.phone} | ({owner.phone} if owner else set())
    if len(number) == 11:
        return number in phones
    if len(number) == 4:
        return any(phone.endswith(number) for phone in phones)
    return False


def locked_until(tracker: Tracker, now: datetime) -> Optional[datetime]:
    """When the verification lock ends, or ``None`` if not locked."""
    value = tracker.get_slot("verification_locked_until")
    if not value:
        return None
    until = datetime.fromisoformat(value)
    return until if until > now else None


def failure_events(tracker: Tracker, now: datetime) -> Tuple[bool, List[Dict[str, Any]]]:
    """Record one wrong answer; ``(locked_now, events)``."""
    failures = int(tracker.get_slot("verification_failures") or 0) + 1
    if failures >= MAX_FAILURES:
        until = (now + LOCK_DURATION).isoformat()
        return True, [SlotSet("verification_failures", 0),
                      SlotSet("verification_locked_until", until)]
    return False, [SlotSet("verification_failures", failures)]


def verified_events(tracker: Tracker, order_id: str) -> List[Dict[str, Any]]:
    """Slot events recording that ``order_id`` was proven by phone."""
    verified = list(tracker.get_slot("verified_order_ids") or [])
    if order_id not in verified:
        verified.append(order_id)
    return [SlotSet("verified_order_ids", verified), SlotSet("verification_failures", 0)]
