"""The current time, in the shop's time zone.

``KEFU_CLOCK`` (an ISO 8601 time with offset) freezes the clock, for demos
and tests whose data lives on fixed dates; unset, the real time is used.
"""
from __future__ import annotations

import os
from datetime import datetime
from zoneinfo import ZoneInfo

SHOP_TIMEZONE = ZoneInfo(os.environ.get("KEFU_SERVICE_TIMEZONE", "Asia/Shanghai"))


def now() -> datetime:
    """Timezone-aware current time in the shop's time zone."""
    frozen = os.environ.get("KEFU_CLOCK")
    if frozen:
        return datetime.fromisoformat(frozen).astimezone(SHOP_TIMEZONE)
    return datetime.now(SHOP_TIMEZONE)


def today() -> str:
    """Today's date in the shop's time zone, ``YYYY-MM-DD``."""
    return now().date().isoformat()
