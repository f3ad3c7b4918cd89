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


def latest_text(tracker: Tracker) -> Optional[str]:
    """The text of the latest user message as the customer sent it."""
    return (tracker.latest_message or {}).get("text")
