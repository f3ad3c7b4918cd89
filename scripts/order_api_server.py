"""Reference implementation of docs/order-api.openapi.yml over a ShopBackend.

    python scripts/order_api_server.py --port 8090 [--host 127.0.0.1]
        [--database-url URL] [--token TOKEN]

The token defaults to ``KEFU_ORDER_API_TOKEN``; when one is configured every
request needs ``Authorization: Bearer <token>``. The database URL defaults
to ``KEFU_DATABASE_URL`` (else the SQL adapter's default). Tests import
``make_server(backend, host, port, token)`` and run it in a thread.
"""
from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import re
import signal
import sys
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, List, Optional, Pattern, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actions.backends.base import (  # noqa: E402
    BackendUnavailable,
    NotAllowed,
    NotFound,
    ShopBackend,
)
from actions.backends.http import to_wire  # noqa: E402
from actions.backends.models import AFTER_SALE_TYPES, ORDER_STATUSES, Address  # noqa: E402

logger = logging.getLogger("kefu.order_api_server")

MAX_BODY = 64 * 1024
MAX_LIMIT = 100
MONEY_RE = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,2})?$")
DAY_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
NOT_FOUND = {"error": "not_found"}

Answer = Tuple[int, Dict[str, Any]]


class BadRequest(Exception):
    """The request is malformed; the message is safe to show the client."""


@dataclass
class Request:
    """What a route handler sees of one HTTP request."""

    params: Dict[str, str]
    query: Dict[str, List[str]]
    body: Any


# ---------------------------------------------------------------- validation

