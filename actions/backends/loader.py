"""Load shop data from a JSON file into the SQL database; sync the product lookup.

The file format is described in ``docs/data-format.md``. A file is validated
completely before anything is written; a bad file raises ``DataFileError``
naming every bad record and leaves the database unchanged. Valid records are
upserted by id in one transaction.

CLI (run from the project root)::

    python -m actions.backends.loader FILE [--database-url URL]
    python -m actions.backends.loader --sync-catalogue [--database-url URL] [--lookup-file PATH]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from sqlalchemy.engine.url import make_url

from actions import clock
from actions.backends.base import BackendError, ShopBackend
from actions.backends.models import (
    AFTER_SALE_STATUSES,
    AFTER_SALE_TYPES,
    OPEN_AFTER_SALE_STATUSES,
    ORDER_STATUSES,
    TIERS,
    Address,
    AfterSale,
    Coupon,
    Customer,
    Order,
    OrderItem,
    Product,
    Shipment,
    ShipmentEvent,
)
from actions.backends.sql import (
    DEFAULT_DATABASE_URL,
    PROJECT_ROOT,
    RECORD_KINDS,
    ShopRecords,
    SqlBackend,
    UpsertCount,
)

DEMO_FILE = PROJECT_ROOT / "demo" / "shop.json"
# The shop day demo/shop.json is written for; first-run seeding moves its times
# forward by whole days so that the demo always looks current.
DEMO_DAY = date(2026, 11, 24)
LOOKUP_FILE = PROJECT_ROOT / "data" / "lookups" / "product.yml"
DATABASE_URL_ENV = "KEFU_DATABASE_URL"

ORDER_ID = re.compile(r"^\d{12,20}$")
PHONE = re.compile(r"^1[3-9]\d{9}$")
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
RECORD_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}$")
MAX_MONEY = Decimal("9999999999.99")  # NUMERIC(12, 2)
MAX_PROBLEMS = 50
# Which order times each status requires (True), forbids (False) or allows (None).
STATUS_TIMES: Dict[str, Dict[str, Optional[bool]]] = {
    "pending_payment": {"paid_at": False, "shipped_at": False, "delivered_at": False},
    "paid": {"paid_at": True, "shipped_at": False, "delivered_at": False},
    "shipped": {"paid_at": True, "shipped_at": True, "delivered_at": False},
    "delivered": {"paid_at": True, "shipped_at": True, "delivered_at": True},
    "cancelled": {"paid_at": None, "shipped_at": False, "delivered_at": False},
}
SHIPMENT_STATUSES = ("shipped", "delivered")


class DataFileError(Exception):
    """The data file is unreadable or invalid; ``problems`` lists each one."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:MAX_PROBLEMS]
        more = len(self.problems) - len(shown)
        super().__init__("\n".join(shown + ([f"... and {more} more"] if more > 0 else [])))


# ---------------------------------------------------------------- reading
def _no_duplicate_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise DataFileError([f"duplicate key {duplicates[0]!r} in one JSON object"])
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise DataFileError([f"{name} is not a valid JSON number"])


def parse_json(text: str, source: str = "data") -> Any:
    """JSON text with exact ``Decimal`` numbers; raises ``DataFileError``."""
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant,
                          object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise DataFileError([f"{source}: not valid JSON: {error.msg} "
                             f"(line {error.lineno}, column {error.colno})"]) from None
    except DataFileError as error:
        raise DataFileError([f"{source}: {p}" for p in error.problems]) from None


def read_data_file(path: Union[str, Path]) -> Any:
    """The parsed JSON content of ``path``; raises ``DataFileError``."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataFileError([f"{path}: cannot read the file: {error}"]) from None
    return parse_json(text, str(path))


# ---------------------------------------------------------------- field checks
def _show(value: Any) -> str:
    """A short JSON-ish rendering of a bad value for messages."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


