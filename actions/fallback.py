"""Decide how to answer a message the bot did not understand.

The action only *classifies* the situation and fills slots; the answers
themselves are rules in ``data/rules/fallback.yml`` keyed on the slot
``fallback_kind``, so designers see and edit them in YAML:

- unusable input (empty, only emoji, over 2000 characters, binary junk):
  ``input_empty`` / ``input_no_words`` / ``input_too_long`` / ``input_unreadable``;
- a second failed round in a row: ``offer_human``;
- otherwise ``clarify``: "您是想问……吗？" with the two most likely intents as
  buttons (``clarify_option_*`` slots) plus 转人工;
- the dialogue policy was unsure (not the NLU): ``rephrase``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import NLU_FALLBACK, consecutive_fallbacks, latest_intent, latest_text
from actions.intent_titles import load_titles
from kefu_nlu import screen

MAX_FAILED_ROUNDS = 2
CANDIDATE_COUNT = 2
RETRIEVAL_INTENTS = {"faq"}
NEVER_OFFERED = {NLU_FALLBACK, "request_human"}
DEFAULT_CANDIDATES = ["track_shipment", "return_goods", "check_order_status"]

KIND_BY_ISSUE = {
    screen.EMPTY: "input_empty",
    screen.NO_WORDS: "input_no_words",
    screen.TOO_LONG: "input_too_long",
    screen.UNREADABLE: "input_unreadable",
}

Option = Dict[str, str]


def _full_intent(intent: str, parse_data: Dict[Text, Any]) -> str:
    """``faq`` -> ``faq/<sub-intent>`` as predicted by the response selector."""
    if intent not in RETRIEVAL_INTENTS:
        return intent
    selector = (parse_data.get("response_selector") or {}).get(intent) or {}
    return (selector.get("response") or {}).get("intent_response_key") or intent


def _option(intent: str, full: str, titles: Dict[str, str]) -> Optional[Option]:
    """A button for ``full``: faq questions by their text, others by payload."""
    title = titles.get(full)
    if not title:
        return None
    payload = title if intent in RETRIEVAL_INTENTS else f"/{intent}"
    return {"title": title, "payload": payload}


def candidate_options(
    parse_data: Dict[Text, Any], titles: Dict[str, str], count: int = CANDIDATE_COUNT
) -> List[Option]:
    """The ``count`` best-ranked intents that have a title, padded with defaults."""
    ranked = [item.get("name") or "" for item in parse_data.get("intent_ranking") or []]
    options: List[Option] = []
    for intent in ranked + DEFAULT_CANDIDATES:
        if intent in NEVER_OFFERED:
            continue
        option = _option(intent, _full_intent(intent, parse_data), titles)
        if option and option not in options:
            options.append(option)
        if len(options) == count:
            break
    return options


def fallback_kind(tracker: Tracker) -> str:
    """Classify why the bot is falling back (see module docstring)."""
    issue = screen.classify_input(latest_text(tracker))
    if issue:
        return KIND_BY_ISSUE[issue]
    intent = latest_intent(tracker)
    if intent != NLU_FALLBACK:
        return "rephrase"
    if consecutive_fallbacks(tracker) >= MAX_FAILED_ROUNDS:
        return "offer_human"
    return "clarify"


def option_slots(options: List[Option]) -> List[Dict[Text, Any]]:
    """``SlotSet`` events for the ``clarify_option_N_title/payload`` slots."""
    events: List[Dict[Text, Any]] = []
    for number, option in enumerate(options, start=1):
        events.append(SlotSet(f"clarify_option_{number}_title", option["title"]))
        events.append(SlotSet(f"clarify_option_{number}_payload", option["payload"]))
    return events


class ActionKefuFallback(Action):
    """Classify a not-understood message; rules pick the answer."""

    def name(self) -> Text:
        return "action_kefu_fallback"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Dict[Text, Any]]:
        kind = fallback_kind(tracker)
        events = [SlotSet("fallback_kind", kind)]
        if kind == "clarify":
            options = candidate_options(tracker.latest_message or {}, load_titles())
            events.extend(option_slots(options))
        return events
