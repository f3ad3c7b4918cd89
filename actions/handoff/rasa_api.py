"""A small client for Rasa's HTTP API (``rasa run --enable-api --auth-token T``).

Used by the agent workspace to read transcripts and to speak to customers::

    rasa = RasaClient("http://localhost:5005", token="T")
    rasa.append_events(cid, [{"event": "bot", "text": "您好", "metadata": {"agent": "小王"}}])

Every method raises ``RasaUnavailable`` when Rasa cannot be reached, times
out or answers 5xx, and ``RasaError`` for other failures (bad token, unknown
intent, ...). Error messages never contain the auth token.

Note on ``append_events``: Rasa only delivers appended ``bot`` events to the
customer's channel when ``execute_side_effects=true`` is passed along with
``output_channel``; without it they are merely stored in the tracker. This
client passes both by default.
"""
from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import quote

import requests

DEFAULT_TIMEOUT = 10.0


class RasaError(Exception):
    """Rasa answered with an error, or with something that is not JSON."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class RasaUnavailable(RasaError):
    """Rasa is down, unreachable, too slow, or failed with a 5xx."""


class RasaClient:
    """Synchronous client for the conversation endpoints of Rasa's HTTP API."""

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        """``url`` like ``http://localhost:5005``; ``token`` is sent as ``?token=``."""
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    # ------------------------------------------------------------ endpoints

    def get_tracker(self, conversation_id: str) -> Dict[str, Any]:
        """The conversation's tracker (events after the last restart)."""
        return self._request("GET", self._path(conversation_id, "tracker"))

    def append_events(
        self,
        conversation_id: str,
        events: Sequence[Dict[str, Any]],
        output_channel: Optional[str] = "latest",
        execute_side_effects: bool = True,
    ) -> Dict[str, Any]:
        """Append events; ``bot`` events are also sent to ``output_channel``.

        ``output_channel="latest"`` means the channel the customer last wrote
        from (e.g. the Socket.IO web chat).
        """
        params: Dict[str, str] = {}
        if output_channel:
            params["output_channel"] = output_channel
        if execute_side_effects:
            params["execute_side_effects"] = "true"
        path = self._path(conversation_id, "tracker/events")
        return self._request("POST", path, params=params, body=list(events))

    def execute_action(
        self, conversation_id: str, action: str, output_channel: Optional[str] = "latest"
    ) -> Dict[str, Any]:
        """Run one action (e.g. a ``utter_*`` response) in the conversation."""
        params = {"output_channel": output_channel} if output_channel else {}
        path = self._path(conversation_id, "execute")
        return self._request("POST", path, params=params, body={"name": action})

    def trigger_intent(
        self,
        conversation_id: str,
        intent: str,
        entities: Optional[Dict[str, Any]] = None,
        output_channel: Optional[str] = "latest",
    ) -> Dict[str, Any]:
        """Inject an external intent; the bot predicts and runs its next actions."""
        params = {"output_channel": output_channel} if output_channel else {}
        body: Dict[str, Any] = {"name": intent}
        if entities:
            body["entities"] = entities
        path = self._path(conversation_id, "trigger_intent")
        return self._request("POST", path, params=params, body=body)

    # -------------------------------------------------------------- helpers

    @staticmethod
    def _path(conversation_id: str, tail: str) -> str:
        if not conversation_id:
            raise ValueError("conversation_id is required")
        return f"/conversations/{quote(conversation_id, safe='')}/{tail}"

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _request(
        self,
        method: str,
        path: str,
        params: Optional[Dict[str, str]] = None,
        body: Any = None,
    ) -> Dict[str, Any]:
        query = dict(params or {})
        if self.token:
            query["token"] = self.token
        label = f"Rasa {method} {path}"
        try:
            response = self._session().request(
                method, self.url + path, params=query, json=body, timeout=self.timeout
            )
        except requests.Timeout:
            raise RasaUnavailable(f"{label}: timed out after {self.timeout:g}s") from None
        except requests.RequestException as exc:
            raise RasaUnavailable(f"{label}: {type(exc).__name__}") from None
        return self._decode(label, response)

    @staticmethod
    def _decode(label: str, response: requests.Response) -> Dict[str, Any]:
        status = response.status_code
        if status >= 500:
            raise RasaUnavailable(f"{label}: HTTP {status}", status)
        if status >= 400:
            raise RasaError(f"{label}: HTTP {status} {_error_detail(response)}", status)
        try:
            data = response.json()
        except ValueError:
            raise RasaError(f"{label}: answer is not JSON", status) from None
        return data if isinstance(data, dict) else {"data": data}


def _error_detail(response: requests.Response) -> str:
    """Rasa's short error message, if the body has one."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if isinstance(data, dict):
        return str(data.get("message") or data.get("reason") or "")[:200]
    return ""


__all__: List[str] = ["RasaClient", "RasaError", "RasaUnavailable"]
