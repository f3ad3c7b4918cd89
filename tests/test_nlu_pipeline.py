"""What the trained model understands, through the server's /model/parse."""
from __future__ import annotations

from typing import Dict, List

import pytest

from conftest import Stack

pytestmark = pytest.mark.integration


def entities(result: dict, kind: str) -> List[Dict]:
    return [e for e in result["entities"] if e["entity"] == kind]


def test_traditional_and_full_width_work_like_simplified(kefu_stack: Stack) -> None:
    text = "訂單１２３４５６７８９０１２３４５６到哪了？"
    result = kefu_stack.parse(text)
    simplified = kefu_stack.parse("订单1234567890123456到哪了?")
    assert result["intent"]["name"] == simplified["intent"]["name"] == "track_shipment"
    [order] = entities(result, "order_id")
    assert order["value"] == "1234567890123456"
    assert text[order["start"]:order["end"]] == "１２３４５６７８９０１２３４５６"


def test_order_number_and_phone_are_not_confused(kefu_stack: Stack) -> None:
    result = kefu_stack.parse("订单号202411180001234567，手机13812345678")
    assert [e["value"] for e in entities(result, "order_id")] == ["202411180001234567"]
    assert [e["value"] for e in entities(result, "phone")] == ["13812345678"]


@pytest.mark.parametrize("text", ["手机尾号8000", "后四位是6677"])
def test_last_four_digits_of_a_phone(kefu_stack: Stack, text: str) -> None:
    result = kefu_stack.parse(text)
    assert [e["value"] for e in entities(result, "phone")] == [text[-4:]]
    assert not entities(result, "order_id")


def test_numbers_inside_longer_numbers_are_not_phones(kefu_stack: Stack) -> None:
    result = kefu_stack.parse("单号13812345678901234")
    assert not entities(result, "phone")
    assert [e["value"] for e in entities(result, "order_id")] == ["13812345678901234"]


def test_product_from_the_lookup_table(kefu_stack: Stack) -> None:
    result = kefu_stack.parse("纯棉T恤有XL码吗")
    assert result["intent"]["name"] == "product_inquiry"
    assert [e["value"] for e in entities(result, "product")] == ["纯棉T恤"]


def test_each_entity_is_reported_once(kefu_stack: Stack) -> None:
    result = kefu_stack.parse("订单202411180001234567的蓝牙耳机什么时候发货")
    spans = [(e["start"], e["end"]) for e in result["entities"]]
    assert len(spans) == len(set(spans))


@pytest.mark.parametrize("text, rating", [("给5分", "5"), ("5", "5"), ("１", "1"), ("3", "3")])
def test_rating_value(kefu_stack: Stack, text: str, rating: str) -> None:
    result = kefu_stack.parse(text)
    assert result["intent"]["name"] == "rate_service"
    assert [e["value"] for e in entities(result, "rating")] == [rating]


@pytest.mark.parametrize("text", ["8000", "6677"])
def test_bare_four_digits_answer_the_phone_question(kefu_stack: Stack, text: str) -> None:
    """The featurizers see every number as __NUMBER__; the regex features tell 5 from 8000."""
    result = kefu_stack.parse(text)
    assert result["intent"]["name"] == "inform"
    assert [e["value"] for e in entities(result, "phone")] == [text]
    assert not entities(result, "rating")


@pytest.mark.parametrize(
    "text, intent",
    [
        ("我的kuaidi到哪了", "track_shipment"),
        ("退kuan什么时候到账", "check_refund_status"),
        ("转人工!!!", "request_human"),
        ("你們服務太差了我要投訴", "complain"),
    ],
)
def test_mixed_pinyin_and_traditional(kefu_stack: Stack, text: str, intent: str) -> None:
    assert kefu_stack.parse(text)["intent"]["name"] == intent


def test_junk_goes_to_fallback(kefu_stack: Stack) -> None:
    result = kefu_stack.parse("🙂🙂🙂")
    assert result["intent"] == {"name": "nlu_fallback", "confidence": 1.0}