class _Fields:
    """Typed access to one JSON object; problems are collected, not raised."""

    def __init__(self, obj: Any, where: str, prefix: str, problems: List[str],
                 required: Sequence[str], optional: Sequence[str] = ()) -> None:
        self.where, self.prefix, self.problems = where, prefix, problems
        self.ok = isinstance(obj, dict)
        self.obj: Dict[str, Any] = obj if self.ok else {}
        if not self.ok:
            self.fail(f"{prefix.rstrip('.') or 'record'} must be a JSON object, got {_show(obj)}")
            return
        for name in required:
            if name not in self.obj:
                self.fail(f'missing field "{prefix}{name}"')
        known = set(required) | set(optional)
        for name in self.obj:
            if name not in known:
                self.fail(f'unknown field "{prefix}{name}"')

    def fail(self, message: str) -> None:
        self.ok = False
        self.problems.append(f"{self.where}: {message}")

    def _get(self, name: str, optional: bool) -> Tuple[bool, Any]:
        """(present, value); a missing required field was reported already."""
        value = self.obj.get(name)
        if value is None:
            if name in self.obj and not optional:
                self.fail(f"{self.prefix}{name} must not be null")
            return False, None
        return True, value

    def text(self, name: str, pattern: Optional[re.Pattern] = None, hint: str = "",
             allow_empty: bool = False) -> Optional[str]:
        present, value = self._get(name, False)
        if not present:
            return None
        if not isinstance(value, str):
            self.fail(f"{self.prefix}{name} must be a string, got {_show(value)}")
        elif not allow_empty and not value.strip():
            self.fail(f"{self.prefix}{name} must not be empty")
        elif pattern is not None and not pattern.match(value):
            self.fail(f"{self.prefix}{name} {_show(value)} {hint}")
        elif any(ord(ch) < 32 for ch in value):
            self.fail(f"{self.prefix}{name} must not contain control characters or newlines")
        else:
            return value
        return None

    def choice(self, name: str, choices: Sequence[str]) -> Optional[str]:
        value = self.text(name)
        if value is not None and value not in choices:
            self.fail(f'{self.prefix}{name} {_show(value)} is not one of {", ".join(choices)}')
            return None
        return value

    def integer(self, name: str, minimum: int = 0) -> Optional[int]:
        present, value = self._get(name, False)
        if not present:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{self.prefix}{name} must be an integer, got {_show(value)}")
        elif value < minimum:
            self.fail(f"{self.prefix}{name} must be at least {minimum}, got {value}")
        else:
            return value
        return None

    def boolean(self, name: str) -> Optional[bool]:
        present, value = self._get(name, False)
        if present and not isinstance(value, bool):
            self.fail(f"{self.prefix}{name} must be true or false, got {_show(value)}")
            return None
        return value

    def money(self, name: str, positive: bool = False) -> Optional[Decimal]:
        present, value = self._get(name, False)
        if not present:
            return None
        amount = _to_decimal(value)
        if amount is None:
            self.fail(f'{self.prefix}{name} must be an amount in yuan like "199.00", '
                      f"got {_show(value)}")
        elif amount.as_tuple().exponent < -2:  # type: ignore[operator]
            self.fail(f"{self.prefix}{name} {_show(value)} has more than two decimals")
        elif amount < 0 or (positive and amount == 0) or amount > MAX_MONEY:
            low = "greater than 0" if positive else "0 or more"
            self.fail(f"{self.prefix}{name} {_show(value)} must be {low} "
                      f"and at most {MAX_MONEY}")
        else:
            return amount.quantize(Decimal("0.01"))
        return None

    def time(self, name: str, optional: bool = False) -> Optional[datetime]:
        present, value = self._get(name, optional)
        if not present:
            return None
        moment = _to_datetime(value)
        if moment is None:
            self.fail(f"{self.prefix}{name} must be an ISO 8601 time like "
                      f'"2026-11-24T10:00:00+08:00", got {_show(value)}')
        elif moment.utcoffset() is None:
            self.fail(f"{self.prefix}{name} {_show(value)} has no UTC offset "
                      f"(write e.g. {value}+08:00)")
        else:
            return moment
        return None

    def attributes(self, name: str) -> Optional[Dict[str, List[str]]]:
        present, value = self._get(name, True)
        if not present:
            return {}
        good = isinstance(value, dict) and all(
            isinstance(k, str) and k.strip() and isinstance(v, list)
            and all(isinstance(x, str) and x.strip() for x in v) for k, v in value.items())
        if not good:
            self.fail(f'{self.prefix}{name} must map names to lists of strings, e.g. '
                      f'{{"size": ["S", "M"]}}, got {_show(value)}')
            return None
        return {k: list(v) for k, v in value.items()}


def _to_decimal(value: Any) -> Optional[Decimal]:
    """A JSON number or decimal string as ``Decimal`` (floats via their shortest repr)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _to_datetime(value: Any) -> Optional[datetime]:
    if not isinstance(value, str) or not DATE_TIME.match(value):
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


# ---------------------------------------------------------------- records
def _label(kind: str, index: int, obj: Any, key: str = "id") -> str:
    """``orders[3] (id 2024...)`` for messages."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return f"{kind}[{index}]" + (f" ({key} {value})" if isinstance(value, str) else "")


