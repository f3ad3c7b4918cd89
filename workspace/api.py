"""JSON API of the workspace (all routes need a session; see ``auth``).

Errors are ``{"error": <Chinese text for the agent>, "code": <id>}`` with
401 (not logged in), 403 (not your conversation), 404, 409 (someone else
was faster / already closed) or 502 (Rasa unreachable; the agent may retry).
"""
from __future__ import annotations

import inspect
import json
import logging
from datetime import datetime
from functools import partial
from typing import Any, Dict, List, Optional, Tuple

from aiohttp import web

from actions.handoff.rasa_api import RasaError
from actions.handoff.tickets import (
    ASSIGNED,
    CLOSED,
    LIVE,
    WAITING,
    NotAssignee,
    Ticket,
    TicketConflict,
    TicketNotFound,
)
from workspace import labels
from workspace.auth import agent_json
from workspace.state import ApiError, WorkspaceState, agent_of, blocking, state_of
from workspace.transcript import transcript

log = logging.getLogger(__name__)

MAX_REPLY = 2000
HANDBACK_INTENT = "EXTERNAL_handoff_closed"
RASA_DOWN = "暂时无法连接机器人服务，请稍后重试"

_dumps = partial(json.dumps, ensure_ascii=False, default=str)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


# ------------------------------------------------------------------ queue

async def queue(request: web.Request) -> web.Response:
    """``GET /api/queue``: waiting tickets (priority, then FIFO), mine, counts."""
    state = state_of(request)
    agent = agent_of(request)
    snapshot, mine, callbacks, online = await blocking(_queue_data, state, agent.id)
    now = state.store.now()
    return _json({
        "agent": agent_json(agent),
        "agents_online": online,
        "queue": [
            ticket_json(e.ticket, state, now, position=e.position, wait_minutes=e.wait_minutes)
            for e in snapshot
        ],
        "mine": [ticket_json(t, state, now) for t in mine],
        "callbacks": len(callbacks),
    })


def _queue_data(state: WorkspaceState, agent_id: int) -> Tuple[list, list, list, int]:
    store = state.store
    return (
        store.queue_snapshot(),
        store.tickets_assigned_to(agent_id),
        store.callback_tickets(),
        store.agents_online(),
    )


async def claim(request: web.Request) -> web.Response:
    """``POST /api/tickets/{id}/claim``: take a waiting ticket (409 if someone was faster)."""
    state = state_of(request)
    ticket_id = _ticket_id(request)
    won = await blocking(state.store.claim, ticket_id, agent_of(request).id)
    ticket = await blocking(state.store.get_ticket, ticket_id)
    if ticket is None or ticket.kind != LIVE:
        raise ApiError(404, "找不到该会话", "not_found")
    mine = ticket.status == ASSIGNED and ticket.agent_id == agent_of(request).id
    if not won and not mine:
        if ticket.status == ASSIGNED:
            raise ApiError(409, "已被其他客服接入", "already_claimed")
        raise ApiError(409, "客户已离开排队，无法接入", "not_waiting")
    return _json({"ticket": ticket_json(ticket, state, state.store.now(), full=True)})


# ----------------------------------------------------------- conversation

async def ticket_detail(request: web.Request) -> web.Response:
    """``GET /api/tickets/{id}``: ticket, bot summary and customer profile (assignee only)."""
    state = state_of(request)
    ticket = await own_ticket(request)
    profile, profile_error = await _profile(state, ticket.customer_id)
    return _json({
        "ticket": ticket_json(ticket, state, state.store.now(), full=True),
        "profile": profile,
        "profile_error": profile_error,
    })


async def messages(request: web.Request) -> web.Response:
    """``GET /api/tickets/{id}/messages?after=N``: transcript messages from index N on."""
    state = state_of(request)
    ticket = await own_ticket(request)
    after = _int_query(request, "after")
    try:
        tracker = await blocking(state.rasa.get_tracker, ticket.conversation_id)
    except RasaError as exc:
        log.warning("reading transcript of ticket %s failed: %s", ticket.id, exc)
        raise ApiError(502, "暂时无法读取聊天记录，系统会自动重试", "rasa_unavailable") from None
    items = transcript(tracker, state.zone)
    reset = after > len(items)  # the tracker was restarted: send everything again
    start = 0 if reset else after
    return _json({
        "messages": items[start:],
        "total": len(items),
        "reset": reset,
        "status": ticket.status,
        "status_label": labels.label(labels.STATUSES, ticket.status),
    })


