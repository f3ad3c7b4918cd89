"""Order actions against a real database with the demo data (docs/data-format.md).

Runs on SQLite, and on PostgreSQL when its server binaries are installed.
"""
from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import jwt
import pytest

from actions.account import ActionCheckCoupon, ActionCheckMembership
from actions.backends.factory import reset_backend
from actions.backends.http import HttpBackend
from actions.order_actions import (
    ActionApplyOrderChange,
    ActionAskConfirmed,
    ActionOrderTask,
    ValidateDetailsForm,
)
from actions.order_lookup import ActionAskOrderId, ActionPrepareOrderTask, ValidateOrderForm
from actions.products import ActionProductInfo
from backend_fixtures import free_port, open_backend, postgres_url  # noqa: F401
from trackers import make_tracker, responses, run_action, slot_values, user_event

SECRET = "kefu-unit-test-secret-32-bytes-long!!"
PENDING = "202611240930001001"      # C1001, pending_payment, 158.00
PAID = "202611231415002002"         # C1002, paid
SHIPPED = "202611210820004004"      # C1001, shipped, SF1428765093210
DELIVERED_RECENT = "202611191400013013"  # C1001, delivered 11-22
DELIVERED_OLD = "202611021930007007"     # C1002, delivered 11-06
OPEN_CASE = "202611160930009009"    # C1004, delivered, open return case
CANCELLED = "202611150840008008"    # C1001, cancelled


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path: Path, monkeypatch) -> Iterator[Any]:
    monkeypatch.setenv("KEFU_CLOCK", "2026-11-24T10:00:00+08:00")
    monkeypatch.setenv("KEFU_CUSTOMER_TOKEN_SECRET", SECRET)
    for backend in open_backend(request.param, request, tmp_path):
        reset_backend(backend)
        yield backend
    reset_backend(None)


def token(customer_id: str, ttl: int = 600) -> str:
    return jwt.encode({"sub": customer_id, "exp": int(time.time()) + ttl}, SECRET, "HS256")


def logged_in(customer_id: str) -> Dict[str, Any]:
    return {"customer_token": token(customer_id)}


def say(text: str, intent: str, order_id: Optional[str] = None,
        metadata: Optional[dict] = None) -> Dict[str, Any]:
    entities = [{"entity": "order_id", "value": order_id}] if order_id else []
    return user_event(text, intent, entities=entities, metadata=metadata)


def task_tracker(task: str, order_id: str, customer: Optional[str] = None,
                 verified: Optional[List[str]] = None, **slots: Any):
    meta = logged_in(customer) if customer else None
    return make_tracker(say("嗯", "inform", metadata=meta), slots={
        "order_task": task, "order_id": order_id, "verified_order_ids": verified or [],
        "customer_id": customer, **slots})


def kwargs_of(messages: List[dict], response: str) -> Dict[str, Any]:
    return next(m for m in messages if m.get("response") == response)


# ---- who may see what
def test_owner_gets_tracking(backend) -> None:
    messages, events = run_action(ActionOrderTask(), task_tracker("track", SHIPPED, "C1001"))
    answer = kwargs_of(messages, "utter_tracking")
    assert answer["tracking_number"] == "SF1428765093210" and answer["order_tail"] == "4004"
    assert slot_values(events)["task_stage"] == "done"


def test_delivered_order_offers_a_human_for_a_disputed_delivery(backend) -> None:
    messages, events = run_action(ActionOrderTask(),
                                  task_tracker("track", DELIVERED_RECENT, "C1001"))
    assert responses(messages) == ["utter_tracking_delivered"]
    assert slot_values(events)["handoff_reason"] == "delivery_dispute"


def test_non_owner_is_told_not_found(backend) -> None:
    messages, events = run_action(ActionOrderTask(), task_tracker("track", SHIPPED, "C1002"))
    assert responses(messages) == ["utter_order_not_found"]
    assert "SF1428765093210" not in str(messages)


def test_logged_in_order_number_of_someone_else_is_rejected(backend) -> None:
    tracker = make_tracker(say("x", "inform", metadata=logged_in("C1002")))
    messages = []
    result = ValidateOrderForm().validate_order_id(SHIPPED, _Collect(messages), tracker, {})
    assert result == {"order_id": None} and messages == ["utter_order_not_found"]


