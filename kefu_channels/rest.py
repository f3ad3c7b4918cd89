"""A stricter REST channel: malformed requests get a 400, never a 5xx.

Rasa's built-in ``rest`` channel answers a body that is not a JSON object, or
a ``message`` that is not a string, with a 500, and files every request
without ``sender`` under one shared conversation "default" (so strangers
would share a transcript). This channel keeps the same URL and reply format
(``POST /webhooks/rest/webhook`` with ``{"sender": ..., "message": ...}``) and
rejects such requests with a clear 400 instead.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Text

from rasa.core.channels.rest import RestInput
from sanic.exceptions import InvalidUsage
from sanic.request import Request

MAX_SENDER_CHARS = 128


def json_object(request: Request) -> Dict[Text, Any]:
    """The request's JSON body, which must be an object (else 400)."""
    body = request.json
    if not isinstance(body, dict):
        raise InvalidUsage('请求体必须是 JSON 对象，例如 {"sender": "u1", "message": "你好"}')
    return body


def valid_sender(value: Any) -> Text:
    """A usable conversation id from ``value`` (else 400)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidUsage("缺少 sender（会话标识）")
    if len(value) > MAX_SENDER_CHARS:
        raise InvalidUsage(f"sender 不能超过 {MAX_SENDER_CHARS} 个字符")
    return value.strip()


def valid_message(value: Any) -> Text:
    """The message text from ``value``; missing means empty (else 400)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidUsage("message 必须是文本")
    return value


def valid_metadata(value: Any) -> Optional[Dict[Text, Any]]:
    """Message metadata (e.g. ``customer_token``): an object or nothing (else 400)."""
    if value is None or isinstance(value, dict):
        return value
    raise InvalidUsage("metadata 必须是 JSON 对象")


class KefuRestInput(RestInput):
    """``rest`` channel with request validation (see module docstring)."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        return valid_sender(json_object(req).get("sender"))

    def _extract_message(self, req: Request) -> Optional[Text]:
        return valid_message(json_object(req).get("message"))

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        return valid_metadata(json_object(request).get("metadata"))
