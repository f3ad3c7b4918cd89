"""Turn a Rasa tracker into the transcript an agent reads."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo

from workspace.labels import local_time

Message = Dict[str, Any]

SYSTEM_TEXTS = {
    "pause": "会话已转接人工客服，机器人暂停回复",
    "resume": "机器人已恢复接待",
}


def transcript(tracker: Dict[str, Any], zone: ZoneInfo) -> List[Message]:
    """Customer, bot, agent and system messages of a tracker, oldest first.

    Each message: ``seq`` (0-based), ``role`` (customer / bot / agent /
    system), ``text``, ``agent`` (display name, agent messages only), ``ts``
    (Unix seconds) and ``time`` (formatted in ``zone``).
    """
    messages: List[Message] = []
    for event in tracker.get("events") or []:
        message = _message(event)
        if message is None:
            continue
        ts = float(event.get("timestamp") or 0)
        when = datetime.fromtimestamp(ts, tz=timezone.utc) if ts else None
        message.update(seq=len(messages), ts=ts, time=local_time(when, zone))
        messages.append(message)
    return messages


def _message(event: Dict[str, Any]) -> Optional[Message]:
    kind = event.get("event")
    if kind == "user":
        return _user_message(event)
    if kind == "bot":
        return _bot_message(event)
    if kind in SYSTEM_TEXTS:
        return {"role": "system", "text": SYSTEM_TEXTS[kind], "agent": None}
    return None


def _user_message(event: Dict[str, Any]) -> Optional[Message]:
    metadata = event.get("metadata") or {}
    if metadata.get("is_external"):
        return None  # an intent injected by the system, not typed by the customer
    text = event.get("text") or ""
    if not text.strip():
        return None
    return {"role": "customer", "text": text, "agent": None}


def _bot_message(event: Dict[str, Any]) -> Optional[Message]:
    metadata = event.get("metadata") or {}
    parts = [event.get("text") or ""]
    parts.extend(_attachments(event.get("data") or {}))
    text = "\n".join(p for p in parts if p)
    if not text:
        return None
    agent = metadata.get("agent")
    role = "agent" if agent else "bot"
    return {"role": role, "text": text, "agent": str(agent) if agent else None}


def _attachments(data: Dict[str, Any]) -> List[str]:
    """Short placeholders for what the customer saw besides text."""
    notes: List[str] = []
    buttons = data.get("buttons") or data.get("quick_replies") or []
    titles = [str(b.get("title", "")) for b in buttons if isinstance(b, dict)]
    if titles:
        notes.append("［按钮：" + " / ".join(t for t in titles if t) + "］")
    if data.get("image"):
        notes.append("［图片］")
    if data.get("attachment"):
        notes.append("［附件］")
    if data.get("custom") or data.get("elements"):
        notes.append("［卡片消息］")
    return notes
