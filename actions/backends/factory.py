"""Choose and build the shop backend from environment variables.

| variable | default | meaning |
|---|---|---|
| ``KEFU_BACKEND`` | ``sql`` | ``sql`` or ``http`` |
| ``KEFU_DATABASE_URL`` | ``sqlite:///var/kefu.db`` | SQLAlchemy URL (sql backend, tickets) |
| ``KEFU_DEMO_DATA`` | ``1`` | seed an empty SQL database with ``demo/shop.json`` |
| ``KEFU_ORDER_API_URL`` | — | base URL of the REST order system (http backend) |
| ``KEFU_ORDER_API_TOKEN`` | — | bearer token sent to it |
| ``KEFU_ORDER_API_CONNECT_TIMEOUT`` | ``2`` | seconds |
| ``KEFU_ORDER_API_READ_TIMEOUT`` | ``3`` | seconds (a chat customer is waiting) |
| ``KEFU_ORDER_API_RETRIES`` | ``1`` | retries of reads (GET); writes are never retried |
"""
from __future__ import annotations

import os
import threading
from typing import Mapping, Optional

from actions.backends.base import ShopBackend

DEFAULT_DATABASE_URL = "sqlite:///var/kefu.db"

_lock = threading.Lock()
_backend: Optional[ShopBackend] = None


def database_url(env: Mapping[str, str] = os.environ) -> str:
    """The SQLAlchemy URL of the project's database."""
    return env.get("KEFU_DATABASE_URL") or DEFAULT_DATABASE_URL


def build_backend(env: Mapping[str, str] = os.environ) -> ShopBackend:
    """A new backend as configured by ``env`` (see module docstring)."""
    kind = (env.get("KEFU_BACKEND") or "sql").strip().lower()
    if kind == "http":
        from actions.backends.http import HttpBackend

        url = env.get("KEFU_ORDER_API_URL")
        if not url:
            raise ValueError("KEFU_BACKEND=http needs KEFU_ORDER_API_URL")
        return HttpBackend(
            url,
            token=env.get("KEFU_ORDER_API_TOKEN") or None,
            connect_timeout=float(env.get("KEFU_ORDER_API_CONNECT_TIMEOUT", "2")),
            read_timeout=float(env.get("KEFU_ORDER_API_READ_TIMEOUT", "3")),
            retries=int(env.get("KEFU_ORDER_API_RETRIES", "1")),
        )
    if kind != "sql":
        raise ValueError(f"KEFU_BACKEND must be 'sql' or 'http', not {kind!r}")
    from actions.backends.loader import ensure_demo_data
    from actions.backends.sql import SqlBackend

    backend = SqlBackend(database_url(env))
    backend.create_schema()
    if env.get("KEFU_DEMO_DATA", "1") != "0":
        ensure_demo_data(backend)
    return backend


def get_backend() -> ShopBackend:
    """The process-wide backend, built on first use."""
    global _backend
    with _lock:
        if _backend is None:
            _backend = build_backend()
        return _backend


def reset_backend(backend: Optional[ShopBackend] = None) -> None:
    """Replace the process-wide backend (tests, reconfiguration)."""
    global _backend
    with _lock:
        _backend = backend