def test_anonymous_needs_phone_and_logged_in_does_not(backend) -> None:
    form = ValidateOrderForm()
    import asyncio
    anonymous = make_tracker(say("x", "inform"), slots={"order_id": SHIPPED})
    logged = make_tracker(say("x", "inform", metadata=logged_in("C1001")))
    assert asyncio.run(form.required_slots([], None, anonymous, {})) == ["order_id", "verify_phone"]
    assert asyncio.run(form.required_slots([], None, logged, {})) == ["order_id"]


class _Collect:
    """A dispatcher stand-in recording response names (for validate_* calls)."""

    def __init__(self, sink: List[str]) -> None:
        self.sink = sink

    def utter_message(self, response: Optional[str] = None, **_kwargs: Any) -> None:
        self.sink.append(response)


# ---- anonymous verification
def verify(tracker_slots: Dict[str, Any], answer: str) -> tuple:
    tracker = make_tracker(say(answer, "inform"), slots=tracker_slots)
    sink: List[str] = []
    return ValidateOrderForm().validate_verify_phone(answer, _Collect(sink), tracker, {}), sink


@pytest.mark.parametrize("answer", ["8000", "13800138000", "手机号13800138000"])
def test_right_phone_verifies_the_order(backend, answer: str) -> None:
    result, sink = verify({"order_id": SHIPPED}, answer)
    assert result["verify_phone"] == "ok" and result["verified_order_ids"] == [SHIPPED]
    assert sink == []


def test_order_address_phone_also_verifies(backend) -> None:
    result, _ = verify({"order_id": "202611230900011011"}, "2222")  # address phone 135...2222
    assert result["verify_phone"] == "ok"


def test_wrong_phone_counts_and_third_failure_locks(backend) -> None:
    result, sink = verify({"order_id": SHIPPED}, "1234")
    assert result["verify_phone"] is None and result["order_id"] is None
    assert result["verification_failures"] == 1 and sink == ["utter_verification_failed"]
    result, sink = verify({"order_id": SHIPPED, "verification_failures": 2}, "1234")
    assert result["verify_phone"] == "locked" and sink == ["utter_verification_locked"]
    assert result["verification_locked_until"].startswith("2026-11-24T10:15")


def test_unknown_order_and_wrong_phone_look_the_same(backend) -> None:
    assert verify({"order_id": "999999999999999"}, "8000")[1] == verify(
        {"order_id": SHIPPED}, "1234")[1]


def test_non_digit_answer_is_not_a_failure(backend) -> None:
    result, sink = verify({"order_id": SHIPPED}, "我不记得了")
    assert "verification_failures" not in result and sink == ["utter_ask_verify_phone_format"]


def test_locked_conversation_cannot_start_a_task(backend) -> None:
    tracker = make_tracker(say("查物流", "track_shipment"),
                           slots={"verification_locked_until": "2026-11-24T10:10:00+08:00"})
    messages, events = run_action(ActionPrepareOrderTask(), tracker)
    assert responses(messages) == ["utter_verification_locked"]
    assert slot_values(events)["task_stage"] == "blocked"


def test_lock_expires(backend) -> None:
    tracker = make_tracker(say("查物流", "track_shipment"),
                           slots={"verification_locked_until": "2026-11-24T09:59:00+08:00"})
    assert slot_values(run_action(ActionPrepareOrderTask(), tracker)[1])["task_stage"] == \
        "collect_order"


# ---- choosing the order
def test_logged_in_customer_gets_relevant_orders_as_buttons(backend) -> None:
    tracker = make_tracker(say("取消订单", "cancel_order", metadata=logged_in("C1001")),
                           slots={"order_task": "cancel"})
    messages, _ = run_action(ActionAskOrderId(), tracker)
    buttons = messages[0]["buttons"]
    assert messages[0]["response"] == "utter_choose_order"
    assert [b["payload"] for b in buttons] == [f'/inform{{"order_id": "{PENDING}"}}']


