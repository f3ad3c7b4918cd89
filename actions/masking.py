"""Masking of personal data in replies and logs.

Customers and agents see ``138****8000`` and ``上海市浦东新区****``; log
records never contain a full mainland mobile number.
"""
from __future__ import annotations

import logging
import re
from typing import Optional

from actions.conversation import digits

PHONE_PATTERN = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_phone(phone: Optional[str]) -> str:
    """``13800138000`` -> ``138****8000``; anything else keeps its last 4 digits."""
    number = digits(phone)
    if len(number) == 11:
        return f"{number[:3]}****{number[-4:]}"
    return f"****{number[-4:]}" if len(number) >= 4 else "****"


def mask_name(name: Optional[str]) -> str:
    """``张三`` -> ``张*``; ``欧阳娜娜`` -> ``欧***``."""
    if not name:
        return ""
    return name[0] + "*" * max(1, len(name) - 1)


def mask_address(region: Optional[str], detail: Optional[str] = None) -> str:
    """Show the region only: ``上海市浦东新区****``."""
    return f"{region or ''}****"


def mask_text(text: str) -> str:
    """Mask every mainland mobile number inside ``text``."""
    return PHONE_PATTERN.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def _mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Replace the record's message by its masked text when it holds a phone."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        return record
    masked = mask_text(message)
    if masked != message:
        record.msg, record.args = masked, ()
    return record


def install_log_masking() -> None:
    """Mask phone numbers in every log record of this process (idempotent).

    Wraps the log record factory, so records of every logger and handler
    (including rasa-sdk's own) are masked before anything formats them.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "kefu_masking", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:  # type: ignore[no-untyped-def]
        return _mask_record(current(*args, **kwargs))

    factory.kefu_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
