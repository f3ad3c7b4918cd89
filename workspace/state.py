"""Shared app state and small response helpers (imported by every handler module)."""
from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Awaitable, Callable, Deque, Dict, Optional, Tuple, TypeVar, Union
from zoneinfo import ZoneInfo

from aiohttp import web

from actions.handoff.rasa_api import RasaClient
from actions.handoff.tickets import Agent, TicketStore

T = TypeVar("T")
ProfileResult = Optional[Dict[str, Any]]
#: ``customer_profile(customer_id)``: profile and recent orders, already masked.
ProfileFn = Callable[[str], Union[ProfileResult, Awaitable[ProfileResult]]]


class LoginLimiter:
    """At most ``limit`` failed logins per (address, username) in ``window`` seconds."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: Dict[Tuple[str, str], Deque[float]] = defaultdict(deque)

    def blocked(self, key: Tuple[str, str]) -> bool:
        """True if ``key`` used up its attempts."""
        return len(self._recent(key)) >= self.limit

    def failed(self, key: Tuple[str, str]) -> None:
        """Count a failed attempt."""
        self._recent(key).append(time.monotonic())

    def reset(self, key: Tuple[str, str]) -> None:
        """Forget failures after a successful login."""
        self._failures.pop(key, None)

    def _recent(self, key: Tuple[str, str]) -> Deque[float]:
        attempts = self._failures[key]
        while attempts and attempts[0] < time.monotonic() - self.window:
            attempts.popleft()
        return attempts


@dataclass
class WorkspaceState:
    """Everything the handlers need, fixed when the app is created."""

    store: TicketStore
    rasa: RasaClient
    customer_profile: Optional[ProfileFn]
    session_ttl: timedelta
    secure_cookies: bool
    zone: ZoneInfo
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    last_heartbeat: Dict[int, float] = field(default_factory=dict)


STATE = web.AppKey("kefu_workspace_state", WorkspaceState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AGENT_KEY = "kefu_agent"


def state_of(request: web.Request) -> WorkspaceState:
    """The app's ``WorkspaceState``."""
    return request.app[STATE]


def agent_of(request: web.Request) -> Agent:
    """The logged-in agent (set by the auth middleware)."""
    return request[AGENT_KEY]


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (database, Rasa HTTP) off the event loop."""
    return await asyncio.to_thread(fn, *args)


def json_error(status: int, message: str, code: str) -> web.Response:
    """A JSON error for the browser: ``{"error": <Chinese text>, "code": <id>}``."""
    return web.json_response({"error": message, "code": code}, status=status)


class ApiError(Exception):
    """Raised by handlers; the app answers ``json_error(status, message, code)``."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
