"""Run the reference order API over a SqlBackend and talk to it over HTTP.

``start_http_backend(sql_backend, tmp_path)`` lets behaviour tests written
for ``ShopBackend`` run against ``HttpBackend`` too.
"""
from __future__ import annotations

import importlib.util
import secrets
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Callable, Tuple

from actions.backends.base import ShopBackend
from actions.backends.http import HttpBackend

ROOT = Path(__file__).resolve().parents[1]
SERVER_SCRIPT = ROOT / "scripts" / "order_api_server.py"
_MODULE_NAME = "kefu_order_api_server"


def load_server_module() -> ModuleType:
    """``scripts/order_api_server.py`` as a module (loaded once)."""
    module = sys.modules.get(_MODULE_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(_MODULE_NAME, SERVER_SCRIPT)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE_NAME] = module
        spec.loader.exec_module(module)
    return module


def _in_memory(backend: ShopBackend) -> bool:
    """Whether ``backend`` is an in-memory SQLite database (one shared connection)."""
    url = str(getattr(backend, "url", ""))
    return url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:")


def start_http_backend(
    sql_backend: ShopBackend, tmp_path: Path
) -> Tuple[ShopBackend, Callable[[], None]]:
    """An ``HttpBackend`` in front of ``sql_backend``, and a function to stop it.

    The reference server runs in a thread on a free loopback port and
    requires a random bearer token; calls on an in-memory SQLite backend are
    serialised (it shares one connection between threads). ``tmp_path`` is unused (kept so that a
    subprocess variant could write its logs there).
    """
    del tmp_path
    token = secrets.token_urlsafe(24)
    server = load_server_module().make_server(
        sql_backend, "127.0.0.1", 0, token, serialize=_in_memory(sql_backend))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="order-api-test", daemon=True)
    thread.start()
    backend = HttpBackend(f"http://127.0.0.1:{server.port}", token=token,
                          connect_timeout=2.0, read_timeout=10.0, retries=2)

    def stop() -> None:
        backend.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return backend, stop