def _customer(obj: Any, where: str, problems: List[str]) -> Optional[Customer]:
    f = _Fields(obj, where, "", problems, ("id", "name", "phone", "tier"), ("points",))
    values = dict(
        id=f.text("id", RECORD_ID, "must be 1-64 characters without spaces"),
        name=f.text("name"),
        phone=f.text("phone", PHONE, "is not an 11-digit mainland mobile number (1[3-9]...)"),
        tier=f.choice("tier", TIERS),
        points=f.integer("points") if "points" in f.obj else 0,
    )
    return Customer(**values) if f.ok else None


def _product(obj: Any, where: str, problems: List[str]) -> Optional[Product]:
    f = _Fields(obj, where, "", problems, ("sku", "name", "category", "price", "stock"),
                ("attributes",))
    values = dict(
        sku=f.text("sku", RECORD_ID, "must be 1-64 characters without spaces"),
        name=f.text("name"), category=f.text("category"), price=f.money("price"),
        stock=f.integer("stock"), attributes=f.attributes("attributes"),
    )
    return Product(**values) if f.ok else None


def _item(obj: Any, where: str, prefix: str, problems: List[str]) -> Optional[OrderItem]:
    f = _Fields(obj, where, prefix, problems, ("sku", "name", "qty", "price"))
    values = dict(sku=f.text("sku", RECORD_ID, "must be 1-64 characters without spaces"),
                  name=f.text("name"), qty=f.integer("qty", 1), price=f.money("price"))
    return OrderItem(**values) if f.ok else None


def _address(obj: Any, where: str, problems: List[str]) -> Optional[Address]:
    f = _Fields(obj, where, "address.", problems, ("name", "phone", "region", "detail"))
    values = dict(
        name=f.text("name"),
        phone=f.text("phone", PHONE, "is not an 11-digit mainland mobile number (1[3-9]...)"),
        region=f.text("region"), detail=f.text("detail"),
    )
    return Address(**values) if f.ok else None


def _event(obj: Any, where: str, prefix: str, problems: List[str]) -> Optional[ShipmentEvent]:
    f = _Fields(obj, where, prefix, problems, ("time", "location", "description"))
    values = dict(time=f.time("time"), location=f.text("location", allow_empty=True),
                  description=f.text("description"))
    return ShipmentEvent(**values) if f.ok else None


def _shipment(obj: Any, where: str, problems: List[str]) -> Optional[Shipment]:
    f = _Fields(obj, where, "shipment.", problems, ("carrier", "tracking_number"), ("events",))
    carrier, number = f.text("carrier"), f.text("tracking_number")
    raw_events = f.obj.get("events") or []
    if not isinstance(raw_events, list):
        f.fail("shipment.events must be a list")
        raw_events = []
    events = [_event(e, where, f"shipment.events[{n}].", problems)
              for n, e in enumerate(raw_events)]
    if not f.ok or None in events:
        return None
    return Shipment(carrier=carrier, tracking_number=number,  # type: ignore[arg-type]
                    events=tuple(sorted(events, key=lambda e: e.time)))  # type: ignore


def _order_items(f: _Fields, where: str, problems: List[str]) -> Optional[Tuple[OrderItem, ...]]:
    raw = f.obj.get("items")
    if "items" in f.obj and (not isinstance(raw, list) or not raw):
        f.fail("items must be a non-empty list")
        return None
    items = [_item(i, where, f"items[{n}].", problems) for n, i in enumerate(raw or [])]
    if None in items:
        f.ok = False
        return None
    return tuple(items)  # type: ignore[arg-type]


def _order(obj: Any, where: str, problems: List[str]) -> Optional[Order]:
    f = _Fields(obj, where, "", problems,
                ("id", "customer_id", "status", "created_at", "total", "items", "address"),
                ("paid_at", "shipped_at", "delivered_at", "shipment"))
    values: Dict[str, Any] = dict(
        id=f.text("id", ORDER_ID, "must be a string of 12 to 20 digits"),
        customer_id=f.text("customer_id"), status=f.choice("status", ORDER_STATUSES),
        created_at=f.time("created_at"), paid_at=f.time("paid_at", True),
        shipped_at=f.time("shipped_at", True), delivered_at=f.time("delivered_at", True),
        total=f.money("total"), items=_order_items(f, where, problems),
    )
    if "address" in f.obj:
        values["address"] = _address(f.obj["address"], where, problems)
        f.ok = f.ok and values["address"] is not None
    if f.obj.get("shipment") is not None:
        values["shipment"] = _shipment(f.obj["shipment"], where, problems)
        f.ok = f.ok and values["shipment"] is not None
    if not f.ok:
        return None
    order = Order(**values)
    return order if _check_order_state(order, f) else None