def offered_then(customer: str, task: str, intent: str, text: str) -> Any:
    """A tracker where the bot offered ``customer``'s orders as buttons, then ``text`` came."""
    question = make_tracker(say("订单", intent, metadata=logged_in(customer)),
                            slots={"order_task": task})
    [message], _ = run_action(ActionAskOrderId(), question)
    bot = {"event": "bot", "text": "请问是哪一笔订单？",
           "data": {"buttons": message["buttons"]}, "metadata": {}}
    return make_tracker(say("订单", intent, metadata=logged_in(customer)), bot,
                        say(text, "inform" if text[-1].isdigit() else intent,
                            metadata=logged_in(customer)),
                        slots={"order_task": task})


def typed_choice(tracker: Any) -> tuple:
    sink: List[str] = []
    value = (tracker.latest_message or {}).get("text")
    return ValidateOrderForm().validate_order_id(value, _Collect(sink), tracker, {}), sink


@pytest.mark.parametrize("text, intent, expected", [
    ("好的", "affirm", PENDING),          # the only cancellable order
    ("是这个", "affirm", PENDING),
    ("1", "cancel_order", PENDING),
    ("第一个", "cancel_order", PENDING),
    ("第二个", "cancel_order", None),     # there is no second one
    ("尾号1001", "cancel_order", PENDING),
    ("纯棉T恤那个", "cancel_order", PENDING),
    ("牛仔裤那个", "cancel_order", None),  # not among the offered orders
])
def test_a_typed_answer_picks_the_offered_order(backend, text: str, intent: str,
                                                 expected: Optional[str]) -> None:
    tracker = offered_then("C1001", "cancel", intent, text)
    result, sink = typed_choice(tracker)
    assert result == {"order_id": expected}
    assert sink == ([] if expected else ["utter_order_id_invalid"])


@pytest.mark.parametrize("text, expected", [
    ("第2个", DELIVERED_RECENT), ("二", DELIVERED_RECENT), ("4004", SHIPPED),
    ("运动鞋", SHIPPED), ("好的", None),  # two offered: a plain yes is ambiguous
])
def test_a_typed_answer_among_several_orders(backend, text: str,
                                             expected: Optional[str]) -> None:
    tracker = offered_then("C1001", "track", "affirm" if text == "好的" else "track_shipment",
                           text)
    assert typed_choice(tracker)[0] == {"order_id": expected}


def test_anonymous_customer_is_asked_to_type_the_number(backend) -> None:
    messages, _ = run_action(ActionAskOrderId(), make_tracker(say("查订单", "check_order_status")))
    assert responses(messages) == ["utter_ask_order_id"]


def test_order_named_in_the_message_becomes_the_focus(backend) -> None:
    tracker = make_tracker(say("到哪了", "track_shipment", order_id=SHIPPED),
                           slots={"order_id": PENDING})
    assert slot_values(run_action(ActionPrepareOrderTask(), tracker)[1])["order_id"] == SHIPPED


# ---- read tasks
def test_paid_order_says_when_it_ships(backend) -> None:
    messages, _ = run_action(ActionOrderTask(), task_tracker("status", PAID, "C1002"))
    assert kwargs_of(messages, "utter_order_paid_not_shipped")["dispatch_by"] == "11月25日 14:16"


def test_urge_is_recorded_once_a_day(backend) -> None:
    first, _ = run_action(ActionOrderTask(), task_tracker("urge", PAID, "C1002"))
    second, _ = run_action(ActionOrderTask(), task_tracker("urge", PAID, "C1002"))
    assert responses(first) == ["utter_urge_recorded"]
    assert responses(second) == ["utter_urge_already"]


def test_urge_on_shipped_order_gives_tracking(backend) -> None:
    messages, _ = run_action(ActionOrderTask(), task_tracker("urge", SHIPPED, "C1001"))
    assert responses(messages) == ["utter_tracking"]


def test_charged_but_unpaid_offers_a_human(backend) -> None:
    messages, events = run_action(ActionOrderTask(), task_tracker("payment", PENDING, "C1001"))
    assert responses(messages) == ["utter_payment_pending"]
    assert slot_values(events)["handoff_reason"] == "payment_dispute"


def test_refund_status_of_a_completed_case(backend) -> None:
    messages, _ = run_action(ActionOrderTask(),
                             task_tracker("refund_status", "202611100815010010", "C1003"))
    answer = kwargs_of(messages, "utter_refund_status_done")
    assert answer["case_id"] == "AS20261114091500731846" and answer["case_status"] == "已完成"