async def reply(request: web.Request) -> web.Response:
    """``POST /api/tickets/{id}/reply {"text"}``: send the agent's message to the customer."""
    state = state_of(request)
    agent = agent_of(request)
    ticket = await own_ticket(request)
    if ticket.status != ASSIGNED:
        raise ApiError(409, "会话已结束，无法继续回复", "closed")
    text = _reply_text(await _body(request))
    event = {"event": "bot", "text": text, "metadata": {"agent": agent.display_name}}
    try:
        await blocking(state.rasa.append_events, ticket.conversation_id, [event])
    except RasaError as exc:
        log.warning("reply to ticket %s failed: %s", ticket.id, exc)
        raise ApiError(502, "消息未能发送给客户，请稍后重试", "rasa_unavailable") from None
    return _json({"ok": True})


async def close(request: web.Request) -> web.Response:
    """``POST /api/tickets/{id}/close``: end the chat and hand the customer back to the bot."""
    state = state_of(request)
    ticket_id = _ticket_id(request)
    try:
        ticket = await blocking(state.store.close, ticket_id, agent_of(request).id)
    except TicketNotFound:
        raise ApiError(404, "找不到该会话", "not_found") from None
    except NotAssignee:
        raise ApiError(403, "这不是您接待的会话", "forbidden") from None
    except TicketConflict:
        raise ApiError(409, "该会话已结束", "closed") from None
    return await _handback_response(state, ticket)


async def handback(request: web.Request) -> web.Response:
    """``POST /api/tickets/{id}/handback``: retry giving a closed chat back to the bot."""
    state = state_of(request)
    ticket = await own_ticket(request)
    if ticket.status != CLOSED:
        raise ApiError(409, "会话尚未结束", "not_closed")
    return await _handback_response(state, ticket)


async def _handback_response(state: WorkspaceState, ticket: Ticket) -> web.Response:
    ok = await hand_back(state, ticket)
    body: Dict[str, Any] = {
        "ticket": ticket_json(ticket, state, state.store.now(), full=True),
        "handback": ok,
    }
    if not ok:
        body["warning"] = "会话已结束，但暂时无法通知机器人接回客户，请稍后点击“重新交还机器人”"
    return _json(body)


async def hand_back(state: WorkspaceState, ticket: Ticket) -> bool:
    """Resume the bot and trigger ``EXTERNAL_handoff_closed`` (it asks for CSAT)."""
    try:
        await blocking(state.rasa.append_events, ticket.conversation_id, [{"event": "resume"}])
        await blocking(state.rasa.trigger_intent, ticket.conversation_id, HANDBACK_INTENT)
    except RasaError as exc:
        log.warning("handing ticket %s back to the bot failed: %s", ticket.id, exc)
        return False
    return True


# -------------------------------------------------------------- callbacks

async def callbacks(request: web.Request) -> web.Response:
    """``GET /api/callbacks``: out-of-hours requests waiting for a call back."""
    state = state_of(request)
    pending = await blocking(state.store.callback_tickets)
    now = state.store.now()
    return _json({"callbacks": [ticket_json(t, state, now, full=True) for t in pending]})


async def callback_done(request: web.Request) -> web.Response:
    """``POST /api/callbacks/{id}/done``: mark a callback as handled."""
    state = state_of(request)
    ticket_id = _ticket_id(request)
    try:
        ticket = await blocking(state.store.resolve_callback, ticket_id, agent_of(request).id)
    except TicketNotFound:
        raise ApiError(404, "找不到该留言", "not_found") from None
    except TicketConflict:
        raise ApiError(409, "该留言已被其他客服处理", "already_done") from None
    return _json({"ticket": ticket_json(ticket, state, state.store.now(), full=True)})


# ---------------------------------------------------------------- helpers

