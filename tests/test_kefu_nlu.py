"""Unit tests of the Chinese language helpers and NLU components."""
from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from kefu_nlu import screen
from kefu_nlu.components import EntityConsolidator, InputGuard, TextNormalizer
from kefu_nlu.normalize import fold_width, normalize_text, to_simplified
from kefu_nlu.segment import Segmenter, segment, with_case_variants


@pytest.mark.parametrize(
    "original, expected",
    [
        ("訂單號碼", "订单号码"),
        ("ＸＬ碼", "XL码"),
        ("１２３", "123"),
        ("運費險怎麼算？", "运费险怎么算?"),
        ("　你好", " 你好"),
        ("已经是简体", "已经是简体"),
        ("", ""),
    ],
)
def test_normalize_text(original: str, expected: str) -> None:
    assert normalize_text(original) == expected


@pytest.mark.parametrize("text", ["乾燥的頭髮", "我們買了一隻錶", "後來發現髮型", "ＡＢＣ　１２３"])
def test_normalization_keeps_length(text: str) -> None:
    assert len(normalize_text(text)) == len(text)
    assert len(to_simplified(text)) == len(text)
    assert len(fold_width(text)) == len(text)


def words(text: str) -> list:
    return [word for _s, _e, word in segment(text)]


@pytest.mark.parametrize(
    "text, word",
    [
        ("买了运费险吗", "运费险"),
        ("支持七天无理由吗", "七天无理由"),
        ("我要仅退款", "仅退款"),
        ("发顺丰吗", "顺丰"),
        ("那个蓝牙耳机", "蓝牙耳机"),
        ("这件t恤", "t恤"),
    ],
)
def test_user_dictionary_keeps_shop_words_whole(text: str, word: str) -> None:
    assert word in words(text)


def test_segment_offsets_point_into_text_and_skip_spaces() -> None:
    text = "订单123456789012 到哪了"
    spans = segment(text)
    assert all(text[start:end] == word for start, end, word in spans)
    assert all(word.strip() for _s, _e, word in spans)
    assert "123456789012" in [word for *_x, word in spans]


def test_segmenter_uses_given_dictionary() -> None:
    assert [w for *_x, w in Segmenter(["小鹿优选 100 nz"]).tokenize("小鹿优选")] == ["小鹿优选"]


def test_case_variants() -> None:
    assert with_case_variants(["T恤 100 nz", "卫衣"]) == ["T恤 100 nz", "t恤 100 nz", "卫衣"]


@pytest.mark.parametrize(
    "text, issue",
    [
        (None, screen.EMPTY),
        ("", screen.EMPTY),
        (" \n", screen.EMPTY),
        ("😂👍", screen.NO_WORDS),
        ("？！...", screen.NO_WORDS),
        ("a" * 2001, screen.TOO_LONG),
        ("\x00abc", screen.UNREADABLE),
        ("\x01\x02\x03ab", screen.UNREADABLE),
        ("\ue000\ue001\ue002x", screen.UNREADABLE),
        ("你好", None),
        ("😂 运费多少", None),
        ("a" * 2000, None),
        ("/request_human", None),
        ("行1\n行2\t", None),
    ],
)
def test_classify_input(text, issue) -> None:
    assert screen.classify_input(text) == issue


def normalizer() -> TextNormalizer:
    return TextNormalizer({**TextNormalizer.get_default_config()})


def test_text_normalizer_rewrites_text_and_flags_issues() -> None:
    ok, junk, long = Message(data={"text": "訂單"}), Message(data={"text": "🙂"}), Message(
        data={"text": "字" * 5000}
    )
    normalizer().process([ok, junk, long])
    assert ok.get("text") == "订单" and ok.get("kefu_input_issue") is None
    assert junk.get("kefu_input_issue") == screen.NO_WORDS
    assert long.get("kefu_input_issue") == screen.TOO_LONG
    assert len(long.get("text")) == 2001


def test_input_guard_overrides_intent_only_for_flagged_messages() -> None:
    flagged = Message(data={"text": "🙂", "kefu_input_issue": screen.NO_WORDS,
                            "intent": {"name": "greet", "confidence": 0.9}})
    normal = Message(data={"text": "你好", "intent": {"name": "greet", "confidence": 0.9}})
    InputGuard({}).process([flagged, normal])
    assert flagged.get("intent") == {"name": "nlu_fallback", "confidence": 1.0}
    assert normal.get("intent")["name"] == "greet"


def entity(kind: str, start: int, end: int, value: str, extractor: str) -> dict:
    return {"entity": kind, "start": start, "end": end, "value": value,
            "extractor": extractor}


def test_entity_consolidator_prefers_rules_and_cleans_digits() -> None:
    consolidator = EntityConsolidator(EntityConsolidator.get_default_config())
    result = consolidator.consolidate([
        entity("order_id", 2, 20, "202411180001234567", "DIETClassifier"),
        entity("order_id", 2, 20, "202411180001234567", "RegexEntityExtractor"),
        entity("phone", 24, 35, "138 1234 5678", "DIETClassifier"),
        entity("product", 40, 44, "蓝牙耳机", "SpacyEntityExtractor"),
        entity("product", 40, 42, "蓝牙", "DIETClassifier"),
    ])
    assert [(e["entity"], e["value"], e["extractor"]) for e in result] == [
        ("order_id", "202411180001234567", "RegexEntityExtractor"),
        ("phone", "13812345678", "DIETClassifier"),
        ("product", "蓝牙耳机", "SpacyEntityExtractor"),
    ]
