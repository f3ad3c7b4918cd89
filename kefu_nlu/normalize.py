"""Length-preserving text normalisation for Chinese customer messages.

Customers type Traditional characters (訂單), full-width letters and digits
(ＸＬ, １２３) and ideographic spaces. NLU must treat them exactly like their
Simplified/ASCII forms, while entity offsets keep pointing into the text the
customer actually sent. Every function here therefore returns a string of the
same length as its input, character for character.
"""
from __future__ import annotations

from functools import lru_cache

import opencc

_FULLWIDTH_START = 0xFF01
_FULLWIDTH_END = 0xFF5E
_FULLWIDTH_OFFSET = 0xFEE0
_IDEOGRAPHIC_SPACE = "\u3000"


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    """Return the shared OpenCC Traditional->Simplified converter."""
    return opencc.OpenCC("t2s")


def fold_width(text: str) -> str:
    """Map full-width ASCII variants and the ideographic space to ASCII."""
    out = []
    for char in text:
        code = ord(char)
        if _FULLWIDTH_START <= code <= _FULLWIDTH_END:
            out.append(chr(code - _FULLWIDTH_OFFSET))
        elif char == _IDEOGRAPHIC_SPACE:
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def to_simplified(text: str) -> str:
    """Convert Traditional Chinese to Simplified, keeping the length.

    OpenCC's phrase tables convert whole phrases; when a conversion would
    change the length we fall back to converting character by character and
    keep any character whose conversion is not one-to-one.
    """
    converted = _converter().convert(text)
    if len(converted) == len(text):
        return converted
    out = []
    for char in text:
        single = _converter().convert(char)
        out.append(single if len(single) == 1 else char)
    return "".join(out)


def normalize_text(text: str) -> str:
    """Return ``text`` with full-width folded and Traditional simplified."""
    if not text:
        return text
    return to_simplified(fold_width(text))
