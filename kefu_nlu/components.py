"""Rasa graph components of Kefu's Chinese NLU pipeline.

Pipeline order (see ``config.yml``)::

    TextNormalizer -> SpacyNLP -> SpacyTokenizer -> featurizers -> DIET ...
    -> EntitySynonymMapper -> EntityConsolidator -> ... -> FallbackClassifier
    -> InputGuard

- ``TextNormalizer`` rewrites the message text to Simplified Chinese with
  ASCII letters/digits, keeping its length so entity offsets stay valid.
- ``EntityConsolidator`` removes the same entity found by several extractors.
- ``InputGuard`` sends empty, junk and over-long messages to ``nlu_fallback``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    EXTRACTOR,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

import kefu_nlu.spacy_tokenizer  # noqa: F401  registers the spaCy tokenizer
from kefu_nlu.normalize import normalize_text
from kefu_nlu.screen import MAX_MESSAGE_CHARS, classify_input

NLU_FALLBACK = "nlu_fallback"
INPUT_ISSUE = "kefu_input_issue"


class _StatelessComponent(GraphComponent):
    """Base for components without training or persisted state."""

    def __init__(self, config: Dict[Text, Any]) -> None:
        self._config = config

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls(config)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False
)
class TextNormalizer(_StatelessComponent):
    """Normalise Traditional/full-width text before tokenisation.

    The original text stays in the tracker (``UserUttered.text``); NLU sees the
    normalised text, which has the same length. Messages longer than
    ``MAX_MESSAGE_CHARS`` are cut for NLU only; ``InputGuard`` answers them.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"max_chars": MAX_MESSAGE_CHARS}

    def _normalize(self, message: Message) -> None:
        text = message.get(TEXT)
        if not isinstance(text, str):
            return
        issue = classify_input(text)
        if issue:
            message.set(INPUT_ISSUE, issue)
        message.set(TEXT, normalize_text(text[: self._config["max_chars"] + 1]))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalise every training example."""
        for example in training_data.training_examples:
            self._normalize(example)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Normalise incoming messages."""
        for message in messages:
            self._normalize(message)
        return messages


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False
)
class EntityConsolidator(_StatelessComponent):
    """Keep one entity per span when several extractors found it.

    Overlapping entities of the same type are resolved by extractor priority
    (rule-based extractors first); values of ``order_id``/``phone`` are reduced
    to their digits.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "priority": [
                "RegexEntityExtractor",
                "SpacyEntityExtractor",
                "DIETClassifier",
            ],
            "digit_entities": ["order_id", "phone"],
        }

    def _rank(self, entity: Dict[Text, Any]) -> int:
        priority = self._config["priority"]
        extractor = entity.get(EXTRACTOR)
        return priority.index(extractor) if extractor in priority else len(priority)

    @staticmethod
    def _overlaps(a: Dict[Text, Any], b: Dict[Text, Any]) -> bool:
        return (
            a[ENTITY_ATTRIBUTE_START] < b[ENTITY_ATTRIBUTE_END]
            and b[ENTITY_ATTRIBUTE_START] < a[ENTITY_ATTRIBUTE_END]
        )

    def consolidate(self, entities: List[Dict[Text, Any]]) -> List[Dict[Text, Any]]:
        """Return ``entities`` without lower-priority overlapping duplicates."""
        kept: List[Dict[Text, Any]] = []
        for entity in sorted(entities, key=self._rank):
            if ENTITY_ATTRIBUTE_START not in entity:
                kept.append(entity)
                continue
            clash = any(
                other.get(ENTITY_ATTRIBUTE_START) is not None
                and self._overlaps(entity, other)
                for other in kept
            )
            if not clash:
                kept.append(self._clean_value(entity))
        return sorted(kept, key=lambda e: e.get(ENTITY_ATTRIBUTE_START, 0))

    def _clean_value(self, entity: Dict[Text, Any]) -> Dict[Text, Any]:
        if entity.get(ENTITY_ATTRIBUTE_TYPE) in self._config["digit_entities"]:
            value = str(entity.get("value", ""))
            entity["value"] = "".join(char for char in value if char.isdigit()) or value
        return entity

    def process(self, messages: List[Message]) -> List[Message]:
        """Consolidate the entities of each message."""
        for message in messages:
            entities = message.get(ENTITIES) or []
            if entities:
                message.set(ENTITIES, self.consolidate(entities), add_to_output=True)
        return messages


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class InputGuard(_StatelessComponent):
    """Route messages that are empty, junk or too long to ``nlu_fallback``.

    A classifier would otherwise pick *some* intent for ``🙂🙂`` or a pasted
    binary file. The fallback action reads the message and answers politely.
    """

    def process(self, messages: List[Message]) -> List[Message]:
        """Override the intent of unusable messages."""
        for message in messages:
            if not message.get(INPUT_ISSUE):
                continue
            intent = {INTENT_NAME_KEY: NLU_FALLBACK, PREDICTED_CONFIDENCE_KEY: 1.0}
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [intent], add_to_output=True)
            message.set(ENTITIES, [], add_to_output=True)
        return messages

