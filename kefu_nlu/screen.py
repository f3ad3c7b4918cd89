"""Recognise messages that cannot be understood as language at all.

Shared by the NLU pipeline (which routes such messages to ``nlu_fallback``)
and the action server (which picks the polite answer). Standard library only.
"""
from __future__ import annotations

import unicodedata
from typing import Optional

MAX_MESSAGE_CHARS = 2000

EMPTY = "empty"
TOO_LONG = "too_long"
UNREADABLE = "unreadable"
NO_WORDS = "no_words"

_ALLOWED_CONTROLS = {"\n", "\r", "\t"}


def _is_junk_char(char: str) -> bool:
    """True for control, private-use, unassigned and replacement characters."""
    if char in _ALLOWED_CONTROLS:
        return False
    category = unicodedata.category(char)
    return category in {"Cc", "Co", "Cn", "Cs"} or char == "\ufffd"


def _has_word_char(text: str) -> bool:
    """True when ``text`` holds at least one letter or digit (any script)."""
    return any(unicodedata.category(char)[0] in {"L", "N"} for char in text)


def classify_input(text: Optional[str]) -> Optional[str]:
    """Return why ``text`` cannot be processed, or ``None`` when it is fine.

    Payloads of buttons (``/intent{...}``) are always fine.
    """
    if text is None or not text.strip():
        return EMPTY
    if text.startswith("/"):
        return None
    if len(text) > MAX_MESSAGE_CHARS:
        return TOO_LONG
    junk = sum(1 for char in text if _is_junk_char(char))
    if junk and junk * 5 >= len(text) or "\x00" in text:
        return UNREADABLE
    if not _has_word_char(text):
        return NO_WORDS
    return None
