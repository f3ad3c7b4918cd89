"""Build rasa-sdk trackers and run actions the way the action server does."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher


def user_event(text: str, intent: str, entities: Optional[List[dict]] = None,
               ranking: Optional[List[dict]] = None, selector: Optional[dict] = None,
               metadata: Optional[dict] = None) -> Dict[str, Any]:
    """A ``user`` event as stored in the tracker."""
    parse: Dict[str, Any] = {
        "text": text, "intent": {"name": intent, "confidence": 0.4},
        "intent_ranking": ranking or [{"name": intent, "confidence": 0.4}],
        "entities": entities or [],
    }
    if selector:
        parse["response_selector"] = selector
    if metadata is not None:
        parse["metadata"] = metadata
    return {"event": "user", "text": text, "parse_data": parse, "metadata": metadata or {}}


def make_tracker(*events: Dict[str, Any], slots: Optional[Dict[str, Any]] = None,
                 active_loop: Optional[str] = None, sender: str = "u1") -> Tracker:
    """A tracker whose latest message is the last ``user`` event."""
    users = [e for e in events if e["event"] == "user"]
    latest = users[-1]["parse_data"] if users else {}
    loop = {"name": active_loop} if active_loop else {}
    return Tracker(sender, dict(slots or {}), latest, list(events), False, None, loop,
                   "action_listen")


def run_action(action: Action, tracker: Tracker,
               domain: Optional[dict] = None) -> Tuple[List[dict], List[dict]]:
    """Run ``action``; return ``(messages, events)``."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain or {}))
    return dispatcher.messages, events


def responses(messages: List[dict]) -> List[str]:
    """The response names the action uttered, in order."""
    return [m.get("response") for m in messages]


def slot_values(events: List[dict]) -> Dict[str, Any]:
    """``{slot: value}`` of the ``slot`` events."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
