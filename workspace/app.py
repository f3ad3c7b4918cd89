"""The workspace aiohttp application: ``create_app(store, rasa_client, ...)``.

Routes (all but the login page and ``POST /api/login`` need a session):

=======  ===================================  ==========================================
GET      /                                    workspace page (queue + conversation views)
GET      /login                               login page
GET      /static/{app.js,app.css,login.js}    assets
POST     /api/login, /api/logout              start / end a session
GET      /api/me                              the logged-in agent
GET      /api/queue                           waiting tickets, mine, online agents
POST     /api/tickets/{id}/claim              take a ticket (409 if someone was faster)
GET      /api/tickets/{id}                    ticket, bot summary, customer profile
GET      /api/tickets/{id}/messages?after=N   transcript from Rasa's tracker
POST     /api/tickets/{id}/reply              {"text"} -> customer
POST     /api/tickets/{id}/close              close + give the customer back to the bot
POST     /api/tickets/{id}/handback           retry the hand-back after a Rasa failure
GET      /api/callbacks                       out-of-hours callback requests
POST     /api/callbacks/{id}/done             mark a callback handled
=======  ===================================  ==========================================
"""
from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from typing import AsyncIterator, Optional
from zoneinfo import ZoneInfo

from aiohttp import web

from actions.handoff.rasa_api import RasaClient
from actions.handoff.tickets import DEFAULT_SERVICE_TIMEZONE, SERVICE_TIMEZONE_ENV, TicketStore
from workspace import api, auth, views
from workspace.notifier import DEFAULT_INTERVAL, QueueNotifier
from workspace.state import STATE, ApiError, Handler, ProfileFn, WorkspaceState, json_error

log = logging.getLogger(__name__)

NOTIFIER = web.AppKey("kefu_queue_notifier", QueueNotifier)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
API_STATUS_TEXT = {404: "接口不存在", 405: "不支持的请求方法", 413: "请求内容过长"}


def create_app(
    store: TicketStore,
    rasa_client: RasaClient,
    *,
    customer_profile: Optional[ProfileFn] = None,
    session_hours: float = 8.0,
    notifier_interval: Optional[float] = DEFAULT_INTERVAL,
    secure_cookies: bool = False,
    timezone: Optional[str] = None,
) -> web.Application:
    """Build the workspace app.

    ``customer_profile(customer_id)`` (sync or async) returns the customer's
    profile and recent orders, already masked, as a JSON-able dict; by
    default nothing is shown beyond the ticket's own fields.
    ``notifier_interval`` is the queue-update period in seconds (None or 0
    turns the background notifier off; ``app[NOTIFIER].run_once()`` still
    works). ``timezone`` (default env ``KEFU_SERVICE_TIMEZONE`` or
    Asia/Shanghai) is used to show times.
    """
    app = web.Application(
        middlewares=[_error_middleware, auth.csrf_middleware, auth.auth_middleware],
        client_max_size=64 * 1024,
    )
    zone = ZoneInfo(timezone or os.environ.get(SERVICE_TIMEZONE_ENV) or DEFAULT_SERVICE_TIMEZONE)
    app[STATE] = WorkspaceState(
        store=store,
        rasa=rasa_client,
        customer_profile=customer_profile,
        session_ttl=timedelta(hours=session_hours),
        secure_cookies=secure_cookies,
        zone=zone,
    )
    app[NOTIFIER] = QueueNotifier(store, rasa_client, notifier_interval or DEFAULT_INTERVAL)
    if notifier_interval:
        app.cleanup_ctx.append(_run_notifier)
    app.on_response_prepare.append(_security_headers)
    _add_routes(app)
    return app


def _add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/", views.index)
    router.add_get("/login", views.login_page)
    router.add_get("/static/{name}", views.static)
    router.add_get("/favicon.ico", views.favicon)
    router.add_post("/api/login", auth.login)
    router.add_post("/api/logout", auth.logout)
    router.add_get("/api/me", auth.me)
    for method, path, handler in api.ROUTES:
        router.add_route(method, path, handler)


async def _run_notifier(app: web.Application) -> AsyncIterator[None]:
    notifier = app[NOTIFIER]
    notifier.start()
    yield
    await notifier.stop()


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a polite answer; tracebacks only go to the log."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_error(exc.status, exc.message, exc.code)
    except web.HTTPException as exc:
        if auth.is_api(request) and exc.status >= 400:
            return json_error(exc.status, API_STATUS_TEXT.get(exc.status, "请求无效"), "http_error")
        raise
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if auth.is_api(request):
            return json_error(500, "系统繁忙，请稍后重试", "internal")
        return web.Response(status=500, text="系统繁忙，请稍后刷新页面重试")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