# ---- eligibility
@pytest.mark.parametrize(
    "task, order_id, customer, expected",
    [
        ("cancel", PENDING, "C1001", None),
        ("cancel", SHIPPED, "C1001", "utter_cancel_not_possible_shipped"),
        ("cancel", CANCELLED, "C1001", "utter_cancel_already"),
        ("return", DELIVERED_RECENT, "C1001", None),
        ("return", DELIVERED_OLD, "C1002", "utter_return_window_passed"),
        ("return", OPEN_CASE, "C1004", "utter_after_sale_open_case"),
        ("return", SHIPPED, "C1001", "utter_return_not_delivered"),
        ("refund", PAID, "C1002", None),
        ("refund", SHIPPED, "C1001", None),
        ("refund", DELIVERED_RECENT, "C1001", "utter_refund_needs_return"),
        ("refund", PENDING, "C1001", "utter_after_sale_not_paid"),
        ("address", PAID, "C1002", None),
        ("address", SHIPPED, "C1001", "utter_address_not_possible"),
        ("invoice", DELIVERED_RECENT, "C1001", None),
        ("invoice", PENDING, "C1001", "utter_invoice_not_possible"),
    ],
)
def test_eligibility(backend, task, order_id, customer, expected) -> None:
    messages, events = run_action(ActionOrderTask(), task_tracker(task, order_id, customer))
    if expected is None:
        assert messages == [] and slot_values(events)["task_stage"] == "collect_details"
    else:
        assert responses(messages) == [expected]
        assert slot_values(events)["task_stage"] == "done"


# ---- writes: idempotent, confirmed, masked
def apply(task: str, order_id: str, customer: str, **slots: Any) -> List[str]:
    tracker = task_tracker(task, order_id, customer, confirmed=True, **slots)
    return responses(run_action(ActionApplyOrderChange(), tracker)[0])


def test_cancel_is_idempotent(backend) -> None:
    assert apply("cancel", PENDING, "C1001") == ["utter_cancel_done"]
    assert apply("cancel", PENDING, "C1001") == ["utter_cancel_already"]
    assert backend.get_order(PENDING).status == "cancelled"


def test_declined_change_changes_nothing(backend) -> None:
    tracker = task_tracker("cancel", PENDING, "C1001", confirmed=False)
    assert responses(run_action(ActionApplyOrderChange(), tracker)[0]) == ["utter_change_declined"]
    assert backend.get_order(PENDING).status == "pending_payment"


def test_return_creates_one_case(backend) -> None:
    assert apply("return", DELIVERED_RECENT, "C1001", after_sale_reason="尺码不合适") == [
        "utter_after_sale_created"]
    assert apply("return", DELIVERED_RECENT, "C1001", after_sale_reason="尺码不合适") == [
        "utter_after_sale_exists"]
    cases = backend.list_after_sales(DELIVERED_RECENT)
    assert len(cases) == 1 and cases[0].type == "return" and cases[0].reason == "尺码不合适"


def test_address_change_is_stored_and_confirmation_is_masked(backend) -> None:
    new = "张三 13912345678 上海市浦东新区 世纪大道100号"
    tracker = task_tracker("address", PAID, "C1002", new_address=new)
    confirm = run_action(ActionAskConfirmed(), tracker)[0][0]
    assert confirm["response"] == "utter_confirm_address"
    assert confirm["phone"] == "139****5678" and confirm["address"] == "上海市浦东新区****"
    assert "13912345678" not in str(confirm) and "世纪大道" not in str(confirm)
    assert apply("address", PAID, "C1002", new_address=new) == ["utter_address_done"]
    assert backend.get_order(PAID).address.detail == "世纪大道100号"


def test_invoice_request_is_idempotent(backend) -> None:
    slots = dict(invoice_title="小米科技有限责任公司", invoice_tax_number="91110108551385082Q",
                 invoice_email="cfo@example.com")
    tracker = task_tracker("invoice", DELIVERED_RECENT, "C1001", confirmed=True, **slots)
    first = kwargs_of(run_action(ActionApplyOrderChange(), tracker)[0], "utter_invoice_done")
    second = kwargs_of(run_action(ActionApplyOrderChange(), tracker)[0], "utter_invoice_done")
    assert first["invoice_id"] == second["invoice_id"]