def _check_order_state(order: Order, f: _Fields) -> bool:
    """Status/time/shipment consistency of a well-typed order."""
    for name, rule in STATUS_TIMES[order.status].items():
        present = getattr(order, name) is not None
        if rule is True and not present:
            f.fail(f"status {order.status} needs {name}")
        elif rule is False and present:
            f.fail(f"status {order.status} must not have {name}")
    needs_shipment = order.status in SHIPMENT_STATUSES
    if needs_shipment and order.shipment is None:
        f.fail(f"status {order.status} needs a shipment")
    elif not needs_shipment and order.shipment is not None:
        f.fail(f"status {order.status} must not have a shipment")
    previous = ("created_at", order.created_at)
    for name in ("paid_at", "shipped_at", "delivered_at"):
        moment = getattr(order, name)
        if moment is not None:
            if moment < previous[1]:
                f.fail(f"{name} is earlier than {previous[0]}")
            previous = (name, moment)
    events = order.shipment.events if order.shipment else ()
    if any(event.time < order.created_at for event in events):
        f.fail("a shipment event is earlier than created_at")
    return f.ok


def _after_sale(obj: Any, where: str, problems: List[str]) -> Optional[AfterSale]:
    f = _Fields(obj, where, "", problems,
                ("id", "order_id", "type", "status", "amount", "reason", "created_at"))
    values = dict(
        id=f.text("id", RECORD_ID, "must be 1-64 characters without spaces"),
        order_id=f.text("order_id", ORDER_ID, "must be a string of 12 to 20 digits"),
        type=f.choice("type", AFTER_SALE_TYPES), status=f.choice("status", AFTER_SALE_STATUSES),
        amount=f.money("amount"), reason=f.text("reason", allow_empty=True),
        created_at=f.time("created_at"),
    )
    return AfterSale(**values) if f.ok else None


def _coupon(obj: Any, where: str, problems: List[str]) -> Optional[Coupon]:
    f = _Fields(obj, where, "", problems,
                ("id", "customer_id", "title", "amount", "min_spend", "expires_at", "used"))
    values = dict(
        id=f.text("id", RECORD_ID, "must be 1-64 characters without spaces"),
        customer_id=f.text("customer_id"), title=f.text("title"),
        amount=f.money("amount", positive=True), min_spend=f.money("min_spend"),
        expires_at=f.time("expires_at"), used=f.boolean("used"),
    )
    return Coupon(**values) if f.ok else None


PARSERS: Dict[str, Tuple[str, Callable[[Any, str, List[str]], Any]]] = {
    "customers": ("id", _customer),
    "products": ("sku", _product),
    "orders": ("id", _order),
    "after_sales": ("id", _after_sale),
    "coupons": ("id", _coupon),
}


# ---------------------------------------------------------------- whole file
class _Parsed:
    """Records that passed their own checks, with their labels for messages."""

    def __init__(self) -> None:
        self.records: Dict[str, List[Tuple[str, Any]]] = {kind: [] for kind in RECORD_KINDS}
        # ids of records that failed their own checks (not reported again as missing)
        self.rejected: Dict[str, Set[str]] = {kind: set() for kind in RECORD_KINDS}

    def ids(self, kind: str) -> Dict[str, Any]:
        key = PARSERS[kind][0]
        return {getattr(record, key): record for _, record in self.records[kind]}


def _parse_sections(raw: Any, problems: List[str]) -> _Parsed:
    parsed = _Parsed()
    if not isinstance(raw, dict):
        problems.append("the file must contain one JSON object with arrays "
                        f"{', '.join(RECORD_KINDS)}")
        return parsed
    for name in raw:
        if name not in PARSERS:
            problems.append(f'unknown top-level key "{name}" (expected {", ".join(RECORD_KINDS)})')
    for kind, (key, parse) in PARSERS.items():
        section = raw.get(kind)
        section = [] if section is None else section
        if not isinstance(section, list):
            problems.append(f"{kind} must be a JSON array")
            continue
        for index, obj in enumerate(section):
            where = _label(kind, index, obj, key)
            record = parse(obj, where, problems)
            if record is not None:
                parsed.records[kind].append((where, record))
            elif isinstance(obj, dict) and isinstance(obj.get(key), str):
                parsed.rejected[kind].add(obj[key])
    return parsed


