"""REST adapter: the shop's systems as web services.

The contract is ``docs/order-api.openapi.yml``; a reference implementation
is ``scripts/order_api_server.py``. Error mapping:

- timeout, refused connection, 5xx, 401/403, unexpected status or JSON
  -> ``BackendUnavailable`` (messages never contain the token or base URL);
- 404 ``{"error": "not_found"}`` -> ``None`` for ``get_*``, ``[]`` for
  lists, ``NotFound`` for writes;
- 409 ``{"error": "not_allowed", "reason": ...}`` -> ``NotAllowed(reason)``.
- 400 ``{"error": "bad_request"}`` -> ``ValueError`` (invalid input, as
  ``SqlBackend`` raises it).

Only GET requests are retried (connect errors, read timeouts, 502/503/504)
with exponential backoff; writes are sent exactly once.
"""
from __future__ import annotations

import logging
import re
from dataclasses import fields, is_dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from actions.backends.base import BackendUnavailable, NotAllowed, NotFound, ShopBackend
from actions.backends.models import (
    ORDER_STATUSES,
    Address,
    AfterSale,
    Coupon,
    Customer,
    InvoiceRequest,
    Order,
    OrderItem,
    Product,
    Shipment,
    ShipmentEvent,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
CENT = Decimal("0.01")
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_LIMIT = 100  # the contract's largest ``limit``
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII, no spaces
_PARSE_ERRORS = (KeyError, TypeError, ValueError, ArithmeticError, AttributeError)


# ---------------------------------------------------------------- wire format

def money_to_wire(amount: Any) -> str:
    """``Decimal("199")`` -> ``"199.00"`` (rounded half up to cents, like ``SqlBackend``)."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int, float, str)):
        raise ValueError("money must be a Decimal")
    value = Decimal(repr(amount) if isinstance(amount, float) else amount)
    if not value.is_finite():
        raise ValueError("money must be finite")
    return format(value.quantize(CENT, rounding=ROUND_HALF_UP), "f")


def to_wire(value: Any) -> Any:
    """A record (or list/dict of records) as JSON-ready data per the contract."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Decimal):
        return money_to_wire(value)
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("naive datetime in a record")
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_wire(item) for key, item in value.items()}
    return value


def _field(data: Mapping[str, Any], key: str, kind: type) -> Any:
    """``data[key]`` checked to be of ``kind`` (bools are not ints)."""
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{key}: expected {kind.__name__}")
    return value


def _money(data: Mapping[str, Any], key: str) -> Decimal:
    """A decimal-string money field."""
    value = Decimal(_field(data, key, str))
    if not value.is_finite():
        raise ValueError(f"{key}: not a finite amount")
    return value


def _time(data: Mapping[str, Any], key: str) -> datetime:
    """An ISO 8601 time field with an offset, as an aware datetime."""
    text = _field(data, key, str)
    value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if value.utcoffset() is None:
        raise ValueError(f"{key}: time without offset")
    return value


def _optional(data: Mapping[str, Any], key: str, parse: Callable[..., T]) -> Optional[T]:
    """``parse(data, key)``, or ``None`` when the field is null or absent."""
    return None if data.get(key) is None else parse(data, key)


def _dict(value: Any) -> Mapping[str, Any]:
    """``value`` checked to be a JSON object."""
    if not isinstance(value, dict):
        raise TypeError("expected a JSON object")
    return value