def _text(body: Any, key: str, max_len: int, required: bool = True,
          min_len: int = 1) -> Optional[str]:
    """A string field of the JSON body (``None`` only when not required)."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key}: required string")
    if not min_len <= len(value) <= max_len:
        raise BadRequest(f"{key}: length must be {min_len}..{max_len}")
    return value


def _money(body: Any, key: str) -> Decimal:
    """A decimal-string money field like ``"199.00"``."""
    value = _text(body, key, 16)
    if not MONEY_RE.match(value or ""):
        raise BadRequest(f'{key}: must be a decimal string like "199.00"')
    return Decimal(value)


def _day(body: Any, key: str) -> str:
    """A ``YYYY-MM-DD`` calendar day."""
    value = _text(body, key, 10) or ""
    try:
        if not DAY_RE.match(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{key}: must be a day like 2024-05-01") from None
    return value


def _limit(query: Dict[str, List[str]], default: int = 5) -> int:
    """The ``limit`` query parameter, 0..MAX_LIMIT."""
    values = query.get("limit")
    if not values:
        return default
    if len(values) > 1 or not values[0].isdigit() or int(values[0]) > MAX_LIMIT:
        raise BadRequest(f"limit: must be an integer 0..{MAX_LIMIT}")
    return int(values[0])


def _statuses(query: Dict[str, List[str]]) -> Optional[List[str]]:
    """The ``status`` filter (comma-separated and/or repeated), or ``None``."""
    if "status" not in query:
        return None
    statuses = [s for value in query["status"] for s in value.split(",")]
    unknown = [s for s in statuses if s not in ORDER_STATUSES]
    if not statuses or unknown:
        raise BadRequest(f"status: each must be one of {', '.join(ORDER_STATUSES)}")
    return statuses


def _object_or_empty(body: Any) -> None:
    """Bodies of action endpoints are optional but must be objects."""
    if body is not None and not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")


# ---------------------------------------------------------------- handlers

def _record(record: Any) -> Answer:
    """200 with the record, or 404."""
    return (404, NOT_FOUND) if record is None else (200, to_wire(record))


def get_customer(backend: ShopBackend, req: Request) -> Answer:
    return _record(backend.get_customer(req.params["customer_id"]))


def get_order(backend: ShopBackend, req: Request) -> Answer:
    return _record(backend.get_order(req.params["order_id"]))


def get_after_sale(backend: ShopBackend, req: Request) -> Answer:
    return _record(backend.get_after_sale(req.params["case_id"]))


def list_orders(backend: ShopBackend, req: Request) -> Answer:
    orders = backend.list_orders(req.params["customer_id"], _statuses(req.query),
                                 _limit(req.query))
    return 200, {"orders": to_wire(orders)}


def list_after_sales(backend: ShopBackend, req: Request) -> Answer:
    return 200, {"after_sales": to_wire(backend.list_after_sales(req.params["order_id"]))}


def list_coupons(backend: ShopBackend, req: Request) -> Answer:
    return 200, {"coupons": to_wire(backend.list_coupons(req.params["customer_id"]))}


def products(backend: ShopBackend, req: Request) -> Answer:
    """``find_products`` with ``q``, else ``list_products``."""
    if "q" not in req.query:
        return 200, {"products": to_wire(backend.list_products())}
    query = req.query["q"][-1]
    if len(query) > 100:
        raise BadRequest("q: at most 100 characters")
    return 200, {"products": to_wire(backend.find_products(query, _limit(req.query)))}


def cancel_order(backend: ShopBackend, req: Request) -> Answer:
    _object_or_empty(req.body)
    order, changed = backend.cancel_order(req.params["order_id"])
    return 200, {"order": to_wire(order), "changed": changed}


def record_shipment_urge(backend: ShopBackend, req: Request) -> Answer:
    created = backend.record_shipment_urge(req.params["order_id"], _day(req.body, "day"))
    return (201 if created else 200), {"created": created}


def create_after_sale(backend: ShopBackend, req: Request) -> Answer:
    case_type = _text(req.body, "type", 16)
    if case_type not in AFTER_SALE_TYPES:
        raise BadRequest(f"type: must be one of {', '.join(AFTER_SALE_TYPES)}")
    amount = _money(req.body, "amount")
    reason = _text(req.body, "reason", 500, min_len=0)
    case, created = backend.create_after_sale(req.params["order_id"], case_type, amount, reason)
    return (201 if created else 200), {"after_sale": to_wire(case), "created": created}


def change_address(backend: ShopBackend, req: Request) -> Answer:
    address = Address(name=_text(req.body, "name", 100), phone=_text(req.body, "phone", 32),
                      region=_text(req.body, "region", 200),
                      detail=_text(req.body, "detail", 500))
    before = backend.get_order(req.params["order_id"])
    if before is None:
        raise NotFound(req.params["order_id"])
    order = backend.change_address(req.params["order_id"], address)
    return 200, {"order": to_wire(order), "changed": before.address != address}


def create_invoice_request(backend: ShopBackend, req: Request) -> Answer:
    title = _text(req.body, "title", 200)
    tax_number = _text(req.body, "tax_number", 64, required=False, min_len=0)
    email = _text(req.body, "email", 254)
    if not EMAIL_RE.match(email or ""):
        raise BadRequest("email: not an e-mail address")
    invoice, created = backend.create_invoice_request(
        req.params["order_id"], title, tax_number, email)
    return (201 if created else 200), {"invoice_request": to_wire(invoice), "created": created}


@dataclass(frozen=True)
class Route:
    """One operation of the contract."""

    method: str
    template: str
    handler: Callable[[ShopBackend, Request], Answer]

    @property
    def pattern(self) -> Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")


ROUTES: Tuple[Route, ...] = (
    Route("GET", "/customers/{customer_id}", get_customer),
    Route("GET", "/customers/{customer_id}/orders", list_orders),
    Route("GET", "/customers/{customer_id}/coupons", list_coupons),
    Route("GET", "/orders/{order_id}", get_order),
    Route("POST", "/orders/{order_id}/cancel", cancel_order),
    Route("POST", "/orders/{order_id}/shipment-urges", record_shipment_urge),
    Route("GET", "/orders/{order_id}/after-sales", list_after_sales),
    Route("POST", "/orders/{order_id}/after-sales", create_after_sale),
    Route("PUT", "/orders/{order_id}/address", change_address),
    Route("POST", "/orders/{order_id}/invoice-requests", create_invoice_request),
    Route("GET", "/after-sales/{case_id}", get_after_sale),
    Route("GET", "/products", products),
)
_COMPILED = tuple((route, route.pattern) for route in ROUTES)


def resolve(method: str, path: str) -> Tuple[Optional[Route], Dict[str, str], List[str]]:
    """The route for ``method path``, its decoded path parameters and allowed methods."""
    allowed: List[str] = []
    for route, pattern in _COMPILED:
        match = pattern.match(path)
        if match:
            allowed.append(route.method)
            if route.method == method:
                return route, {k: unquote(v) for k, v in match.groupdict().items()}, allowed
    return None, {}, allowed


# ---------------------------------------------------------------- HTTP layer

class OrderApiHandler(BaseHTTPRequestHandler):
    """Authenticates, parses, dispatches and answers JSON."""

    protocol_version = "HTTP/1.1"
    server_version = "KefuOrderAPI/1.0"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True  # headers and body go out without delay

    server: "OrderApiServer"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        """Handle one request; never lets an exception reach the client."""
        try:
            status, payload = self._handle(method)
        except BadRequest as error:
            status, payload = 400, {"error": "bad_request", "message": str(error)}
        except NotFound:
            status, payload = 404, NOT_FOUND
        except NotAllowed as error:
            status, payload = 409, {"error": "not_allowed", "reason": error.reason,
                                    "message": str(error)}
        except BackendUnavailable:
            logger.warning("backend unavailable for %s %s", method, self._route_path())
            status, payload = 503, {"error": "unavailable"}
        except Exception:  # noqa: BLE001 - answer 500, log the traceback
            logger.exception("internal error for %s %s", method, self._route_path())
            status, payload = 500, {"error": "internal"}
        self._send(status, payload)

    def _handle(self, method: str) -> Answer:
        """Authenticate, route, read the body and call the handler."""
        if not self._authorized():
            self.close_connection = True
            return 401, {"error": "unauthorized"}
        url = urlsplit(self.path)
        route, params, allowed = resolve(method, url.path)
        if route is None:
            self.close_connection = True
            if allowed:
                return 405, {"error": "method_not_allowed", "allowed": allowed}
            return 404, {"error": "no_route"}
        body = self._body()
        query = parse_qs(url.query, keep_blank_values=True)
        with self.server.backend_lock:
            return route.handler(self.server.backend, Request(params, query, body))

    def _authorized(self) -> bool:
        """Whether the bearer token matches (always, when none is configured)."""
        token = self.server.token
        if not token:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode("utf-8", "replace"),
                                   f"Bearer {token}".encode("utf-8"))

    def _body(self) -> Any:
        """The decoded JSON body, or ``None`` when there is none."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise BadRequest("chunked bodies are not supported; send Content-Length")
        raw_length = self.headers.get("Content-Length", "0").strip() or "0"
        if not raw_length.isdigit() or int(raw_length) > MAX_BODY:
            self.close_connection = True
            raise BadRequest(f"Content-Length must be an integer up to {MAX_BODY}")
        raw = self.rfile.read(int(raw_length))
        if not raw.strip():
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("body is not valid UTF-8 JSON") from None

    def _send(self, status: int, payload: Dict[str, Any]) -> None:
        """Write a JSON answer with Content-Length."""
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="kefu-order-api"')
        if status == 405:
            self.send_header("Allow", ", ".join(payload.get("allowed", [])))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _route_path(self) -> str:
        """The request path without the query (for logs)."""
        return urlsplit(self.path).path

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("%s - " + format, self.address_string(), *args)


