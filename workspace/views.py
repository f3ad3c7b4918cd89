"""HTML pages and static files (a fixed list: nothing else on disk is served)."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from workspace.auth import session_agent

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = frozenset({"app.js", "app.css", "login.js"})
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def _file(name: str) -> web.FileResponse:
    path = STATIC_DIR / name
    response = web.FileResponse(path)
    response.content_type = CONTENT_TYPES[path.suffix]
    response.charset = "utf-8"
    return response


async def index(request: web.Request) -> web.FileResponse:
    """``GET /``: the workspace (queue and conversation views); needs a session."""
    return _file("index.html")


async def login_page(request: web.Request) -> web.StreamResponse:
    """``GET /login``: the login form (straight to ``/`` when already logged in)."""
    if await session_agent(request) is not None:
        raise web.HTTPFound("/")
    return _file("login.html")


async def static(request: web.Request) -> web.FileResponse:
    """``GET /static/{name}``: one of ``STATIC_FILES``."""
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return _file(name)


async def favicon(request: web.Request) -> web.Response:
    """``GET /favicon.ico``: none (keeps browsers from logging 404s)."""
    return web.Response(status=204)
