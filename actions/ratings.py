"""Reading a 1-5 satisfaction rating (CSAT) from what the customer sent.

Customers answer the rating question with a button (``/rate_service{"rating":
"5"}``), a digit (``5``, ``５``, ``5分``), a Chinese numeral (``五分``,
``四星``) or words the NLU maps to a number (``非常满意`` -> 5).
"""
from __future__ import annotations

import re
from typing import Any, Optional

from rasa_sdk import Tracker

from actions.conversation import (
    bot_messages_before_latest_message,
    latest_entity_values,
    small_number,
)
from kefu_nlu.normalize import normalize_text

RATING_QUESTIONS = ("utter_ask_csat", "utter_ask_csat_bot")  # human service / the bot
# a whole answer that is just a rating: "5", "5分", "五星", "给4分！", "满分"
RATING = re.compile(r"(?:打|给)?\s*(\d+|[一二两三四五])\s*(?:分|星|颗星)?|满分")
TRAILING = "!！。~～. "


def rating_number(value: Any) -> Optional[int]:
    """1-5 from an entity value or a bare answer; None when it is not a valid rating."""
    text = normalize_text(str(value or "")).strip().rstrip(TRAILING)
    match = RATING.fullmatch(text)
    if match is None:
        return None
    token = match.group(1)
    if token is None:  # 满分
        return 5
    number = small_number(token)
    return number if 1 <= number <= 5 else None


def pending_rating_question(tracker: Tracker) -> Optional[str]:
    """The rating question (response name) the bot's last message asked, if it was one."""
    messages = bot_messages_before_latest_message(tracker)
    name = (messages[0].get("metadata") or {}).get("utter_action") if messages else None
    return name if name in RATING_QUESTIONS else None


def rating_value(tracker: Tracker) -> Optional[int]:
    """The rating in the latest message: one of its ``rating`` entities, else the whole text."""
    message = tracker.latest_message or {}
    for value in latest_entity_values(tracker, "rating") + [message.get("text")]:
        rating = rating_number(value)
        if rating is not None:
            return rating
    return None