def test_details_form_validation(backend) -> None:
    form, sink = ValidateDetailsForm(), []
    tracker = task_tracker("invoice", DELIVERED_RECENT, "C1001")
    assert form.validate_invoice_tax_number("911101085513850820", _Collect(sink), tracker, {}) \
        == {"invoice_tax_number": None}
    assert form.validate_invoice_tax_number("91110108551385082q", _Collect(sink), tracker, {}) \
        == {"invoice_tax_number": "91110108551385082Q"}
    assert form.validate_invoice_email("not-an-email", _Collect(sink), tracker, {}) == {
        "invoice_email": None}
    assert form.validate_invoice_title("个人", _Collect(sink), tracker, {})["invoice_title"] == "个人"
    assert form.validate_new_address("随便写写", _Collect(sink), tracker, {}) == {"new_address": None}
    assert sink == ["utter_tax_number_invalid", "utter_email_invalid", "utter_address_invalid"]


def test_company_invoice_needs_a_tax_number(backend) -> None:
    import asyncio
    form = ValidateDetailsForm()
    company = task_tracker("invoice", DELIVERED_RECENT, "C1001", invoice_title="某某公司")
    person = task_tracker("invoice", DELIVERED_RECENT, "C1001", invoice_title="个人")
    assert "invoice_tax_number" in asyncio.run(form.required_slots([], None, company, {}))
    assert "invoice_tax_number" not in asyncio.run(form.required_slots([], None, person, {}))


# ---- account and catalogue
def test_membership(backend) -> None:
    tracker = make_tracker(say("我的积分", "check_membership", metadata=logged_in("C1003")))
    answer = kwargs_of(run_action(ActionCheckMembership(), tracker)[0], "utter_membership")
    assert answer["tier"] == "黄金会员" and answer["points"] == 3250 and answer["value"] == "32.50"
    anonymous = make_tracker(say("我的积分", "check_membership"))
    assert responses(run_action(ActionCheckMembership(), anonymous)[0]) == ["utter_login_needed"]


def test_coupons_and_why_one_does_not_fit_the_order(backend) -> None:
    tracker = make_tracker(say("优惠券", "check_coupon", metadata=logged_in("C1001")),
                           slots={"order_id": PENDING})
    messages, _ = run_action(ActionCheckCoupon(), tracker)
    coupons = kwargs_of(messages, "utter_coupons")
    assert coupons["count"] == 1 and "满199减20" in coupons["coupons"]
    assert "无门槛5元券" not in coupons["coupons"]  # expired on 11-20
    assert kwargs_of(messages, "utter_coupon_below_min_spend")["min_spend"] == "199"


def test_product_info(backend) -> None:
    tracker = make_tracker(user_event("纯棉T恤多少钱", "product_inquiry",
                                      entities=[{"entity": "product", "value": "纯棉t恤"}]))
    messages, events = run_action(ActionProductInfo(), tracker)
    assert messages[0]["response"] in ("utter_product_info", "utter_product_low_stock")
    assert messages[0]["product"] == "纯棉T恤" and slot_values(events)["product"] == "纯棉T恤"
    unknown = make_tracker(user_event("火箭多少钱", "product_inquiry",
                                      entities=[{"entity": "product", "value": "火箭"}]))
    assert responses(run_action(ActionProductInfo(), unknown)[0]) == ["utter_product_not_found"]


# ---- a backend that is down or slow
class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        time.sleep(1.5)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("kind", ["refused", "timeout"])
def test_backend_down_apologises_and_offers_a_human(kind, slow_server, monkeypatch) -> None:
    url = slow_server if kind == "timeout" else f"http://127.0.0.1:{free_port()}"
    reset_backend(HttpBackend(url, connect_timeout=0.5, read_timeout=0.3, retries=0))
    try:
        messages, events = run_action(ActionOrderTask(), task_tracker("track", SHIPPED, None,
                                                                      [SHIPPED]))
    finally:
        reset_backend(None)
    assert responses(messages) == ["utter_backend_down"]
    assert slot_values(events)["handoff_reason"] == "backend_down"
