"""jieba word segmentation with Kefu's domain user dictionary.

The user dictionary (``resources/userdict.txt``) keeps shop words such as
运费险, 七天无理由 and 仅退款 in one piece, so entity annotations line up with
token boundaries. Product names from the lookup table are added as words too.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Iterable, List, Tuple

import jieba

jieba.setLogLevel(logging.WARNING)

RESOURCES = Path(__file__).resolve().parent / "resources"
USER_DICT = RESOURCES / "userdict.txt"
PRODUCT_LOOKUP = Path(__file__).resolve().parent.parent / "data" / "lookups" / "product.yml"

Span = Tuple[int, int, str]


def read_user_words(path: Path = USER_DICT) -> List[str]:
    """Return the jieba user-dictionary lines (``word [freq] [tag]``) of ``path``."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def read_product_names(path: Path = PRODUCT_LOOKUP) -> List[str]:
    """Return the product names listed in the NLU lookup table file."""
    if not path.exists():
        return []
    from rasa.shared.utils.io import read_yaml_file

    names: List[str] = []
    for block in read_yaml_file(str(path)).get("nlu", []) or []:
        if block.get("lookup") == "product":
            names.extend(
                line.lstrip("- ").strip()
                for line in str(block.get("examples", "")).splitlines()
                if line.strip()
            )
    return names


class Segmenter:
    """A private jieba tokenizer loaded with a user dictionary."""

    def __init__(self, user_lines: Iterable[str] = ()) -> None:
        self._jieba = jieba.Tokenizer()
        self.user_lines = list(user_lines)
        for line in self.user_lines:
            parts = line.split()
            freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            tag = parts[2] if len(parts) > 2 else None
            self._jieba.add_word(parts[0], freq, tag)

    def tokenize(self, text: str) -> List[Span]:
        """Return ``(start, end, word)`` spans of ``text``, whitespace dropped."""
        return [
            (start, end, word)
            for word, start, end in self._jieba.tokenize(text, HMM=True)
            if word.strip()
        ]


def with_case_variants(lines: Iterable[str]) -> List[str]:
    """Add a lower-case copy of every entry with Latin letters (T恤 -> t恤).

    jieba's dictionary look-up is case-sensitive, customers' typing is not.
    """
    out: List[str] = []
    for line in lines:
        out.append(line)
        word, _, rest = line.partition(" ")
        if word.lower() != word:
            out.append(f"{word.lower()} {rest}".strip())
    return out


def default_user_lines() -> List[str]:
    """User dictionary lines plus product names from the lookup table."""
    products = [f"{name} 100 nz" for name in read_product_names() if " " not in name]
    return with_case_variants(read_user_words() + products)


@lru_cache(maxsize=1)
def default_segmenter() -> Segmenter:
    """The segmenter built from the project's dictionary and product lookup."""
    return Segmenter(default_user_lines())


def segment(text: str) -> List[Span]:
    """Segment ``text`` with the project's default segmenter."""
    return default_segmenter().tokenize(text)
