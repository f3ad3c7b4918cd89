"""Login, sessions and CSRF protection of the workspace.

- The session is an opaque random token in an HttpOnly, SameSite=Strict
  cookie; the database stores only its SHA-256 (``TicketStore`` sessions).
- Every route except the login page, its script/stylesheet and
  ``POST /api/login`` needs a valid session: APIs answer 401, pages redirect
  to ``/login``.
- Every state-changing request must be JSON and carry the custom header
  ``X-Kefu-Workspace: 1`` (a cross-site form or script cannot send it without
  a CORS preflight, which this app never allows); a foreign ``Origin`` is
  refused as well.
"""
from __future__ import annotations

import time
from typing import Optional, Tuple
from urllib.parse import urlsplit

from aiohttp import web

from actions.handoff.tickets import Agent
from workspace.state import AGENT_KEY, Handler, agent_of, blocking, json_error, state_of

SESSION_COOKIE = "kefu_ws_session"
CSRF_HEADER = "X-Kefu-Workspace"
HEARTBEAT_EVERY = 15.0  # seconds between heartbeats written per agent
MAX_FIELD = 200

PUBLIC_PATHS = frozenset({
    ("GET", "/login"),
    ("HEAD", "/login"),
    ("POST", "/api/login"),
    ("GET", "/static/app.css"),
    ("GET", "/static/login.js"),
    ("GET", "/favicon.ico"),
})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_api(request: web.Request) -> bool:
    """True for JSON API paths (401 instead of a redirect)."""
    return request.path.startswith("/api/")


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse state-changing requests that a foreign site could have forged."""
    if request.method in SAFE_METHODS:
        return await handler(request)
    if request.headers.get(CSRF_HEADER) != "1" or request.content_type != "application/json":
        return json_error(403, "请求无效，请刷新页面后重试", "csrf")
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        return json_error(403, "请求来源无效", "csrf")
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the logged-in agent to the request, or answer 401 / redirect."""
    if (request.method, request.path) in PUBLIC_PATHS:
        return await handler(request)
    agent = await session_agent(request)
    if agent is None:
        if is_api(request):
            return json_error(401, "登录已失效，请重新登录", "unauthenticated")
        raise web.HTTPFound("/login")
    request[AGENT_KEY] = agent
    if is_api(request):
        await _heartbeat(request, agent)
    return await handler(request)


async def session_agent(request: web.Request) -> Optional[Agent]:
    """The agent of the request's session cookie, if valid and unexpired."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or len(token) > MAX_FIELD:
        return None
    return await blocking(state_of(request).store.agent_for_session, token)


async def _heartbeat(request: web.Request, agent: Agent) -> None:
    """Mark the agent online, at most once every ``HEARTBEAT_EVERY`` seconds."""
    state = state_of(request)
    now = time.monotonic()
    if now - state.last_heartbeat.get(agent.id, float("-inf")) >= HEARTBEAT_EVERY:
        state.last_heartbeat[agent.id] = now
        await blocking(state.store.heartbeat, agent.id)


async def login(request: web.Request) -> web.Response:
    """``POST /api/login {"username", "password"}``: start a session (sets the cookie)."""
    credentials = await _credentials(request)
    if credentials is None:
        return json_error(400, "请输入用户名和密码", "bad_request")
    username, password = credentials
    state = state_of(request)
    key = (request.remote or "", username.lower())
    if state.limiter.blocked(key):
        return json_error(429, "登录失败次数过多，请 5 分钟后再试", "too_many_attempts")
    agent = await blocking(state.store.authenticate, username, password)
    if agent is None:
        state.limiter.failed(key)
        return json_error(401, "用户名或密码错误", "bad_credentials")
    state.limiter.reset(key)
    token = await blocking(state.store.create_session, agent.id, state.session_ttl)
    state.last_heartbeat.pop(agent.id, None)
    response = web.json_response({"agent": agent_json(agent)})
    _set_session_cookie(response, token, request)
    return response


async def logout(request: web.Request) -> web.Response:
    """``POST /api/logout``: end the session and clear the cookie."""
    state = state_of(request)
    agent = agent_of(request)
    await blocking(state.store.end_session, request.cookies.get(SESSION_COOKIE, ""))
    await blocking(state.store.go_offline, agent.id)
    state.last_heartbeat.pop(agent.id, None)
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    """``GET /api/me``: the logged-in agent."""
    return web.json_response({"agent": agent_json(agent_of(request))})


def agent_json(agent: Agent) -> dict:
    """What the browser may know about an agent."""
    return {"id": agent.id, "username": agent.username, "display_name": agent.display_name}


async def _credentials(request: web.Request) -> Optional[Tuple[str, str]]:
    try:
        body = await request.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    username = username.strip()
    if not username or not password or len(username) > MAX_FIELD or len(password) > 1024:
        return None
    return username, password


def _set_session_cookie(response: web.Response, token: str, request: web.Request) -> None:
    state = state_of(request)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(state.session_ttl.total_seconds()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=state.secure_cookies,
    )