async def own_ticket(request: web.Request) -> Ticket:
    """The live ticket in the URL if the logged-in agent is its assignee (else 403/404)."""
    state = state_of(request)
    ticket = await blocking(state.store.get_ticket, _ticket_id(request))
    if ticket is None or ticket.kind != LIVE:
        raise ApiError(404, "找不到该会话", "not_found")
    if ticket.status == WAITING:
        raise ApiError(403, "请先接入该会话", "not_claimed")
    if ticket.agent_id != agent_of(request).id:
        raise ApiError(403, "这不是您接待的会话", "forbidden")
    return ticket


def ticket_json(
    ticket: Ticket,
    state: WorkspaceState,
    now: datetime,
    *,
    position: Optional[int] = None,
    wait_minutes: Optional[int] = None,
    full: bool = False,
) -> Dict[str, Any]:
    """A ticket as the browser sees it (``full`` adds summary and links)."""
    waited_until = ticket.assigned_at or ticket.closed_at or now
    data: Dict[str, Any] = {
        "id": ticket.id,
        "status": ticket.status,
        "status_label": labels.label(labels.STATUSES, ticket.status),
        "priority": ticket.priority,
        "reason": ticket.reason,
        "reason_label": labels.label(labels.REASONS, ticket.reason),
        "channel_label": labels.label(labels.CHANNELS, ticket.channel),
        "customer_id": ticket.customer_id,
        "masked_phone": ticket.customer_masked_phone,
        "tier": ticket.customer_tier,
        "tier_label": labels.label(labels.TIERS, ticket.customer_tier, "匿名访客"),
        "order_id": ticket.order_id,
        "created_at": labels.iso(ticket.created_at),
        "created_label": labels.local_time(ticket.created_at, state.zone),
        "waiting_seconds": max(0, int((waited_until - ticket.created_at).total_seconds())),
        "position": position,
        "wait_minutes": wait_minutes,
    }
    if full:
        data.update(
            conversation_id=ticket.conversation_id,
            summary=ticket.summary,
            transcript_url=ticket.transcript_url,
            callback_message=ticket.callback_message,
            callback_preference=ticket.callback_preference,
            assigned_label=labels.local_time(ticket.assigned_at, state.zone),
            closed_label=labels.local_time(ticket.closed_at, state.zone),
        )
    return data


async def _profile(state: WorkspaceState, customer_id: Optional[str]) -> Tuple[Any, Optional[str]]:
    """``(profile, error)`` from the injected ``customer_profile`` callable."""
    if not customer_id or state.customer_profile is None:
        return None, None
    fn = state.customer_profile
    try:
        if inspect.iscoroutinefunction(fn):
            result = await fn(customer_id)
        else:
            result = await blocking(fn, customer_id)
            if inspect.isawaitable(result):
                result = await result
    except Exception:  # any backend failure: the agent still gets the conversation
        log.exception("customer_profile(%r) failed", customer_id)
        return None, "客户资料暂时无法获取"
    return result or None, None


def _ticket_id(request: web.Request) -> int:
    try:
        return int(request.match_info["ticket_id"])
    except (KeyError, ValueError):
        raise ApiError(404, "找不到该会话", "not_found") from None


def _int_query(request: web.Request, name: str) -> int:
    try:
        return max(0, int(request.query.get(name, "0")))
    except ValueError:
        raise ApiError(400, "参数错误", "bad_request") from None


async def _body(request: web.Request) -> Dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "请求格式错误", "bad_request") from None
    if not isinstance(body, dict):
        raise ApiError(400, "请求格式错误", "bad_request")
    return body


def _reply_text(body: Dict[str, Any]) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "请输入回复内容", "empty")
    text = text.strip()
    if len(text) > MAX_REPLY:
        raise ApiError(400, f"回复内容不能超过 {MAX_REPLY} 个字", "too_long")
    return text


ROUTES: List[Tuple[str, str, Any]] = [
    ("GET", "/api/queue", queue),
    ("POST", "/api/tickets/{ticket_id}/claim", claim),
    ("GET", "/api/tickets/{ticket_id}", ticket_detail),
    ("GET", "/api/tickets/{ticket_id}/messages", messages),
    ("POST", "/api/tickets/{ticket_id}/reply", reply),
    ("POST", "/api/tickets/{ticket_id}/close", close),
    ("POST", "/api/tickets/{ticket_id}/handback", handback),
    ("GET", "/api/callbacks", callbacks),
    ("POST", "/api/callbacks/{ticket_id}/done", callback_done),
]
