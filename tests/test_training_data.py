"""Training data checks that need the real tokenisation pipeline.

DIET silently drops entity annotations that do not line up with token
boundaries ("Misaligned entity annotation" warnings); with Chinese that is
the commonest way to lose training data. These tests run the same
normaliser, spaCy pipeline and tokenizer as ``config.yml``.
"""
from __future__ import annotations

import unicodedata
import warnings
from pathlib import Path

import pytest
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.nlu.utils.spacy_utils import SpacyNLP
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.utils.io import read_yaml_file

from conftest import ROOT
from kefu_nlu.components import TextNormalizer

SPACY_MODEL = ROOT / "var" / "spacy" / "zh_kefu"


def spacy_config() -> dict:
    config = read_yaml_file(str(ROOT / "config.yml"))
    return next(c for c in config["pipeline"] if c["name"] == "SpacyNLP")


@pytest.fixture(scope="module")
def tokenized():
    if not SPACY_MODEL.exists():
        pytest.fail("spaCy pipeline missing: run `make train` first")
    config = spacy_config()
    assert Path(config["model"]) == Path("var/spacy/zh_kefu")
    data = load_data(str(ROOT / "data" / "nlu"))
    TextNormalizer(TextNormalizer.get_default_config()).process_training_data(data)
    nlp = SpacyNLP(SpacyNLP.load_model(str(SPACY_MODEL)), config)
    nlp.process_training_data(data, SpacyNLP.load_model(str(SPACY_MODEL)))
    SpacyTokenizer(SpacyTokenizer.get_default_config()).process_training_data(data)
    return data


def test_no_misaligned_entity_annotations(tokenized) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        EntityExtractorMixin.check_correct_entity_annotations(tokenized)
    misaligned = [str(w.message) for w in caught if "Misaligned" in str(w.message)]
    assert not misaligned, misaligned[:3]


def test_entities_are_annotated_somewhere(tokenized) -> None:
    annotated = {e["entity"] for m in tokenized.entity_examples for e in m.get("entities")}
    assert {"order_id", "phone", "rating"} <= annotated


def test_enough_examples_per_intent(tokenized) -> None:
    counts: dict = {}
    for message in tokenized.intent_examples:
        key = message.get("intent_response_key") or message.get("intent")
        counts[key] = counts.get(key, 0) + 1
    domain = read_yaml_file(str(ROOT / "domain.yml"))
    for intent in domain["intents"]:
        # EXTERNAL_ intents are triggered through the HTTP API, never typed
        if intent != "faq" and not intent.startswith("EXTERNAL_"):
            assert counts.get(intent, 0) >= 30, intent
    faq = {k: v for k, v in counts.items() if k.startswith("faq/")}
    assert len(faq) == 8 and min(faq.values()) >= 15


def words_only(text: str) -> str:
    """Letters and digits of ``text``, lower-cased: punctuation and spaces dropped."""
    return "".join(ch for ch in text.lower() if unicodedata.category(ch)[0] in "LN")


def test_held_out_set_is_not_trained_on(tokenized) -> None:
    train = {words_only(m.get("text")) for m in tokenized.intent_examples}
    test = load_data(str(ROOT / "tests" / "nlu_test.yml"))
    TextNormalizer(TextNormalizer.get_default_config()).process_training_data(test)
    overlap = [m.get("text") for m in test.intent_examples
               if words_only(m.get("text")) in train]
    assert not overlap
    per_intent: dict = {}
    for message in test.intent_examples:
        per_intent[message.get("intent")] = per_intent.get(message.get("intent"), 0) + 1
    assert min(per_intent.values()) >= 8


def test_regexes_have_no_word_boundaries() -> None:
    data = load_data(str(ROOT / "data" / "nlu"))
    assert data.regex_features
    assert all("\\b" not in r["pattern"] for r in data.regex_features)
