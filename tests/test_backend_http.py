"""HttpBackend against real local HTTP servers (no mocks).

- the reference server (scripts/order_api_server.py) over a SQLite
  SqlBackend with the demo data: reads equal SqlBackend's, writes, errors;
- tiny scripted http.server servers: slow, flaky, broken, refusing;
- the OpenAPI contract: every operation is served, every client call is in
  the spec and every answer matches the spec's schemas.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import jsonschema
import pytest
import requests
import yaml

from actions.backends.base import BackendUnavailable, NotAllowed, NotFound, ShopBackend
from actions.backends.http import HttpBackend
from actions.backends.models import Address
from actions.backends.sql import SqlBackend
from backend_fixtures import make_sqlite_backend
from http_backend_fixture import ROOT, load_server_module, start_http_backend
from stack import free_port

SPEC_FILE = ROOT / "docs" / "order-api.openapi.yml"
DEMO = json.loads((ROOT / "demo" / "shop.json").read_text(encoding="utf-8"))
TOKEN = "test-token-0123456789"
SLACK = 1.5  # seconds of scheduling slack on a busy 2-core machine

server_module = load_server_module()


def demo_order(status: str, *, open_case: Optional[bool] = None) -> str:
    """The id of the first demo order in ``status`` (with/without an open case)."""
    open_ids = {a["order_id"] for a in DEMO["after_sales"]
                if a["status"] in ("pending", "approved", "returning", "refunding")}
    for order in DEMO["orders"]:
        if order["status"] == status and (open_case is None
                                          or (order["id"] in open_ids) == open_case):
            return order["id"]
    raise LookupError(status)


NEW_ADDRESS = Address(name="赵六", phone="13600136000", region="浙江省 杭州市 西湖区",
                      detail="文三路 100 号 2 幢 301")


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def sql(tmp_path: Path) -> Iterator[SqlBackend]:
    """A fresh SQLite database with the demo data (per test: writes change it)."""
    backend = make_sqlite_backend(tmp_path)
    yield backend
    backend.close()


@pytest.fixture
def http(sql: SqlBackend, tmp_path: Path) -> Iterator[ShopBackend]:
    """HttpBackend -> reference server -> ``sql``."""
    backend, stop = start_http_backend(sql, tmp_path)
    yield backend
    stop()


@pytest.fixture(scope="module")
def ro_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[SqlBackend, ShopBackend]]:
    """A read-only (SqlBackend, HttpBackend) pair shared by the read tests."""
    directory = tmp_path_factory.mktemp("http_ro")
    sql_backend = make_sqlite_backend(directory)
    http_backend, stop = start_http_backend(sql_backend, directory)
    yield sql_backend, http_backend
    stop()
    sql_backend.close()


@contextmanager
def reference_server(backend: ShopBackend, token: Optional[str] = TOKEN) -> Iterator[str]:
    """The reference server over ``backend`` in a thread; yields its base URL."""
    server = server_module.make_server(backend, "127.0.0.1", 0, token)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


Behaviour = Callable[[str, str, int], Tuple[int, bytes, float]]


@contextmanager
def scripted_server(behaviour: Behaviour) -> Iterator[Tuple[str, Counter]]:
    """A tiny server answering ``behaviour(method, path, nth_call_of_method)``.

    ``behaviour`` returns (status, body, delay before answering). Yields the
    base URL and a Counter of requests per method.
    """
    hits: Counter = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                hits[self.command] += 1
                nth = hits[self.command]
            status, body, delay = behaviour(self.command, self.path, nth)
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up (timeout test)
                pass

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.handle_error = lambda *args: None  # type: ignore[assignment]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def answer(status: int, payload: Any = None, delay: float = 0.0, raw: bytes = b"") -> Behaviour:
    """A behaviour that always gives the same answer."""
    body = raw or json.dumps(payload).encode()
    return lambda method, path, nth: (status, body, delay)


def timed(call: Callable[[], Any]) -> Tuple[Optional[BaseException], float]:
    """(exception raised by ``call`` or None, seconds it took)."""
    start = time.monotonic()
    try:
        call()
    except Exception as error:  # noqa: BLE001 - returned for assertions
        return error, time.monotonic() - start
    return None, time.monotonic() - start


CUSTOMER_JSON = {"id": "C1", "name": "张伟", "phone": "13800138000", "tier": "gold", "points": 1}


# ---------------------------------------------------------------- reads: parity with SQL

def test_reads_equal_sql_backend(ro_pair: Tuple[SqlBackend, ShopBackend]) -> None:
    sql_backend, http_backend = ro_pair
    for customer in DEMO["customers"]:
        cid = customer["id"]
        assert http_backend.get_customer(cid) == sql_backend.get_customer(cid) is not None
        assert http_backend.list_coupons(cid) == sql_backend.list_coupons(cid)
        for statuses, limit in ((None, 5), (None, 100), (["paid", "shipped"], 5),
                                (["delivered"], 1), ([], 5), (None, 0), (["bogus"], 5)):
            assert (http_backend.list_orders(cid, statuses, limit)
                    == sql_backend.list_orders(cid, statuses, limit))
    for order in DEMO["orders"]:
        assert http_backend.get_order(order["id"]) == sql_backend.get_order(order["id"])
        assert http_backend.list_after_sales(order["id"]) == \
            sql_backend.list_after_sales(order["id"])
    for case in DEMO["after_sales"]:
        assert http_backend.get_after_sale(case["id"]) == sql_backend.get_after_sale(case["id"])
    assert http_backend.list_products() == sql_backend.list_products()
    for query, limit in (("T恤", 5), ("t恤", 1), ("耳机", 5), ("", 5), ("  ", 5),
                         ("不存在的商品", 5), ("鞋", 0), ("%", 5)):
        assert http_backend.find_products(query, limit) == sql_backend.find_products(query, limit)


def test_records_are_typed(ro_pair: Tuple[SqlBackend, ShopBackend]) -> None:
    _, http_backend = ro_pair
    order = http_backend.get_order(demo_order("shipped"))
    assert order is not None and isinstance(order.total, Decimal)
    assert order.created_at.utcoffset() is not None
    assert order.shipment is not None and order.shipment.events
    assert all(e.time.utcoffset() is not None for e in order.shipment.events)
    assert all(isinstance(item.price, Decimal) for item in order.items)


@pytest.mark.parametrize("record_id", ["no-such-id", "a/b", "订单", "..", ".", "a?b#c", "%2F", ""])
def test_unknown_records(ro_pair: Tuple[SqlBackend, ShopBackend], record_id: str) -> None:
    _, http_backend = ro_pair
    assert http_backend.get_customer(record_id) is None
    assert http_backend.get_order(record_id) is None
    assert http_backend.get_after_sale(record_id) is None
    assert http_backend.list_orders(record_id) == []
    assert http_backend.list_after_sales(record_id) == []
    assert http_backend.list_coupons(record_id) == []
    with pytest.raises(NotFound):
        http_backend.cancel_order(record_id)
    with pytest.raises(NotFound):
        http_backend.change_address(record_id, NEW_ADDRESS)


# ---------------------------------------------------------------- writes

def test_cancel_order(http: ShopBackend, sql: SqlBackend) -> None:
    order_id = demo_order("paid")
    order, changed = http.cancel_order(order_id)
    assert (order.status, changed) == ("cancelled", True)
    assert http.cancel_order(order_id)[1] is False
    assert sql.get_order(order_id) == order
    with pytest.raises(NotAllowed) as raised:
        http.cancel_order(demo_order("shipped"))
    assert raised.value.reason == "already_shipped"
    with pytest.raises(NotFound):
        http.cancel_order("999999999999999")


def test_shipment_urge(http: ShopBackend) -> None:
    order_id = demo_order("paid")
    assert http.record_shipment_urge(order_id, "2026-11-24") is True
    assert http.record_shipment_urge(order_id, "2026-11-24") is False
    assert http.record_shipment_urge(order_id, "2026-11-25") is True
    with pytest.raises(NotFound):
        http.record_shipment_urge("999999999999999", "2026-11-24")
    with pytest.raises(ValueError):
        http.record_shipment_urge(order_id, "24/11/2026")


def test_create_after_sale(http: ShopBackend, sql: SqlBackend) -> None:
    order_id = demo_order("delivered", open_case=False)
    case, created = http.create_after_sale(order_id, "refund", Decimal("12.345"), "少发一件")
    assert created and case.amount == Decimal("12.35") and case.status == "pending"
    again, created_again = http.create_after_sale(order_id, "return", Decimal("1"), "再来")
    assert (again, created_again) == (case, False)
    assert sql.get_after_sale(case.id) == case == http.get_after_sale(case.id)
    busy = demo_order("delivered", open_case=True)
    existing, created = http.create_after_sale(busy, "refund", Decimal("5.00"), "x")
    assert created is False and existing.is_open and existing.order_id == busy
    with pytest.raises(NotFound):
        http.create_after_sale("999999999999999", "refund", Decimal("5.00"), "x")
    with pytest.raises(ValueError):
        http.create_after_sale(order_id, "gift", Decimal("5.00"), "x")


def test_change_address(http: ShopBackend, sql: SqlBackend) -> None:
    order_id = demo_order("paid")
    order = http.change_address(order_id, NEW_ADDRESS)
    assert order.address == NEW_ADDRESS == sql.get_order(order_id).address
    assert http.change_address(order_id, NEW_ADDRESS) == order
    for status, reason in (("shipped", "already_shipped"), ("delivered", "already_shipped"),
                           ("cancelled", "cancelled")):
        with pytest.raises(NotAllowed) as raised:
            http.change_address(demo_order(status), NEW_ADDRESS)
        assert raised.value.reason == reason


def test_create_invoice_request(http: ShopBackend) -> None:
    order_id = demo_order("delivered")
    invoice, created = http.create_invoice_request(order_id, "杭州某某科技有限公司",
                                                   "91330100MA2XXXXX0X", "fp@example.com")
    assert created and invoice.tax_number == "91330100MA2XXXXX0X"
    assert http.create_invoice_request(order_id, "杭州某某科技有限公司", "91330100MA2XXXXX0X",
                                       "fp@example.com") == (invoice, False)
    personal, created = http.create_invoice_request(order_id, "个人", None, "me@example.com")
    assert created and personal.tax_number is None and personal.created_at.utcoffset() is not None
    with pytest.raises(NotFound):
        http.create_invoice_request("999999999999999", "个人", None, "me@example.com")


# ---------------------------------------------------------------- authentication

@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_wrong_or_missing_token(sql: SqlBackend, token: Optional[str]) -> None:
    with reference_server(sql) as url:
        assert HttpBackend(url, token=TOKEN).get_customer("C1001") is not None
        client = HttpBackend(url, token=token)
        with pytest.raises(BackendUnavailable, match="authentication failed") as raised:
            client.get_customer("C1001")
        with pytest.raises(BackendUnavailable, match="authentication failed"):
            client.cancel_order(demo_order("paid"))
    assert sql.get_order(demo_order("paid")).status == "paid"
    assert TOKEN not in str(raised.value) and url not in str(raised.value)


def test_server_without_token_is_open(sql: SqlBackend) -> None:
    with reference_server(sql, token=None) as url:
        assert HttpBackend(url).get_customer("C1001") is not None


def test_unauthorized_answer_shape(sql: SqlBackend) -> None:
    with reference_server(sql) as url:
        response = requests.get(f"{url}/customers/C1001", headers={"Authorization": "Bearer x"})
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("status", [401, 403])
def test_auth_statuses_map_to_unavailable(status: int) -> None:
    with scripted_server(answer(status, {"error": "unauthorized"})) as (url, hits):
        with pytest.raises(BackendUnavailable, match="authentication failed"):
            HttpBackend(url, token=TOKEN).get_order("1")
    assert hits["GET"] == 1  # not retried


# ---------------------------------------------------------------- timeouts and retries

def test_slow_server_get_is_retried_then_unavailable() -> None:
    with scripted_server(answer(200, CUSTOMER_JSON, delay=3.0)) as (url, hits):
        client = HttpBackend(url, token=TOKEN, read_timeout=0.3, retries=2)
        error, elapsed = timed(lambda: client.get_customer("C1"))
    assert isinstance(error, BackendUnavailable) and "timed out" in str(error)
    assert hits["GET"] == 3  # first try + 2 retries
    # 3 reads of 0.3 s + backoff 0 + 0.4 s
    assert 0.9 <= elapsed < 1.3 + SLACK


@pytest.mark.parametrize("write", ["cancel_order", "record_shipment_urge",
                                   "create_after_sale", "change_address",
                                   "create_invoice_request"])
def test_slow_server_write_is_sent_once(write: str) -> None:
    calls = {
        "cancel_order": lambda b: b.cancel_order("1"),
        "record_shipment_urge": lambda b: b.record_shipment_urge("1", "2026-11-24"),
        "create_after_sale": lambda b: b.create_after_sale("1", "refund", Decimal("1"), "x"),
        "change_address": lambda b: b.change_address("1", NEW_ADDRESS),
        "create_invoice_request": lambda b: b.create_invoice_request("1", "个人", None, "a@b.c"),
    }
    with scripted_server(answer(200, {}, delay=3.0)) as (url, hits):
        client = HttpBackend(url, token=TOKEN, read_timeout=0.3, retries=3)
        error, elapsed = timed(lambda: calls[write](client))
    assert isinstance(error, BackendUnavailable)
    assert sum(hits.values()) == 1
    assert 0.3 <= elapsed < 0.3 + SLACK


@pytest.mark.parametrize("call", [lambda b: b.get_order("1"), lambda b: b.cancel_order("1")],
                         ids=["GET", "POST"])
def test_connection_refused_is_unavailable_quickly(call: Callable[[ShopBackend], Any]) -> None:
    client = HttpBackend(f"http://127.0.0.1:{free_port()}", token=TOKEN, retries=2)
    error, elapsed = timed(lambda: call(client))
    assert isinstance(error, BackendUnavailable) and "connection failed" in str(error)
    assert elapsed < 0.4 + SLACK  # backoff 0 + 0.4 s for GET, none for POST


def test_connect_errors_retry_get_only() -> None:
    """Nothing reaches a server here, so the backoff time shows the retries."""
    client = HttpBackend(f"http://127.0.0.1:{free_port()}", token=TOKEN, retries=3)
    get_error, get_elapsed = timed(lambda: client.get_order("1"))
    post_error, post_elapsed = timed(lambda: client.record_shipment_urge("1", "2026-11-24"))
    assert isinstance(get_error, BackendUnavailable) and isinstance(post_error, BackendUnavailable)
    assert get_elapsed >= 0.4 + 0.8  # backoff before the 2nd and 3rd retry
    assert post_elapsed < 0.4  # not a single retry


def test_flaky_503_then_200_get_succeeds_after_retries() -> None:
    def flaky(method: str, path: str, nth: int) -> Tuple[int, bytes, float]:
        if nth <= 2:
            return 503, b'{"error": "unavailable"}', 0.0
        return 200, json.dumps(CUSTOMER_JSON).encode(), 0.0

    with scripted_server(flaky) as (url, hits):
        customer = HttpBackend(url, token=TOKEN, retries=2).get_customer("C1")
    assert customer is not None and customer.tier == "gold"
    assert hits["GET"] == 3
    with scripted_server(flaky) as (url, hits):
        with pytest.raises(BackendUnavailable, match="503"):
            HttpBackend(url, token=TOKEN, retries=1).get_customer("C1")
    assert hits["GET"] == 2


@pytest.mark.parametrize("status,retried", [(502, True), (503, True), (504, True), (500, False)])
def test_5xx_is_unavailable_and_only_gateway_errors_retried(status: int, retried: bool) -> None:
    with scripted_server(answer(status, {"error": "boom"})) as (url, hits):
        client = HttpBackend(url, token=TOKEN, retries=2)
        with pytest.raises(BackendUnavailable):
            client.get_order("1")
        with pytest.raises(BackendUnavailable):
            client.cancel_order("1")
    assert hits["GET"] == (3 if retried else 1)
    assert hits["POST"] == 1


# ---------------------------------------------------------------- malformed answers

@pytest.mark.parametrize("status,body", [
    (200, b"<html>not json</html>"),
    (200, b""),
    (200, b"[]"),
    (200, json.dumps({**CUSTOMER_JSON, "points": "many"}).encode()),
    (200, json.dumps({k: v for k, v in CUSTOMER_JSON.items() if k != "tier"}).encode()),
    (404, b"<html>Not Found</html>"),      # e.g. a wrong base URL
    (404, b'{"error": "no_route"}'),
    (409, b'{"error": "not_allowed"}'),    # no reason
    (302, b""),                            # redirects are not followed
    (418, b'{"error": "teapot"}'),
])
def test_unexpected_answer_is_unavailable(status: int, body: bytes) -> None:
    with scripted_server(answer(status, raw=body or b" ")) as (url, _):
        with pytest.raises(BackendUnavailable) as raised:
            HttpBackend(url, token=TOKEN).get_customer("C1")
    assert TOKEN not in str(raised.value) and url not in str(raised.value)


@pytest.mark.parametrize("change", [
    {"total": 199.0},                      # money must be a decimal string
    {"total": "lots"},
    {"created_at": "2026-11-24T10:00:00"},  # no offset
    {"items": "none"},
    {"shipment": {"carrier": "顺丰"}},
])
def test_malformed_order_is_unavailable(ro_pair: Tuple[SqlBackend, ShopBackend],
                                        change: Dict[str, Any]) -> None:
    from actions.backends.http import to_wire

    good = to_wire(ro_pair[0].get_order(demo_order("shipped")))
    with scripted_server(answer(200, good)) as (url, _):
        assert HttpBackend(url).get_order("x") == ro_pair[0].get_order(demo_order("shipped"))
    with scripted_server(answer(200, {**good, **change})) as (url, _):
        with pytest.raises(BackendUnavailable, match="malformed"):
            HttpBackend(url).get_order("x")


def test_409_and_404_mapping_from_any_server() -> None:
    conflict = {"error": "not_allowed", "reason": "locked_by_warehouse", "message": "拣货中"}
    with scripted_server(answer(409, conflict)) as (url, _):
        with pytest.raises(NotAllowed) as raised:
            HttpBackend(url).change_address("1", NEW_ADDRESS)
    assert raised.value.reason == "locked_by_warehouse"
    with scripted_server(answer(404, {"error": "not_found"})) as (url, hits):
        client = HttpBackend(url)
        assert client.get_order("1") is None
        assert client.list_coupons("1") == []
        with pytest.raises(NotFound):
            client.create_invoice_request("1", "个人", None, "a@b.c")
    assert hits == Counter({"GET": 2, "POST": 1})


# ---------------------------------------------------------------- server input validation

def _raw(url: str, method: str, path: str, body: Any = None, raw: Optional[bytes] = None,
         headers: Optional[Dict[str, str]] = None) -> requests.Response:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    all_headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                   **(headers or {})}
    return requests.request(method, url + path, data=data, headers=all_headers, timeout=10)


PAID = demo_order("paid")
BAD_REQUESTS = [
    ("POST", f"/orders/{PAID}/after-sales", None, b"{not json"),
    ("POST", f"/orders/{PAID}/after-sales", None, b"\xff\xfe"),
    ("POST", f"/orders/{PAID}/after-sales", [1, 2], None),
    ("POST", f"/orders/{PAID}/after-sales", None, b""),
    ("POST", f"/orders/{PAID}/after-sales", {"type": "refund", "reason": "x"}, None),
    ("POST", f"/orders/{PAID}/after-sales", {"type": "refund", "amount": 12.5, "reason": "x"},
     None),
    ("POST", f"/orders/{PAID}/after-sales", {"type": "refund", "amount": "12.345",
                                             "reason": "x"}, None),
    ("POST", f"/orders/{PAID}/after-sales", {"type": "refund", "amount": "-1", "reason": "x"},
     None),
    ("POST", f"/orders/{PAID}/after-sales", {"type": "gift", "amount": "1.00", "reason": "x"},
     None),
    ("POST", f"/orders/{PAID}/after-sales", {"type": "refund", "amount": "1.00", "reason": 7},
     None),
    ("POST", f"/orders/{PAID}/shipment-urges", {}, None),
    ("POST", f"/orders/{PAID}/shipment-urges", {"day": "2026-13-01"}, None),
    ("POST", f"/orders/{PAID}/shipment-urges", {"day": 20261124}, None),
    ("PUT", f"/orders/{PAID}/address", {"name": "a", "phone": "1", "region": "r"}, None),
    ("PUT", f"/orders/{PAID}/address", {"name": 1, "phone": "1", "region": "r", "detail": "d"},
     None),
    ("PUT", f"/orders/{PAID}/address", {"name": "", "phone": "1", "region": "r", "detail": "d"},
     None),
    ("POST", f"/orders/{PAID}/invoice-requests", {"title": "个人", "email": "nope"}, None),
    ("POST", f"/orders/{PAID}/invoice-requests", {"title": "", "email": "a@b.c"}, None),
    ("POST", f"/orders/{PAID}/invoice-requests", {"title": "个人", "email": "a@b.c",
                                                  "tax_number": 5}, None),
    ("POST", f"/orders/{PAID}/cancel", None, b"[1]"),
    ("POST", f"/orders/{PAID}/cancel", None, b"{" + b" " * 70000 + b"}"),
    ("GET", "/customers/C1001/orders?limit=abc", None, None),
    ("GET", "/customers/C1001/orders?limit=-1", None, None),
    ("GET", "/customers/C1001/orders?limit=101", None, None),
    ("GET", "/customers/C1001/orders?status=bogus", None, None),
    ("GET", "/customers/C1001/orders?status=", None, None),
    ("GET", "/products?q=" + "x" * 101, None, None),
]


def test_server_rejects_malformed_requests_with_400(sql: SqlBackend) -> None:
    before = (sql.get_order(PAID), sql.list_after_sales(PAID), sql.count_rows())
    with reference_server(sql) as url:
        for method, path, body, raw in BAD_REQUESTS:
            response = _raw(url, method, path, body, raw)
            assert response.status_code == 400, (method, path, body, raw, response.text)
            assert response.headers["Content-Type"].startswith("application/json")
            payload = response.json()
            assert payload["error"] == "bad_request" and payload["message"], payload
            assert "Traceback" not in response.text
        # the server still works after all of that
        assert HttpBackend(url, token=TOKEN).get_order(PAID) is not None
    assert (sql.get_order(PAID), sql.list_after_sales(PAID), sql.count_rows()) == before


def test_server_unknown_route_and_method(sql: SqlBackend) -> None:
    with reference_server(sql) as url:
        missing = _raw(url, "GET", "/nothing/here")
        wrong_method = _raw(url, "DELETE", f"/orders/{PAID}")
        not_found = _raw(url, "GET", "/orders/nope")
    assert (missing.status_code, missing.json()["error"]) == (404, "no_route")
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method_not_allowed")
    assert wrong_method.headers["Allow"] == "GET"
    assert (not_found.status_code, not_found.json()) == (404, {"error": "not_found"})


def test_server_answers_409_with_reason(sql: SqlBackend) -> None:
    with reference_server(sql) as url:
        response = _raw(url, "POST", f"/orders/{demo_order('shipped')}/cancel")
    assert response.status_code == 409
    assert response.json()["error"] == "not_allowed"
    assert response.json()["reason"] == "already_shipped"


# ---------------------------------------------------------------- OpenAPI contract

SPEC = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
SPEC_OPERATIONS = {(method.upper(), path) for path, item in SPEC["paths"].items()
                   for method in item if method in HTTP_METHODS}


def _spec_operation(method: str, path: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """(template, operation) of the spec matching a concrete request path."""
    segments = path.split("/")
    for template, item in SPEC["paths"].items():
        parts = template.split("/")
        if len(parts) == len(segments) and method.lower() in item and all(
                p == s or (p.startswith("{") and s) for p, s in zip(parts, segments)):
            return template, item[method.lower()]
    return None


def _json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema (``nullable`` -> ``null`` allowed)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items()
                 if key not in ("nullable", "example")}
    return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") is True else converted


def _response_schema(operation: Dict[str, Any], status: int) -> Dict[str, Any]:
    """The JSON schema of ``operation``'s answer with ``status``."""
    responses = operation["responses"]
    response = responses.get(str(status)) or responses[f"{str(status)[0]}XX"]
    if "$ref" in response:
        response = SPEC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    return {**_json_schema(schema),
            "components": {"schemas": _json_schema(SPEC["components"]["schemas"])}}