def _check_duplicates(parsed: _Parsed, problems: List[str]) -> None:
    for kind, (key, _) in PARSERS.items():
        seen: Dict[str, str] = {}
        for where, record in parsed.records[kind]:
            value = getattr(record, key)
            if value in seen:
                problems.append(f"{where}: duplicate {key}, already used by {seen[value]}")
            seen.setdefault(value, where)
    phones: Dict[str, str] = {}
    for where, customer in parsed.records["customers"]:
        if customer.phone in phones:
            problems.append(f"{where}: phone {customer.phone} is already used by "
                            f"{phones[customer.phone]}")
        phones.setdefault(customer.phone, where)


class _Lookup:
    """Records referenced by the file: from the file first, else the database."""

    def __init__(self, parsed: _Parsed, backend: Optional[ShopBackend]) -> None:
        self.backend = backend
        self.customers = parsed.ids("customers")
        self.orders: Dict[str, Optional[Order]] = dict(parsed.ids("orders"))

    def has_customer(self, customer_id: str) -> bool:
        if customer_id not in self.customers:
            found = self.backend.get_customer(customer_id) if self.backend else None
            self.customers[customer_id] = found
        return self.customers[customer_id] is not None

    def order(self, order_id: str) -> Optional[Order]:
        if order_id not in self.orders:
            self.orders[order_id] = self.backend.get_order(order_id) if self.backend else None
        return self.orders[order_id]


def _check_references(parsed: _Parsed, lookup: _Lookup, problems: List[str]) -> None:
    """References resolve; records pointing to an already reported bad record are skipped."""
    where_from = "the file or the database" if lookup.backend else "the file"
    for kind in ("orders", "coupons"):
        for where, record in parsed.records[kind]:
            if record.customer_id in parsed.rejected["customers"]:
                continue
            if not lookup.has_customer(record.customer_id):
                problems.append(f'{where}: customer_id "{record.customer_id}" is not in '
                                f"{where_from}")
    for where, case in parsed.records["after_sales"]:
        if case.order_id in parsed.rejected["orders"]:
            continue
        order = lookup.order(case.order_id)
        if order is None:
            problems.append(f'{where}: order_id "{case.order_id}" is not in {where_from}')
        elif case.created_at < order.created_at:
            problems.append(f"{where}: created_at is earlier than the order's created_at")
        elif case.amount > order.total:
            problems.append(f"{where}: amount {case.amount} exceeds the order total "
                            f"{order.total}")


def _check_open_cases(parsed: _Parsed, backend: Optional[ShopBackend],
                      problems: List[str]) -> None:
    """At most one open after-sales case per order, counting the database's."""
    in_file = parsed.ids("after_sales")
    open_by_order: Dict[str, List[str]] = {}
    for where, case in parsed.records["after_sales"]:
        if case.status in OPEN_AFTER_SALE_STATUSES:
            open_by_order.setdefault(case.order_id, []).append(where)
    for order_id, wheres in open_by_order.items():
        stored = backend.list_after_sales(order_id) if backend else []
        others = [c.id for c in stored if c.is_open and c.id not in in_file]
        if len(wheres) + len(others) > 1:
            also = f" and {', '.join(others)} in the database" if others else ""
            problems.append(f"{wheres[-1]}: order {order_id} would have more than one open "
                            f"after-sales case ({'; '.join(wheres)}{also})")


def validate_data(raw: Any, backend: Optional[ShopBackend] = None) -> ShopRecords:
    """Check a parsed data file completely; references may point into ``backend``.

    Raises ``DataFileError`` listing every problem.
    """
    problems: List[str] = []
    parsed = _parse_sections(raw, problems)
    _check_duplicates(parsed, problems)
    _check_references(parsed, _Lookup(parsed, backend), problems)
    _check_open_cases(parsed, backend, problems)
    if problems:
        raise DataFileError(problems)
    return ShopRecords(**{kind: tuple(record for _, record in parsed.records[kind])
                          for kind in RECORD_KINDS})


def load_data(backend: SqlBackend,
              source: Union[str, Path, Mapping[str, Any]]) -> Dict[str, UpsertCount]:
    """Validate ``source`` (a file path or parsed JSON) and upsert it in one transaction.

    Creates missing tables first. Raises ``DataFileError`` (nothing written)
    or ``BackendUnavailable``.
    """
    raw = read_data_file(source) if isinstance(source, (str, Path)) else source
    backend.create_schema()
    counts = backend.import_records(validate_data(raw, backend))
    assert counts is not None
    return counts


