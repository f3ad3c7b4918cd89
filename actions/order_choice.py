"""Which offered order the customer meant when they typed instead of tapping a button.

``action_ask_order_id`` offers a logged-in customer buttons like
"尾号3013 · 牛仔裤 · 已签收". Customers often answer in words: 好的 / 是的 (one
order offered), 第二个 / 2, 尾号3013, 牛仔裤那个. This module maps such an
answer to one of the offered orders, or to nothing when it is ambiguous. The
caller still checks that the customer owns the order.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker

from actions.conversation import (
    bot_messages_before_latest_message,
    digits,
    latest_intent,
    latest_text,
    small_number,
)
from kefu_nlu.normalize import normalize_text

ORDINAL = re.compile(r"(?:就|要|选)?(?:是)?第?([1-9]|[一二两三四五六七八九])"
                     r"(?:个|笔|单|条)?(?:订单)?(?:吧|啊|呀|哦)?")
TAIL_DIGITS = 4
TITLE_SEPARATOR = " · "


@dataclass(frozen=True)
class Offer:
    """One order button: the order number and the words on the button."""

    order_id: str
    title: str

    @property
    def item(self) -> str:
        """The product named on the button (second part of the title)."""
        parts = self.title.split(TITLE_SEPARATOR)
        return parts[1].strip() if len(parts) > 1 else ""


def _order_id(payload: str) -> Optional[str]:
    """The order number in a button payload ``/inform{"order_id": "..."}``."""
    if not payload.startswith("/inform{"):
        return None
    try:
        value = json.loads(payload[len("/inform"):]).get("order_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value.isdigit() else None


def offered_orders(tracker: Tracker) -> List[Offer]:
    """The order buttons the bot showed right before the latest user message."""
    for message in bot_messages_before_latest_message(tracker):
        buttons: List[Dict[str, Any]] = (message.get("data") or {}).get("buttons") or []
        offers = [Offer(order_id, str(b.get("title") or "")) for b in buttons
                  if (order_id := _order_id(str(b.get("payload") or "")))]
        if offers:
            return offers
    return []


def _by_position(text: str, offers: List[Offer]) -> Optional[Offer]:
    match = ORDINAL.fullmatch(text)
    if match is None:
        return None
    token = match.group(1)
    position = small_number(token)
    return offers[position - 1] if position <= len(offers) else None


def _unique(candidates: List[Offer]) -> Optional[Offer]:
    return candidates[0] if len(candidates) == 1 else None


def chosen_order(tracker: Tracker) -> Optional[str]:
    """The offered order the latest message picks, or None (ambiguous, or nothing offered)."""
    offers = offered_orders(tracker)
    text = normalize_text(latest_text(tracker) or "").strip().rstrip("。！!~～ ")
    if not offers or not text:
        return None
    if latest_intent(tracker) == "affirm" and len(offers) == 1:
        return offers[0].order_id
    picked = _by_position(text, offers)
    if picked is None and len(digits(text)) == TAIL_DIGITS:
        picked = _unique([o for o in offers if o.order_id.endswith(digits(text))])
    if picked is None:
        picked = _unique([o for o in offers if len(o.item) >= 2 and o.item in text])
    return picked.order_id if picked else None
