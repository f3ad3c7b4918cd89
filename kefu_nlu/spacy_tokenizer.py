"""A spaCy tokenizer that segments Chinese with jieba and Kefu's dictionary.

Registered as ``kefu.JiebaTokenizer.v1`` so a pipeline saved with it can be
loaded by ``spacy.load`` once this module is imported (the Rasa components
module imports it). The user dictionary is saved inside the pipeline
directory, so a built pipeline does not depend on files elsewhere.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, List, Union

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import get_words_and_spaces
from spacy.vocab import Vocab

from kefu_nlu.normalize import normalize_text
from kefu_nlu.segment import Segmenter

USER_DICT_FILE = "user_dict.json"


class JiebaTokenizer:
    """Callable spaCy tokenizer: normalise, segment, build a ``Doc``.

    Token texts are taken from the normalised text, which has the same length
    as the input, so ``token.idx`` offsets point into the original text.
    """

    def __init__(self, vocab: Vocab, user_lines: Iterable[str] = ()) -> None:
        self.vocab = vocab
        self.segmenter = Segmenter(user_lines)

    def __call__(self, text: str) -> Doc:
        normalized = normalize_text(text)
        words = [word for _start, _end, word in self.segmenter.tokenize(normalized)]
        words, spaces = get_words_and_spaces(words, normalized)
        return Doc(self.vocab, words=words, spaces=spaces)

    def to_disk(self, path: Union[str, Path], **_kwargs: Any) -> None:
        """Save the user dictionary next to the pipeline."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / USER_DICT_FILE, self.segmenter.user_lines)

    def from_disk(self, path: Union[str, Path], **_kwargs: Any) -> "JiebaTokenizer":
        """Load the user dictionary saved by :meth:`to_disk`."""
        lines: List[str] = srsly.read_json(Path(path) / USER_DICT_FILE)
        self.segmenter = Segmenter(lines)
        return self

    def to_bytes(self, **_kwargs: Any) -> bytes:
        """Serialise the user dictionary (used by ``nlp.to_bytes``)."""
        return srsly.json_dumps(self.segmenter.user_lines).encode("utf-8")

    def from_bytes(self, data: bytes, **_kwargs: Any) -> "JiebaTokenizer":
        """Restore the user dictionary from :meth:`to_bytes` output."""
        self.segmenter = Segmenter(srsly.json_loads(data.decode("utf-8")))
        return self


@spacy.registry.tokenizers("kefu.JiebaTokenizer.v1")
def create_jieba_tokenizer() -> Callable[[Language], JiebaTokenizer]:
    """spaCy registry factory for :class:`JiebaTokenizer`."""

    def make(nlp: Language) -> JiebaTokenizer:
        return JiebaTokenizer(nlp.vocab)

    return make
