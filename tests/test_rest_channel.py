"""Customer-facing behaviour over the REST channel of a running server.

Bad input must get a clear, polite answer or a 4xx, never a 5xx, and must not
break the conversation that follows.
"""
from __future__ import annotations

import random

import pytest
import requests

from conftest import Stack, bot_text, fresh_sender

pytestmark = pytest.mark.integration


def post_raw(stack: Stack, **kwargs) -> requests.Response:
    return requests.post(stack.rest_url, timeout=60, **kwargs)


def test_greeting_is_answered_in_chinese(kefu_stack: Stack) -> None:
    assert "您好" in bot_text(kefu_stack.say(fresh_sender(), "你好"))


def test_faq_shipping_fee(kefu_stack: Stack) -> None:
    assert "包邮" in bot_text(kefu_stack.say(fresh_sender(), "运费怎么算"))


def test_traditional_chinese_gets_the_same_answer(kefu_stack: Stack) -> None:
    simplified = bot_text(kefu_stack.say(fresh_sender(), "退货运费谁出"))
    traditional = bot_text(kefu_stack.say(fresh_sender(), "退貨運費誰出"))
    assert traditional == simplified and "退货" in traditional


def test_order_question_explains_what_is_needed(kefu_stack: Stack) -> None:
    text = bot_text(kefu_stack.say(fresh_sender(), "我的快递到哪了"))
    assert "订单号" in text


@pytest.mark.parametrize(
    "message, expected",
    [
        ("", "没有输入内容"),
        ("   \n\t ", "没有输入内容"),
        ("😂😂👍", "请用文字描述"),
        ("？？？！！。。", "请用文字描述"),
        ("退货" * 1500, "超过2000字"),
        ("\x00\x01\x02\x03binary\x04\x05\x06", "没法识别"),
    ],
    ids=["empty", "whitespace", "emoji", "punctuation", "too-long", "binary"],
)
def test_unusable_messages_get_a_polite_answer(
    kefu_stack: Stack, message: str, expected: str
) -> None:
    assert expected in bot_text(kefu_stack.say(fresh_sender(), message))


def test_random_bytes_never_fail(kefu_stack: Stack) -> None:
    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(600)).decode("latin-1")
    replies = kefu_stack.say(fresh_sender(), junk)
    assert replies and bot_text(replies)


def test_huge_message_is_answered_and_stored(kefu_stack: Stack) -> None:
    sender = fresh_sender()
    message = "我要退货" * 50_000  # 200,000 characters
    assert "超过2000字" in bot_text(kefu_stack.say(sender, message))
    events = kefu_stack.tracker(sender)["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == [message]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"data": b"\xff\xfe\x00garbage", "headers": {"Content-Type": "application/json"}},
        {"json": ["sender", "message"]},
        {"json": "just a string"},
        {"json": {"message": "你好"}},
        {"json": {"sender": "", "message": "你好"}},
        {"json": {"sender": "x" * 500, "message": "你好"}},
        {"json": {"sender": "u1", "message": 12345}},
        {"json": {"sender": "u1", "message": {"text": "你好"}}},
    ],
    ids=["malformed", "binary-body", "list", "string", "no-sender", "empty-sender",
         "long-sender", "number-message", "object-message"],
)
def test_malformed_requests_get_a_4xx(kefu_stack: Stack, kwargs: dict) -> None:
    response = post_raw(kefu_stack, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in response.text


def test_missing_message_is_treated_as_empty(kefu_stack: Stack) -> None:
    response = post_raw(kefu_stack, json={"sender": fresh_sender()})
    assert response.status_code == 200
    assert "没有输入内容" in bot_text(response.json())


@pytest.mark.parametrize(
    "message",
    ["<script>alert('x')</script>你好", "'; DROP TABLE events; --", "{{7*7}} ${jndi:x}"],
)
def test_hostile_text_is_handled_and_conversation_continues(
    kefu_stack: Stack, message: str
) -> None:
    sender = fresh_sender()
    assert bot_text(kefu_stack.say(sender, message))
    assert "您好" in bot_text(kefu_stack.say(sender, "你好"))


def test_server_still_healthy_after_bad_input(kefu_stack: Stack) -> None:
    post_raw(kefu_stack, data=b"{oops", headers={"Content-Type": "application/json"})
    assert requests.get(kefu_stack.rasa_url, timeout=10).status_code == 200
    assert "您好" in bot_text(kefu_stack.say(fresh_sender(), "您好"))
