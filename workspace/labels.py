"""Simplified Chinese labels and time formatting for what agents read."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Dict, Optional
from zoneinfo import ZoneInfo

REASONS: Dict[str, str] = {
    "request_human": "客户要求转人工",
    "complaint": "投诉",
    "repeated_fallback": "机器人多次未能理解",
    "payment_dispute": "支付争议",
    "delivery_dispute": "物流争议",
    "backend_down": "系统故障",
    "refund_dispute": "退款争议",
    "after_sales": "售后问题",
}
TIERS: Dict[str, str] = {
    "normal": "普通会员",
    "silver": "白银会员",
    "gold": "黄金会员",
    "platinum": "铂金会员",
}
CHANNELS: Dict[str, str] = {
    "socketio": "网页聊天",
    "rest": "接口",
    "kefu_rest": "接口",
}
STATUSES: Dict[str, str] = {
    "waiting": "排队中",
    "assigned": "接待中",
    "closed": "已结束",
    "cancelled": "客户已取消",
    "callback": "待回访",
}


def label(table: Dict[str, str], key: Optional[str], empty: str = "未知") -> str:
    """The Chinese label of ``key``; the key itself when unknown, ``empty`` when blank."""
    if not key:
        return empty
    return table.get(key, key)


def local_time(value: Optional[datetime], zone: ZoneInfo, fmt: str = "%m-%d %H:%M:%S") -> str:
    """Format an aware datetime in the service time zone ("" for None)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(zone).strftime(fmt)


def iso(value: Optional[datetime]) -> Optional[str]:
    """ISO 8601 string of an aware datetime, or None."""
    return value.isoformat() if value else None