def ensure_demo_data(backend: SqlBackend, path: Union[str, Path] = DEMO_FILE) -> bool:
    """First-run seeding: create the schema and load the demo data when there are no customers.

    The demo's times are moved from ``DEMO_DAY`` to today (``actions.clock``,
    so ``KEFU_CLOCK`` pins them). Returns whether this call loaded it (safe when several processes start at once).
    """
    backend.create_schema()
    if backend.count_rows()["customers"] > 0:
        return False
    records = validate_data(read_data_file(path), backend)
    records = shift_times(records, timedelta(days=(clock.now().date() - DEMO_DAY).days))
    return backend.import_records(records, only_if_empty=True) is not None


def shift_times(record: Any, delta: timedelta) -> Any:
    """A copy of ``record`` (nested frozen dataclasses and tuples) with every time moved."""
    if isinstance(record, datetime):
        return record + delta
    if isinstance(record, tuple):
        return tuple(shift_times(item, delta) for item in record)
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return dataclasses.replace(record, **{
            field.name: shift_times(getattr(record, field.name), delta)
            for field in dataclasses.fields(record) if field.init})
    return record


# ---------------------------------------------------------------- catalogue sync
LOOKUP_HEADER = (
    'version: "3.1"\n'
    "# Product names recognised by the spaCy EntityRuler (entity `product`).\n"
    "# Generated from the catalogue by `make sync-catalogue`; edit the catalogue, not this file.\n"
)


def catalogue_names(backend: ShopBackend) -> List[str]:
    """The catalogue's product names, unique and sorted."""
    return sorted({product.name.strip() for product in backend.list_products()
                   if product.name.strip()})


def render_lookup(names: Sequence[str]) -> str:
    """The Rasa NLU lookup table ``product`` (YAML) listing ``names``."""
    lines = [LOOKUP_HEADER + "nlu:\n- lookup: product\n  examples: |\n"]
    lines.extend(f"    - {name}\n" for name in names)
    return "".join(lines)


def sync_catalogue(backend: ShopBackend, path: Union[str, Path] = LOOKUP_FILE) -> int:
    """Rewrite the product lookup file from the catalogue; returns the number of names.

    Raises ``DataFileError`` when the catalogue is empty (the file is kept).
    """
    names = catalogue_names(backend)
    if not names:
        raise DataFileError(["the catalogue is empty: load a data file first"])
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(render_lookup(names), encoding="utf-8")
    os.replace(temporary, target)
    return len(names)


# ---------------------------------------------------------------- CLI
def _summary(counts: Mapping[str, UpsertCount]) -> str:
    return "\n".join(f"  {kind:<12}{count.total:>5}  ({count.inserted} new, "
                     f"{count.updated} updated)" for kind, count in counts.items())


def _safe_url(url: str) -> str:
    """``url`` with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m actions.backends.loader",
        description="Load a shop data file (JSON) into the database, or sync the "
                    "product lookup table from the catalogue.")
    parser.add_argument("file", nargs="?", type=Path, help="JSON data file to load")
    parser.add_argument("--database-url", default=None,
                        help=f"SQLAlchemy URL (default: ${DATABASE_URL_ENV}, "
                             f"else {DEFAULT_DATABASE_URL})")
    parser.add_argument("--sync-catalogue", action="store_true",
                        help="rewrite the NLU lookup table from the catalogue")
    parser.add_argument("--lookup-file", type=Path, default=LOOKUP_FILE,
                        help="lookup file for --sync-catalogue (default: %(default)s)")
    args = parser.parse_args(argv)
    if (args.file is None) == (not args.sync_catalogue):
        parser.error("give either a data FILE or --sync-catalogue")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parse_args(argv)
    url = args.database_url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
    try:
        backend = SqlBackend(url)
        try:
            if args.sync_catalogue:
                backend.create_schema()
                count = sync_catalogue(backend, args.lookup_file)
                print(f"wrote {count} product names to {args.lookup_file}; "
                      f"retrain the model (make train)")
            else:
                counts = load_data(backend, args.file)
                print(f"loaded {args.file} into {backend.url}:\n{_summary(counts)}")
        finally:
            backend.close()
    except DataFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (BackendError, OSError) as error:
        print(f"error: database {_safe_url(url)}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