def test_spec_operations_equal_server_routes() -> None:
    routes = {(route.method, route.template) for route in server_module.ROUTES}
    assert routes == SPEC_OPERATIONS


def test_every_spec_operation_is_served(sql: SqlBackend) -> None:
    with reference_server(sql) as url:
        for method, template in sorted(SPEC_OPERATIONS):
            path = template.replace("{customer_id}", "C1001").replace(
                "{order_id}", "no-such-order").replace("{case_id}", "no-such-case")
            response = _raw(url, method, path, body={})
            assert response.status_code != 405, (method, template)
            assert response.json().get("error") != "no_route", (method, template)
            operation = _spec_operation(method, path)
            assert operation is not None
            assert str(response.status_code) in operation[1]["responses"], (method, template)


def _every_backend_call(order_id: str, case_id: str) -> Dict[str, Callable[[ShopBackend], Any]]:
    """One call of every ShopBackend method, on the demo data."""
    return {
        "get_customer": lambda b: b.get_customer("C1001"),
        "get_order": lambda b: b.get_order(order_id),
        "list_orders": lambda b: b.list_orders("C1001", ["paid", "shipped"], 3),
        "list_after_sales": lambda b: b.list_after_sales(order_id),
        "get_after_sale": lambda b: b.get_after_sale(case_id),
        "list_coupons": lambda b: b.list_coupons("C1001"),
        "find_products": lambda b: b.find_products("耳机", 2),
        "list_products": lambda b: b.list_products(),
        "cancel_order": lambda b: b.cancel_order(demo_order("pending_payment")),
        "record_shipment_urge": lambda b: b.record_shipment_urge(order_id, "2026-11-24"),
        "create_after_sale": lambda b: b.create_after_sale(order_id, "refund", Decimal("9"),
                                                           "x"),
        "change_address": lambda b: b.change_address(demo_order("paid"), NEW_ADDRESS),
        "create_invoice_request": lambda b: b.create_invoice_request(order_id, "个人", None,
                                                                     "a@b.c"),
    }


