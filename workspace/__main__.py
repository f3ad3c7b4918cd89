"""Run the agent workspace: ``python -m workspace --port 8081``.

Environment:

- ``KEFU_RASA_TOKEN`` (required): the token Rasa was started with
  (``rasa run --enable-api --auth-token ...``).
- ``KEFU_RASA_URL``: Rasa's HTTP API, default ``http://localhost:5005``.
- ``KEFU_DATABASE_URL``: default ``sqlite:///var/kefu.db`` (the bot's database).
- ``KEFU_WORKSPACE_SESSION_HOURS``: agent session lifetime, default 8.
- ``KEFU_WORKSPACE_SECURE_COOKIE``: ``1`` when served over HTTPS (Secure cookie).
- ``KEFU_SERVICE_TIMEZONE``: time zone for times shown, default Asia/Shanghai.

Create agents with ``python scripts/create_agent.py USERNAME --name 显示名``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

from aiohttp import web

from actions.handoff.rasa_api import RasaClient
from actions.handoff.tickets import DEFAULT_DATABASE_URL, TicketStore
from workspace.app import create_app


class ConfigError(Exception):
    """A required setting is missing or invalid."""


def _parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workspace", description="Kefu agent workspace")
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for the LAN)")
    return parser.parse_args(argv)


def _session_hours() -> float:
    raw = os.environ.get("KEFU_WORKSPACE_SESSION_HOURS", "8")
    try:
        hours = float(raw)
    except ValueError:
        raise ConfigError(f"KEFU_WORKSPACE_SESSION_HOURS must be a number, got {raw!r}") from None
    if hours <= 0:
        raise ConfigError("KEFU_WORKSPACE_SESSION_HOURS must be positive")
    return hours


def build_app() -> web.Application:
    """The app configured from the environment (raises ``ConfigError``)."""
    token = os.environ.get("KEFU_RASA_TOKEN", "").strip()
    if not token:
        raise ConfigError(
            "KEFU_RASA_TOKEN is not set: export the token Rasa was started with "
            "(rasa run --enable-api --auth-token TOKEN)."
        )
    store = TicketStore(os.environ.get("KEFU_DATABASE_URL") or DEFAULT_DATABASE_URL)
    store.create_schema()
    rasa = RasaClient(os.environ.get("KEFU_RASA_URL") or "http://localhost:5005", token)
    secure = os.environ.get("KEFU_WORKSPACE_SECURE_COOKIE", "") in ("1", "true", "yes")
    return create_app(store, rasa, session_hours=_session_hours(), secure_cookies=secure)


def main(argv: Optional[List[str]] = None) -> int:
    """Start the server; returns the exit code."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # one line per poll every 2 s would drown everything else
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        app = build_app()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Kefu workspace on http://{args.host}:{args.port}/", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
