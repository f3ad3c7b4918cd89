"""The fallback action classifies the situation and fills slots for rules."""
from __future__ import annotations

from typing import Any, Dict

import pytest
from rasa_sdk import Tracker

from actions.fallback import ActionKefuFallback, candidate_options
from actions.intent_titles import load_titles
from trackers import make_tracker, run_action, slot_values, user_event


def tracker_with(*events: Dict[str, Any]) -> Tracker:
    return make_tracker(*events)


def run(tracker: Tracker) -> Dict[str, Any]:
    return slot_values(run_action(ActionKefuFallback(), tracker)[1])


RANKING = [
    {"name": "nlu_fallback", "confidence": 0.5},
    {"name": "track_shipment", "confidence": 0.4},
    {"name": "request_human", "confidence": 0.3},
    {"name": "faq", "confidence": 0.2},
    {"name": "return_goods", "confidence": 0.1},
]
SELECTOR = {"faq": {"response": {"intent_response_key": "faq/shipping_fee"}}}


def test_first_failure_offers_the_two_likeliest_questions() -> None:
    slots = run(tracker_with(user_event("快递那个啥", "nlu_fallback", ranking=RANKING, selector=SELECTOR)))
    assert slots == {
        "fallback_kind": "clarify",
        "clarify_option_1_title": "查物流进度",
        "clarify_option_1_payload": "/track_shipment",
        "clarify_option_2_title": "运费怎么算",
        "clarify_option_2_payload": "运费怎么算",
    }


def test_second_failure_in_a_row_offers_a_human() -> None:
    tracker = tracker_with(
        user_event("啥", "nlu_fallback"),
        {"event": "action", "name": "action_kefu_fallback"},
        {"event": "bot", "text": "抱歉"},
        user_event("嗯那个", "nlu_fallback"),
    )
    assert run(tracker) == {"fallback_kind": "offer_human"}


def test_failures_not_in_a_row_do_not_offer_a_human() -> None:
    tracker = tracker_with(
        user_event("啥", "nlu_fallback"),
        user_event("你好", "greet"),
        user_event("嗯那个", "nlu_fallback"),
    )
    assert run(tracker)["fallback_kind"] == "clarify"


@pytest.mark.parametrize(
    "text, kind",
    [("", "input_empty"), ("🙂🙂", "input_no_words"), ("字" * 2001, "input_too_long"),
     ("\x00\x01bin", "input_unreadable")],
)
def test_unusable_input(text: str, kind: str) -> None:
    assert run(tracker_with(user_event(text, "nlu_fallback"))) == {"fallback_kind": kind}


def test_unusable_input_wins_over_repeated_failures() -> None:
    tracker = tracker_with(user_event("啥", "nlu_fallback"), user_event("", "nlu_fallback"))
    assert run(tracker) == {"fallback_kind": "input_empty"}


def test_dialogue_fallback_asks_to_rephrase() -> None:
    assert run(tracker_with(user_event("你好", "greet"))) == {"fallback_kind": "rephrase"}


def test_candidates_are_padded_with_defaults() -> None:
    options = candidate_options({"intent_ranking": [{"name": "nlu_fallback"}]}, load_titles())
    assert [o["payload"] for o in options] == ["/track_shipment", "/return_goods"]


def test_every_intent_in_the_domain_has_a_title() -> None:
    import yaml
    from conftest import ROOT

    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    titles = load_titles()
    missing = [i for i in domain["intents"]
               if i != "faq" and not i.startswith("EXTERNAL_") and i not in titles]
    faq_responses = [r[len("utter_"):] for r in domain["responses"] if r.startswith("utter_faq/")]
    missing += [r for r in faq_responses if r not in titles]
    assert not missing