def test_every_client_call_is_in_spec_and_answers_match_schemas(sql: SqlBackend) -> None:
    seen: List[Tuple[str, str, int, Any]] = []

    def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        seen.append((response.request.method, urlsplit(response.url).path,
                     response.status_code, response.json()))

    order_id = demo_order("delivered", open_case=False)
    case_id = DEMO["after_sales"][0]["id"]
    calls = _every_backend_call(order_id, case_id)
    assert set(calls) == set(ShopBackend.__abstractmethods__)
    session = requests.Session()
    session.hooks["response"].append(record)
    with reference_server(sql) as url:
        client = HttpBackend(url, token=TOKEN, session=session)
        for name, call in calls.items():
            before = len(seen)
            call(client)
            call(client)  # twice: "created/changed: false" answers too
            assert len(seen) > before, f"{name} sent no request"
        client.get_order("no-such-order")
        with pytest.raises(NotAllowed):
            client.cancel_order(demo_order("shipped"))
    used = set()
    for method, path, status, payload in seen:
        match = _spec_operation(method, path)
        assert match is not None, f"{method} {path} is not in the spec"
        used.add((method, match[0]))
        jsonschema.validate(payload, _response_schema(match[1], status))
    assert used == SPEC_OPERATIONS


def test_spec_schemas_cover_record_fields() -> None:
    import dataclasses

    from actions.backends import models

    schemas = SPEC["components"]["schemas"]
    for record in (models.Customer, models.Product, models.OrderItem, models.Address,
                   models.ShipmentEvent, models.Shipment, models.Order, models.AfterSale,
                   models.Coupon, models.InvoiceRequest):
        names = {f.name for f in dataclasses.fields(record)}
        assert set(schemas[record.__name__]["properties"]) == names, record.__name__
        assert set(schemas[record.__name__]["required"]) == names, record.__name__


# ---------------------------------------------------------------- the CLI

def _wait_for_line(process: subprocess.Popen, needle: str, timeout: float) -> str:
    """Read stdout until a line containing ``needle`` (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if needle in line:
                return line
            if not line and process.poll() is not None:
                break
    raise AssertionError(f"server did not print {needle!r}: {process.stderr.read()}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_serves_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "KEFU_ORDER_API_TOKEN": TOKEN}
    command = [sys.executable, str(ROOT / "scripts" / "order_api_server.py"), "--port", str(port),
               "--database-url", f"sqlite:///{tmp_path / 'cli.db'}"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_line(process, "listening", timeout=60)
        url = f"http://127.0.0.1:{port}"
        assert HttpBackend(url, token=TOKEN).get_customer("C1001").name == "张伟"
        with pytest.raises(BackendUnavailable, match="authentication failed"):
            HttpBackend(url, token="nope").get_customer("C1001")
        process.send_signal(sig)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read()
    assert "Traceback" not in stderr and TOKEN not in stderr