class OrderApiServer(ThreadingHTTPServer):
    """Threaded HTTP server holding the backend and the expected token."""

    daemon_threads = True

    def __init__(self, address: Tuple[str, int], backend: ShopBackend,
                 token: Optional[str], serialize: bool = False) -> None:
        self.backend = backend
        self.token = token or None
        self.backend_lock: ContextManager[Any] = threading.Lock() if serialize else nullcontext()
        super().__init__(address, OrderApiHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection-level errors (client went away): log quietly."""
        logger.debug("connection error from %s", client_address, exc_info=True)


def make_server(backend: ShopBackend, host: str = "127.0.0.1", port: int = 8090,
                token: Optional[str] = None, serialize: bool = False) -> OrderApiServer:
    """A bound, not yet serving server (port 0 picks a free port).

    ``serialize`` runs one backend call at a time (for backends that are not
    thread-safe, e.g. an in-memory SQLite database on one connection).
    """
    return OrderApiServer((host, port), backend, token, serialize)


# ---------------------------------------------------------------- CLI

def open_sql_backend(database_url: Optional[str]) -> ShopBackend:
    """A SqlBackend with its schema and (when empty) the demo data."""
    from actions.backends.sql import SqlBackend  # the SQL adapter, loaded on demand

    backend = SqlBackend(database_url) if database_url else SqlBackend()
    backend.create_schema()
    try:
        from actions.backends.loader import ensure_demo_data
    except ImportError:
        logger.warning("actions.backends.loader missing: serving the data as is")
    else:
        ensure_demo_data(backend)
    return backend


def serve_until_signal(server: OrderApiServer) -> None:
    """Serve in a thread until SIGTERM/SIGINT, then shut down cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="order-api", daemon=True)
    thread.start()
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--database-url", default=os.environ.get("KEFU_DATABASE_URL"))
    parser.add_argument("--token", default=os.environ.get("KEFU_ORDER_API_TOKEN"),
                        help="bearer token (default: $KEFU_ORDER_API_TOKEN; prefer the variable, "
                             "command lines are visible to other users)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.token:
        logger.warning("no token configured: the API is open to anyone who can reach it")
    backend = open_sql_backend(args.database_url)
    server = make_server(backend, args.host, args.port, args.token)
    print(f"order API listening on http://{args.host}:{server.port}", flush=True)
    try:
        serve_until_signal(server)
    finally:
        close = getattr(backend, "close", None) or getattr(backend, "dispose", None)
        if callable(close):
            close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
