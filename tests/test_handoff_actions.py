"""The bot's side of the human hand-over, against a real SQLite ticket store."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import jwt
import pytest

from actions import handoff_actions
from actions.backends.factory import reset_backend
from actions.handoff.tickets import TicketStore
from actions.handoff_actions import (
    ActionHandoffClosed,
    ActionOfferCsat,
    ActionRequestHandoff,
    ActionSessionStart,
    ActionStoreCsat,
    ActionSubmitCallback,
    conversation_summary,
)
from backend_fixtures import make_sqlite_backend
from trackers import make_tracker, responses, run_action, slot_values, user_event

SECRET = "kefu-unit-test-secret-32-bytes-long!!"


@pytest.fixture
def store(tmp_path: Path, monkeypatch) -> Iterator[TicketStore]:
    backend = make_sqlite_backend(tmp_path)
    monkeypatch.setenv("KEFU_DATABASE_URL", backend.url)
    monkeypatch.setenv("KEFU_CLOCK", "2026-11-24T10:00:00+08:00")
    monkeypatch.setenv("KEFU_SERVICE_HOURS", "09:00-22:00")
    monkeypatch.setenv("KEFU_CUSTOMER_TOKEN_SECRET", SECRET)
    reset_backend(backend)
    tickets = TicketStore(f"sqlite:///{tmp_path / 'tickets.db'}")
    tickets.create_schema()
    monkeypatch.setattr(handoff_actions, "ticket_store", lambda: tickets)
    monkeypatch.setattr(handoff_actions, "within_service_hours", lambda now: True)
    yield tickets
    reset_backend(None)


def online_agent(store: TicketStore) -> None:
    agent = store.create_agent(f"agent{time.monotonic_ns()}", "小王", "password123")
    store.heartbeat(agent.id)


def token(customer_id: str) -> str:
    return jwt.encode({"sub": customer_id, "exp": int(time.time()) + 600}, SECRET, "HS256")


def conversation(*messages: tuple, sender: str = "c1", **slots: Any):
    events = []
    for text, intent, meta in messages:
        events.append(user_event(text, intent, metadata=meta))
        events.append({"event": "bot", "text": f"答复：{text}"})
    return make_tracker(*events, slots=slots, sender=sender)


def test_request_human_queues_with_context_and_pauses(store) -> None:
    online_agent(store)
    tracker = conversation(("我的快递到哪了", "track_shipment", None),
                           ("转人工", "request_human", {"customer_token": token("C1003")}),
                           order_id="202611181012006006")
    messages, events = run_action(ActionRequestHandoff(), tracker)
    assert responses(messages) == ["utter_handoff_queued"]
    assert messages[0]["queue_position"] == 1 and messages[0]["queue_wait_minutes"] >= 1
    assert [(e["event"], e.get("name")) for e in events[-2:]] == [
        ("pause", None), ("action", "action_listen")]
    ticket = store.active_ticket_for("c1")
    assert ticket.reason == "request_human" and ticket.customer_id == "C1003"
    assert ticket.customer_masked_phone == "137****7000" and ticket.customer_tier == "gold"
    assert ticket.priority == 1 and ticket.order_id == "202611181012006006"
    assert "查物流进度" in ticket.summary and "答复" in ticket.summary
    assert ticket.transcript_url == f"http://localhost:8081/#/ticket/{ticket.id}"


def test_anonymous_ticket_and_unverified_order_stay_hidden(store) -> None:
    online_agent(store)
    tracker = conversation(("人工", "request_human", None), order_id="202611181012006006")
    run_action(ActionRequestHandoff(), tracker)
    ticket = store.active_ticket_for("c1")
    assert ticket.customer_id is None and ticket.order_id is None and ticket.priority == 0


@pytest.mark.parametrize(
    "intent, slots, reason",
    [
        ("complain", {}, "complaint"),
        ("request_human", {"handoff_reason": "backend_down"}, "backend_down"),
        ("request_human", {"handoff_reason": "payment_dispute"}, "payment_dispute"),
    ],
)
def test_reasons(store, intent, slots, reason) -> None:
    online_agent(store)
    run_action(ActionRequestHandoff(), conversation(("x", intent, None), **slots))
    assert store.active_ticket_for("c1").reason == reason


def test_second_failed_round_is_recorded(store) -> None:
    online_agent(store)
    events = [user_event("啥", "nlu_fallback"), {"event": "action", "name": "utter_offer_human"},
              user_event("转人工", "request_human")]
    run_action(ActionRequestHandoff(), make_tracker(*events, sender="c1"))
    assert store.active_ticket_for("c1").reason == "repeated_fallback"


def test_complaints_and_vip_go_first(store) -> None:
    online_agent(store)
    run_action(ActionRequestHandoff(), conversation(("人工", "request_human", None),
                                                    sender="normal"))
    run_action(ActionRequestHandoff(), conversation(("投诉", "complain", None), sender="angry"))
    assert [t.conversation_id for t in store.waiting_queue()] == ["angry", "normal"]


def test_no_agent_online_takes_a_message(store) -> None:
    messages, events = run_action(ActionRequestHandoff(),
                                  conversation(("人工", "request_human", None)))
    assert responses(messages) == ["utter_handoff_offline"]
    assert slot_values(events)["handoff_stage"] == "offline"
    assert store.active_ticket_for("c1") is None
    tracker = conversation(("人工", "request_human", None), callback_message="发票开错了",
                           callback_preference="电话回访")
    messages, _ = run_action(ActionSubmitCallback(), tracker)
    assert responses(messages) == ["utter_callback_done"]
    [ticket] = store.callback_tickets()
    assert ticket.callback_message == "发票开错了" and ticket.callback_preference == "电话回访"


def test_outside_service_hours_takes_a_message(store, monkeypatch) -> None:
    online_agent(store)
    monkeypatch.setattr(handoff_actions, "within_service_hours", lambda now: False)
    messages, _ = run_action(ActionRequestHandoff(), conversation(("人工", "request_human", None)))
    assert responses(messages) == ["utter_handoff_offline"]


def test_close_asks_for_a_rating_stored_on_the_ticket(store) -> None:
    online_agent(store)
    run_action(ActionRequestHandoff(), conversation(("人工", "request_human", None)))
    ticket = store.active_ticket_for("c1")
    agent = store.create_agent("closer", "小李", "password123")
    store.claim(ticket.id, agent.id)
    store.close(ticket.id, agent.id)
    assert responses(run_action(ActionHandoffClosed(), conversation(("x", "x", None)))[0]) == [
        "utter_handoff_closed", "utter_ask_csat"]
    rating = make_tracker(user_event("5分", "rate_service",
                                     entities=[{"entity": "rating", "value": "5"}]), sender="c1")
    assert responses(run_action(ActionStoreCsat(), rating)[0]) == ["utter_rate_thanks"]
    assert store.get_ticket(ticket.id).csat_rating == 5


def test_bot_rating_is_stored_once(store) -> None:
    rating = make_tracker(user_event("4", "rate_service",
                                     entities=[{"entity": "rating", "value": "4"}]), sender="b1")
    run_action(ActionStoreCsat(), rating)
    run_action(ActionStoreCsat(), make_tracker(user_event("1", "rate_service", entities=[
        {"entity": "rating", "value": "1"}]), sender="b1"))
    assert store.bot_csat("b1") == 4


@pytest.mark.parametrize("text, entities, stored", [
    ("5", [], 5),                                  # typed digit, NLU found no entity
    ("５", [], 5),                                 # full-width
    ("4分！", [], 4),
    ("五分", [{"entity": "rating", "value": "五分"}], 5),  # numeral the synonyms missed
    ("給三顆星", [], 3),                           # Traditional
    ("满分", [], 5),
    ("/rate_service", [{"entity": "rating", "value": "2"}], 2),  # button payload
    ("5分满意", [{"entity": "rating", "value": "5"}], 5),
])
def test_typed_ratings_are_understood(store, text: str, entities: list, stored: int) -> None:
    tracker = make_tracker(user_event(text, "rate_service", entities=entities), sender="t1")
    assert responses(run_action(ActionStoreCsat(), tracker)[0]) == ["utter_rate_thanks"]
    assert store.bot_csat("t1") == stored


@pytest.mark.parametrize("text, entities", [
    ("10分", [{"entity": "rating", "value": "10"}]),
    ("0", []),
    ("一般般", [{"entity": "rating", "value": "一般般"}]),
    ("8000", []),
])
def test_out_of_range_or_unclear_ratings_are_asked_again(store, text: str,
                                                         entities: list) -> None:
    tracker = make_tracker(user_event(text, "rate_service", entities=entities), sender="t2")
    assert responses(run_action(ActionStoreCsat(), tracker)[0]) == ["utter_ask_csat_bot"]
    assert store.bot_csat("t2") is None


def asked(question: str) -> Dict[str, Any]:
    """The bot message of a rating question, as Rasa stores it."""
    return {"event": "bot", "text": "打个分吧", "metadata": {"utter_action": question}}


@pytest.mark.parametrize("before, question", [
    ([user_event("转人工", "request_human"), asked("utter_ask_csat")], "utter_ask_csat"),
    ([user_event("谢谢", "thank"), asked("utter_ask_csat_bot")], "utter_ask_csat_bot"),
    ([], "utter_ask_csat_bot"),  # nothing asked: the bot's own question
])
def test_rating_without_a_value_asks_the_same_question_again(
        store, before: List[Dict[str, Any]], question: str) -> None:
    tracker = make_tracker(*before, user_event("还行吧", "rate_service"), sender="b2")
    assert responses(run_action(ActionStoreCsat(), tracker)[0]) == [question]


def test_csat_offered_once_after_a_resolved_task(store) -> None:
    resolved = make_tracker(user_event("谢谢", "thank"), slots={"task_stage": "done"})
    assert responses(run_action(ActionOfferCsat(), resolved)[0]) == ["utter_ask_csat_bot"]
    again = make_tracker(user_event("谢谢", "thank"),
                         slots={"task_stage": "done", "csat_asked": True})
    assert run_action(ActionOfferCsat(), again)[0] == []
    chit_chat = make_tracker(user_event("谢谢", "thank"))
    assert run_action(ActionOfferCsat(), chit_chat)[0] == []


def test_new_session_keeps_a_human_owned_conversation_paused(store) -> None:
    online_agent(store)
    run_action(ActionRequestHandoff(), conversation(("人工", "request_human", None)))
    events = run_action(ActionSessionStart(), make_tracker(sender="c1",
                                                           slots={"order_id": "1"}))[1]
    assert events[0]["event"] == "session_started" and events[-1]["event"] == "pause"
    assert {"event": "slot", "timestamp": None, "name": "order_id", "value": "1"} in events
    fresh = run_action(ActionSessionStart(), make_tracker(sender="someone-else"))[1]
    assert all(e["event"] != "pause" for e in fresh)


def test_summary_lists_intents_without_repeats() -> None:
    tracker = conversation(("快递", "track_shipment", None), ("物流", "track_shipment", None),
                           ("退货", "return_goods", None))
    assert conversation_summary(tracker).startswith("客户诉求：查物流进度、退货/换货")


def test_summary_names_faq_questions() -> None:
    event = user_event("运费多少", "faq")
    event["parse_data"]["intent"]["full_retrieval_intent_name"] = "faq/shipping_fee"
    assert conversation_summary(make_tracker(event)).startswith("客户诉求：运费怎么算")
