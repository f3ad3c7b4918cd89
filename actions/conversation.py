"""Helpers that read facts about the conversation from a tracker."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Text

from rasa_sdk import Tracker

NLU_FALLBACK = "nlu_fallback"


def _user_intents_newest_first(events: Iterable[Dict[Text, Any]]) -> List[str]:
    """Intent names of the user messages in ``events``, newest first."""
    return [
        (event.get("parse_data") or {}).get("intent", {}).get("name") or ""
        for event in reversed(list(events))
        if event.get("event") == "user"
    ]


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the latest user messages in a row were not understood."""
    count = 0
    for intent in _user_intents_newest_first(tracker.events):
        if intent != NLU_FALLBACK:
            break
        count += 1
    return count


CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
                  "六": 6, "七": 7, "八": 8, "九": 9}


def small_number(token: str) -> int:
    """``"3"``, ``"３"`` or ``"三"`` as an int (the token must be one of those forms)."""
    return CHINESE_DIGITS[token] if token in CHINESE_DIGITS else int(token)


def digits(value: Any) -> str:
    """Only the digits of what the customer typed (``138 0013-8000`` -> ``13800138000``)."""
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def latest_entity_values(tracker: Tracker, entity: str) -> List[Any]:
    """Values of ``entity`` found in the latest user message, in order."""
    return [e.get("value") for e in (tracker.latest_message or {}).get("entities") or []
            if e.get("entity") == entity]


def action_before_latest_message(tracker: Tracker) -> Optional[str]:
    """The bot's last action (not ``action_listen``) before the latest user message."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_user:
                return None
            seen_user = True
        elif (seen_user and event.get("event") == "action"
              and event.get("name") != "action_listen"):
            return event.get("name")
    return None


def bot_messages_before_latest_message(tracker: Tracker) -> List[Dict[str, Any]]:
    """The bot messages between the previous and the latest user message, newest first."""
    messages: List[Dict[str, Any]] = []
    seen_user = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            if seen_user:
                break
            seen_user = True
        elif seen_user and kind == "bot":
            messages.append(event)
    return messages


def latest_intent(tracker: Tracker) -> Optional[str]:
    """The intent NLU gave the latest user message."""
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def latest_text(tracker: Tracker) -> Optional[str]:
    """The text of the latest user message as the customer sent it."""
    return (tracker.latest_message or {}).get("text")