def _strings(value: Any) -> List[str]:
    """``value`` checked to be a JSON array of strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected an array of strings")
    return list(value)


def parse_customer(data: Any) -> Customer:
    """A ``Customer`` from its JSON object."""
    data = _dict(data)
    return Customer(id=_field(data, "id", str), name=_field(data, "name", str),
                    phone=_field(data, "phone", str), tier=_field(data, "tier", str),
                    points=_field(data, "points", int))


def parse_product(data: Any) -> Product:
    """A ``Product`` from its JSON object."""
    data = _dict(data)
    attributes = {key: _strings(values)
                  for key, values in _dict(data.get("attributes") or {}).items()}
    return Product(sku=_field(data, "sku", str), name=_field(data, "name", str),
                   category=_field(data, "category", str), price=_money(data, "price"),
                   stock=_field(data, "stock", int), attributes=attributes)


def parse_address(data: Any) -> Address:
    """An ``Address`` from its JSON object."""
    data = _dict(data)
    return Address(name=_field(data, "name", str), phone=_field(data, "phone", str),
                   region=_field(data, "region", str), detail=_field(data, "detail", str))


def _parse_item(data: Any) -> OrderItem:
    data = _dict(data)
    return OrderItem(sku=_field(data, "sku", str), name=_field(data, "name", str),
                     qty=_field(data, "qty", int), price=_money(data, "price"))


def _parse_event(data: Any) -> ShipmentEvent:
    data = _dict(data)
    return ShipmentEvent(time=_time(data, "time"), location=_field(data, "location", str),
                         description=_field(data, "description", str))


def _parse_shipment(data: Mapping[str, Any], key: str) -> Shipment:
    data = _dict(data[key])
    return Shipment(carrier=_field(data, "carrier", str),
                    tracking_number=_field(data, "tracking_number", str),
                    events=tuple(_parse_event(e) for e in _field(data, "events", list)))


def parse_order(data: Any) -> Order:
    """An ``Order`` from its JSON object."""
    data = _dict(data)
    return Order(
        id=_field(data, "id", str), customer_id=_field(data, "customer_id", str),
        status=_field(data, "status", str), created_at=_time(data, "created_at"),
        total=_money(data, "total"),
        items=tuple(_parse_item(item) for item in _field(data, "items", list)),
        address=parse_address(data["address"]),
        paid_at=_optional(data, "paid_at", _time),
        shipped_at=_optional(data, "shipped_at", _time),
        delivered_at=_optional(data, "delivered_at", _time),
        shipment=_optional(data, "shipment", _parse_shipment),
    )


def parse_after_sale(data: Any) -> AfterSale:
    """An ``AfterSale`` from its JSON object."""
    data = _dict(data)
    return AfterSale(id=_field(data, "id", str), order_id=_field(data, "order_id", str),
                     type=_field(data, "type", str), status=_field(data, "status", str),
                     amount=_money(data, "amount"), reason=_field(data, "reason", str),
                     created_at=_time(data, "created_at"))


def parse_coupon(data: Any) -> Coupon:
    """A ``Coupon`` from its JSON object."""
    data = _dict(data)
    return Coupon(id=_field(data, "id", str), customer_id=_field(data, "customer_id", str),
                  title=_field(data, "title", str), amount=_money(data, "amount"),
                  min_spend=_money(data, "min_spend"), expires_at=_time(data, "expires_at"),
                  used=_field(data, "used", bool))


def parse_invoice_request(data: Any) -> InvoiceRequest:
    """An ``InvoiceRequest`` from its JSON object."""
    data = _dict(data)
    return InvoiceRequest(id=_field(data, "id", str), order_id=_field(data, "order_id", str),
                          title=_field(data, "title", str),
                          tax_number=_optional(data, "tax_number", lambda d, k: _field(d, k, str)),
                          email=_field(data, "email", str), created_at=_time(data, "created_at"))


# ---------------------------------------------------------------- transport

class _BearerAuth(AuthBase):
    """Sets ``Authorization: Bearer <token>``; never shows the token in repr."""

    def __init__(self, token: Optional[str]) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(<hidden>)"


class _GetOnlyRetry(Retry):
    """urllib3 ``Retry`` that never retries other methods, not even on connect errors."""

    def increment(self, method: Optional[str] = None, *args: Any, **kwargs: Any) -> Retry:
        retry: Retry = self
        if method is not None and not self._is_method_retryable(method):
            retry = self.new(total=0)  # exhausted: re-raise at once
        return Retry.increment(retry, method, *args, **kwargs)


def _transport_problem(error: requests.RequestException) -> str:
    """A short description of a transport failure, without URL or headers."""
    reason = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError -> its cause
    if isinstance(reason, NewConnectionError):
        return "connection failed"
    if isinstance(error, requests.Timeout) or isinstance(reason, Urllib3Timeout):
        return "timed out"
    if isinstance(error, requests.ConnectionError):
        return "connection failed"
    return type(error).__name__


def _segment(value: str) -> str:
    """One percent-encoded path segment; empty ids do not exist."""
    if not isinstance(value, str) or not value:
        raise NotFound("empty id")
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


class HttpBackend(ShopBackend):
    """``ShopBackend`` over the REST contract ``docs/order-api.openapi.yml``."""

    BACKOFF_FACTOR = 0.2  # seconds; GET retries wait 0, 0.4, 0.8, ... (urllib3 2)
    BACKOFF_MAX = 2.0

    def __init__(
        self,
        base_url: str,
        token: Optional[str] = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        retries: int = 2,
        session: Optional[requests.Session] = None,
    ) -> None:
        if not re.match(r"^https?://[^/\s]+", base_url or ""):
            raise ValueError("base_url must be an http:// or https:// URL")
        if token is not None and not _TOKEN_RE.match(token):
            raise ValueError("token must be visible ASCII without spaces")
        if retries < 0 or connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("timeouts must be positive and retries non-negative")
        self._base_url = base_url.rstrip("/")
        self._auth = _BearerAuth(token)
        self._timeout = (connect_timeout, read_timeout)
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._session.mount(self._base_url + "/", HTTPAdapter(max_retries=self._retry(retries)))

    def _retry(self, retries: int) -> Retry:
        """The GET-only retry policy with exponential backoff."""
        return _GetOnlyRetry(
            total=retries, connect=retries, read=retries, status=retries, other=0,
            redirect=0, allowed_methods=frozenset({"GET"}), status_forcelist=RETRY_STATUSES,
            backoff_factor=self.BACKOFF_FACTOR, backoff_max=self.BACKOFF_MAX,
            raise_on_status=False, raise_on_redirect=False, respect_retry_after_header=False,
        )

    def close(self) -> None:
        """Release pooled connections (of a session this backend created)."""
        if self._owns_session:
            self._session.close()

    def __repr__(self) -> str:
        return f"HttpBackend({self._base_url!r})"

    # ------------------------------------------------------------ plumbing

    def _call(self, op: str, method: str, path: str, params: Optional[Dict[str, str]] = None,
              body: Optional[Dict[str, Any]] = None) -> Any:
        """Send one request; the decoded JSON of a 2xx answer, errors mapped."""
        try:
            response = self._session.request(
                method, self._base_url + path, params=params, json=body, auth=self._auth,
                timeout=self._timeout, allow_redirects=False)
        except requests.RequestException as error:
            problem = _transport_problem(error)
            logger.warning("order API %s: %s", op, problem)
            raise BackendUnavailable(f"order API {op}: {problem}") from None
        return self._answer(op, response)

    def _answer(self, op: str, response: requests.Response) -> Any:
        """The JSON of ``response``, or the exception its status means."""
        status = response.status_code
        if status in (401, 403):
            logger.error("order API %s: authentication failed (HTTP %s)", op, status)
            raise BackendUnavailable("authentication failed")
        if status >= 500:
            logger.warning("order API %s: HTTP %s", op, status)
            raise BackendUnavailable(f"order API {op}: HTTP {status}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if status in (200, 201) and data is not None:
            return data
        error = data.get("error") if isinstance(data, dict) else None
        if status == 400 and error == "bad_request":
            raise ValueError(f"order API rejected the request: {data.get('message', '')}")
        if status == 404 and error == "not_found":
            raise NotFound(f"{op}: not found")
        if status == 409 and error == "not_allowed" and isinstance(data.get("reason"), str):
            raise NotAllowed(data["reason"], str(data.get("message") or ""))
        logger.error("order API %s: unexpected answer (HTTP %s)", op, status)
        raise BackendUnavailable(f"order API {op}: unexpected answer (HTTP {status})")

    @staticmethod
    def _parse(op: str, parse: Callable[[Any], T], data: Any) -> T:
        """``parse(data)``; malformed data -> ``BackendUnavailable``."""
        try:
            return parse(data)
        except _PARSE_ERRORS as error:
            logger.error("order API %s: malformed answer (%s)", op, error)
            raise BackendUnavailable(f"order API {op}: malformed answer") from None

    def _get_one(self, op: str, path: str, parse: Callable[[Any], T]) -> Optional[T]:
        """A single record, or ``None`` when it does not exist."""
        try:
            data = self._call(op, "GET", path)
        except NotFound:
            return None
        return self._parse(op, parse, data)

    def _get_list(self, op: str, path: str, key: str, parse: Callable[[Any], T],
                  params: Optional[Dict[str, str]] = None) -> List[T]:
        """The records listed under ``key``; an unknown owner has none."""
        try:
            data = self._call(op, "GET", path, params=params)
        except NotFound:
            return []
        return self._parse(
            op, lambda d: [parse(item) for item in _field(_dict(d), key, list)], data)

    # ------------------------------------------------------------ reads

    def get_customer(self, customer_id: str) -> Optional[Customer]:
        try:
            path = f"/customers/{_segment(customer_id)}"
        except NotFound:
            return None
        return self._get_one("get_customer", path, parse_customer)

    def get_order(self, order_id: str) -> Optional[Order]:
        try:
            path = f"/orders/{_segment(order_id)}"
        except NotFound:
            return None
        return self._get_one("get_order", path, parse_order)

    def list_orders(
        self, customer_id: str, statuses: Optional[Sequence[str]] = None, limit: int = 5
    ) -> List[Order]:
        if statuses is not None:  # unknown statuses match nothing, as in SqlBackend
            statuses = [s for s in statuses if s in ORDER_STATUSES]
        if limit <= 0 or statuses == []:
            return []
        params = {"limit": str(min(int(limit), MAX_LIMIT))}
        if statuses is not None:
            params["status"] = ",".join(statuses)
        try:
            path = f"/customers/{_segment(customer_id)}/orders"
        except NotFound:
            return []
        return self._get_list("list_orders", path, "orders", parse_order, params)

    def list_after_sales(self, order_id: str) -> List[AfterSale]:
        try:
            path = f"/orders/{_segment(order_id)}/after-sales"
        except NotFound:
            return []
        return self._get_list("list_after_sales", path, "after_sales", parse_after_sale)

    def get_after_sale(self, case_id: str) -> Optional[AfterSale]:
        try:
            path = f"/after-sales/{_segment(case_id)}"
        except NotFound:
            return None
        return self._get_one("get_after_sale", path, parse_after_sale)

    def list_coupons(self, customer_id: str) -> List[Coupon]:
        try:
            path = f"/customers/{_segment(customer_id)}/coupons"
        except NotFound:
            return []
        return self._get_list("list_coupons", path, "coupons", parse_coupon)

    def find_products(self, query: str, limit: int = 5) -> List[Product]:
        if not (query or "").strip() or limit <= 0:
            return []
        params = {"q": query, "limit": str(min(int(limit), MAX_LIMIT))}
        return self._get_list("find_products", "/products", "products", parse_product, params)

    def list_products(self) -> List[Product]:
        return self._get_list("list_products", "/products", "products", parse_product)

    # ------------------------------------------------------------ writes

    def _write(self, op: str, method: str, path: str, body: Dict[str, Any],
               parse: Callable[[Mapping[str, Any]], T]) -> T:
        """Send a write once and parse its answer."""
        data = self._call(op, method, path, body=body)
        return self._parse(op, lambda d: parse(_dict(d)), data)

    def cancel_order(self, order_id: str) -> Tuple[Order, bool]:
        return self._write(
            "cancel_order", "POST", f"/orders/{_segment(order_id)}/cancel", {},
            lambda d: (parse_order(d["order"]), _field(d, "changed", bool)))

    def record_shipment_urge(self, order_id: str, day: str) -> bool:
        return self._write(
            "record_shipment_urge", "POST", f"/orders/{_segment(order_id)}/shipment-urges",
            {"day": day}, lambda d: _field(d, "created", bool))

    def create_after_sale(
        self, order_id: str, case_type: str, amount: Decimal, reason: str
    ) -> Tuple[AfterSale, bool]:
        body = {"type": case_type, "amount": money_to_wire(amount), "reason": reason}
        return self._write(
            "create_after_sale", "POST", f"/orders/{_segment(order_id)}/after-sales", body,
            lambda d: (parse_after_sale(d["after_sale"]), _field(d, "created", bool)))

    def change_address(self, order_id: str, address: Address) -> Order:
        return self._write(
            "change_address", "PUT", f"/orders/{_segment(order_id)}/address", to_wire(address),
            lambda d: parse_order(d["order"]))

    def create_invoice_request(
        self, order_id: str, title: str, tax_number: Optional[str], email: str
    ) -> Tuple[InvoiceRequest, bool]:
        body = {"title": title, "tax_number": tax_number, "email": email}
        return self._write(
            "create_invoice_request", "POST", f"/orders/{_segment(order_id)}/invoice-requests",
            body, lambda d: (parse_invoice_request(d["invoice_request"]),
                             _field(d, "created", bool)))
