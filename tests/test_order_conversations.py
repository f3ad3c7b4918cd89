"""Order conversations over the running server's REST channel.

The test loads its own shop data with ``make load-data`` into the stack's
database, then talks to the bot as an anonymous customer (order number +
phone) and as a logged-in customer (``customer_token`` metadata).
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import jwt
import pytest

from conftest import ROOT, Stack, bot_text, fresh_sender
from stack import TEST_TOKEN_SECRET

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data" / "conversation_shop.json"
SHIPPED = "202611230000900901"
PAID = "202611230000900902"
TRACKING = "ZTO7700112233"


@pytest.fixture(scope="module")
def shop(kefu_stack: Stack) -> Stack:
    """The stack with this module's data loaded through ``make load-data``."""
    result = subprocess.run(["make", "--no-print-directory", "load-data", f"FILE={DATA}"],
                            cwd=ROOT, env=kefu_stack.env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return kefu_stack


def token(customer_id: str, ttl: int = 600, secret: str = TEST_TOKEN_SECRET) -> str:
    return jwt.encode({"sub": customer_id, "exp": int(time.time()) + ttl}, secret,
                      algorithm="HS256")


def test_anonymous_customer_proves_ownership_and_tracks(shop: Stack) -> None:
    sender = fresh_sender()
    assert "订单号" in bot_text(shop.say(sender, "我的快递到哪了"))
    asked = bot_text(shop.say(sender, SHIPPED))
    assert "后四位" in asked and TRACKING not in asked
    answer = bot_text(shop.say(sender, "5678"))
    assert TRACKING in answer and "中通" in answer and "上海转运中心" in answer


def test_wrong_phone_reveals_nothing_and_three_failures_lock(shop: Stack) -> None:
    sender = fresh_sender()
    shop.say(sender, "查一下物流")
    for attempt in range(3):
        shop.say(sender, SHIPPED)
        reply = bot_text(shop.say(sender, "0000"))
        assert TRACKING not in reply and "赵" not in reply
    assert "15分钟" in reply
    shop.say(sender, "查物流")
    assert TRACKING not in bot_text(shop.say(sender, "5678"))


def test_logged_in_customer_picks_an_order_from_buttons(shop: Stack) -> None:
    sender, meta = fresh_sender(), {"customer_token": token("C9001")}
    replies = shop.say(sender, "帮我查下订单状态", meta)
    buttons = [b for r in replies for b in r.get("buttons", [])]
    assert any(SHIPPED[-4:] in b["title"] for b in buttons)
    chosen = next(b for b in buttons if PAID[-4:] in b["title"])
    answer = bot_text(shop.say(sender, chosen["payload"], meta))
    assert "已付款，待发货" in answer and "前发货" in answer


@pytest.mark.parametrize("answer", ["保温杯那个", "第{position}个", "尾号0902"])
def test_logged_in_customer_picks_an_order_in_words(shop: Stack, answer: str) -> None:
    sender, meta = fresh_sender(), {"customer_token": token("C9001")}
    titles = [b["title"] for r in shop.say(sender, "帮我查下订单状态", meta)
              for b in r.get("buttons", [])]
    [position] = [i + 1 for i, title in enumerate(titles) if PAID[-4:] in title]
    assert len(titles) > 1 and "保温杯" in titles[position - 1]
    reply = bot_text(shop.say(sender, answer.format(position=position), meta))
    assert "已付款，待发货" in reply and PAID[-4:] in reply


def test_logged_in_customer_gets_tracking_by_number(shop: Stack) -> None:
    sender, meta = fresh_sender(), {"customer_token": token("C9001")}
    answer = bot_text(shop.say(sender, f"订单{SHIPPED}到哪了", meta))
    assert TRACKING in answer and "已由中通快递发出" in answer


def test_other_customers_order_is_not_found(shop: Stack) -> None:
    sender, meta = fresh_sender(), {"customer_token": token("C9002")}
    answer = bot_text(shop.say(sender, f"订单{SHIPPED}到哪了", meta))
    assert "没有找到" in answer and TRACKING not in answer


@pytest.mark.parametrize("bad_token", ["not-a-jwt", None])
def test_invalid_or_expired_token_is_anonymous(shop: Stack, bad_token) -> None:
    value = bad_token or token("C9001", ttl=-60)
    sender, meta = fresh_sender(), {"customer_token": value}
    shop.say(sender, "查物流", meta)
    reply = bot_text(shop.say(sender, SHIPPED, meta))
    assert "后四位" in reply and TRACKING not in reply


def test_faq_inside_the_order_form_then_back(shop: Stack) -> None:
    sender = fresh_sender()
    shop.say(sender, "我的快递到哪了")
    faq = bot_text(shop.say(sender, "运费怎么算"))
    assert "包邮" in faq and "订单号" in faq
    shop.say(sender, SHIPPED)
    assert TRACKING in bot_text(shop.say(sender, "5678"))


def test_leaving_the_order_form(shop: Stack) -> None:
    sender = fresh_sender()
    shop.say(sender, "我要退货")
    assert "退出" in bot_text(shop.say(sender, "算了"))
    assert "您好" in bot_text(shop.say(sender, "你好"))


def test_non_dict_metadata_is_rejected(shop: Stack) -> None:
    import requests

    response = requests.post(shop.rest_url, json={"sender": "x", "message": "hi",
                                                  "metadata": "token"}, timeout=30)
    assert response.status_code == 400
