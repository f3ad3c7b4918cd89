"""``ShopBackend`` on SQLAlchemy 1.4 Core: embedded SQLite or any server database.

Times are stored as naive UTC and read back timezone-aware in the shop's time
zone (Asia/Shanghai); money is ``NUMERIC(12, 2)`` read as ``Decimal``;
product attributes are JSON text. Every public method runs in one
transaction. Writes lock what they check: SQLite write transactions start
with ``BEGIN IMMEDIATE`` (one writer at a time), on server databases the
order row is locked with ``SELECT ... FOR UPDATE``. Any database failure is
raised as ``BackendUnavailable``; SQL errors never leave this module.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.engine.url import URL, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from actions.backends.base import BackendUnavailable, NotAllowed, NotFound, ShopBackend
from actions.backends.models import (
    AFTER_SALE_TYPES,
    OPEN_AFTER_SALE_STATUSES,
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

try:
    from zoneinfo import ZoneInfo

    SHOP_TZ: Any = ZoneInfo("Asia/Shanghai")
except Exception:  # no tz database: China has had no DST since 1991
    SHOP_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = "sqlite:///var/kefu.db"
SQLITE_BUSY_TIMEOUT_S = 10
PG_CONNECT_TIMEOUT_S = 5
PG_STATEMENT_TIMEOUT_MS = 15000
CANCELLABLE = ("pending_payment", "paid")
SHIPPED = ("shipped", "delivered")
_WRITE_OPTION = "kefu_write"
_BULK_LOCK_KEY = 0x6B656675  # "kefu": PostgreSQL advisory lock for schema and imports
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CENT = Decimal("0.01")


# ---------------------------------------------------------------- column types
class AwareDateTime(TypeDecorator):
    """Aware ``datetime`` stored as naive UTC, read back in ``SHOP_TZ``."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: a UTC offset is required")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc).astimezone(SHOP_TZ)


def to_money(value: Any) -> Decimal:
    """``value`` as a ``Decimal`` rounded to cents (floats via their repr)."""
    if isinstance(value, float):
        value = repr(value)
    return Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP)


class Money(TypeDecorator):
    """``NUMERIC(12, 2)`` as ``Decimal``; SQLite (no native decimal) goes via float."""

    impl = sa.Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        native = dialect.name != "sqlite"
        return dialect.type_descriptor(sa.Numeric(12, 2, asdecimal=native))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        money = to_money(value)
        return money if dialect.name != "sqlite" else float(money)

    def process_result_value(self, value: Any, dialect: Any) -> Optional[Decimal]:
        return None if value is None else to_money(value)


class JsonText(TypeDecorator):
    """A JSON value stored as text."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str:
        return json.dumps(value if value is not None else {}, ensure_ascii=False)

    def process_result_value(self, value: Optional[str], dialect: Any) -> Any:
        return json.loads(value) if value else {}


# ---------------------------------------------------------------- schema
METADATA = sa.MetaData()


def _id(name: str = "id", **kwargs: Any) -> sa.Column:
    return sa.Column(name, sa.String(64), **kwargs)


def _fk(name: str, target: str, **kwargs: Any) -> sa.Column:
    return sa.Column(name, sa.String(64), sa.ForeignKey(target, ondelete="CASCADE"),
                     nullable=False, **kwargs)


def _text(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=nullable)


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, AwareDateTime, nullable=nullable)


def _money(name: str) -> sa.Column:
    return sa.Column(name, Money, nullable=False)


customers = sa.Table(
    "customers", METADATA,
    _id(primary_key=True), _text("name"),
    sa.Column("phone", sa.String(32), nullable=False, index=True),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
)
products = sa.Table(
    "products", METADATA,
    _id("sku", primary_key=True), _text("name"), _text("category"), _money("price"),
    sa.Column("stock", sa.Integer, nullable=False),
    sa.Column("attributes", JsonText, nullable=False),
)
orders = sa.Table(
    "orders", METADATA,
    _id(primary_key=True),
    sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    _time("created_at"), _time("paid_at", True), _time("shipped_at", True),
    _time("delivered_at", True), _money("total"),
    _text("address_name"), _text("address_phone"), _text("address_region"),
    _text("address_detail"),
    sa.Index("ix_orders_customer_created", "customer_id", "created_at"),
)
order_items = sa.Table(
    "order_items", METADATA,
    _fk("order_id", "orders.id", primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("sku", sa.String(64), nullable=False), _text("name"),
    sa.Column("qty", sa.Integer, nullable=False), _money("price"),
)
shipments = sa.Table(
    "shipments", METADATA,
    _fk("order_id", "orders.id", primary_key=True), _text("carrier"), _text("tracking_number"),
)
shipment_events = sa.Table(
    "shipment_events", METADATA,
    _fk("order_id", "shipments.order_id", primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    _time("time"), _text("location"), _text("description"),
)
after_sales = sa.Table(
    "after_sales", METADATA,
    _id(primary_key=True), _fk("order_id", "orders.id", index=True),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    _money("amount"), _text("reason"), _time("created_at"),
)
coupons = sa.Table(
    "coupons", METADATA,
    _id(primary_key=True), _fk("customer_id", "customers.id", index=True), _text("title"),
    _money("amount"), _money("min_spend"), _time("expires_at"),
    sa.Column("used", sa.Boolean, nullable=False),
)
invoice_requests = sa.Table(
    "invoice_requests", METADATA,
    _id(primary_key=True), _fk("order_id", "orders.id", index=True), _text("title"),
    _text("tax_number", nullable=True), _text("email"), _time("created_at"),
)
shipment_urges = sa.Table(
    "shipment_urges", METADATA,
    _fk("order_id", "orders.id"),
    sa.Column("day", sa.String(10), nullable=False),
    _time("created_at"),
    sa.UniqueConstraint("order_id", "day", name="uq_shipment_urges_order_day"),
)


# ---------------------------------------------------------------- records
@dataclass(frozen=True)
class UpsertCount:
    """How many records of one kind an import inserted and updated."""

    inserted: int = 0
    updated: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated


@dataclass(frozen=True)
class ShopRecords:
    """Validated records to import, in dependency order."""

    customers: Tuple[Customer, ...] = ()
    products: Tuple[Product, ...] = ()
    orders: Tuple[Order, ...] = ()
    after_sales: Tuple[AfterSale, ...] = ()
    coupons: Tuple[Coupon, ...] = ()

    def counts(self) -> Dict[str, int]:
        """Number of records per kind."""
        return {name: len(getattr(self, name)) for name in RECORD_KINDS}


RECORD_KINDS = ("customers", "products", "orders", "after_sales", "coupons")


def _values(record: Any) -> Dict[str, Any]:
    """A flat record's fields as column values."""
    return dict(vars(record))


def _customer(row: Row) -> Customer:
    return Customer(id=row.id, name=row.name, phone=row.phone, tier=row.tier, points=row.points)


def _product(row: Row) -> Product:
    return Product(sku=row.sku, name=row.name, category=row.category, price=row.price,
                   stock=row.stock, attributes=dict(row.attributes or {}))


def _after_sale(row: Row) -> AfterSale:
    return AfterSale(id=row.id, order_id=row.order_id, type=row.type, status=row.status,
                     amount=row.amount, reason=row.reason, created_at=row.created_at)


def _coupon(row: Row) -> Coupon:
    return Coupon(id=row.id, customer_id=row.customer_id, title=row.title, amount=row.amount,
                  min_spend=row.min_spend, expires_at=row.expires_at, used=bool(row.used))


def _invoice(row: Row) -> InvoiceRequest:
    return InvoiceRequest(id=row.id, order_id=row.order_id, title=row.title,
                          tax_number=row.tax_number, email=row.email, created_at=row.created_at)


def _address_values(address: Address) -> Dict[str, str]:
    return {"address_name": address.name, "address_phone": address.phone,
            "address_region": address.region, "address_detail": address.detail}


def _order_values(order: Order) -> Dict[str, Any]:
    return {"id": order.id, "customer_id": order.customer_id, "status": order.status,
            "created_at": order.created_at, "paid_at": order.paid_at,
            "shipped_at": order.shipped_at, "delivered_at": order.delivered_at,
            "total": order.total, **_address_values(order.address)}


def _chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# ---------------------------------------------------------------- engines
def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Manual transactions, foreign keys, busy timeout, WAL, Unicode ``lower()``."""
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN
    dbapi_connection.create_function(
        "lower", 1, lambda s: s.lower() if isinstance(s, str) else s, deterministic=True)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
    tune_sqlite_connection(dbapi_connection)


def tune_sqlite_connection(dbapi_connection: Any,
                           busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S) -> None:
    """Busy timeout, WAL and ``synchronous = NORMAL`` on a new SQLite connection."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        _enable_wal(cursor, busy_timeout_s)
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _enable_wal(cursor: Any, timeout_s: float) -> None:
    """Switch the file to WAL, retrying while another connection holds a lock.

    SQLite does not call its busy handler for a journal-mode change, so several
    processes opening a new database at once would otherwise fail with
    "database is locked".
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _sqlite_on_begin(connection: Connection) -> None:
    """``BEGIN IMMEDIATE`` for writes (take the write lock first), else ``BEGIN``."""
    write = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def resolve_sqlite_url(url: URL) -> URL:
    """Make a relative SQLite path absolute (under the project root); create its directory."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return url
    path = Path(database)
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackendUnavailable(f"cannot create the directory of {path}: {error}") from error
    return url.set(database=str(path))


def _sqlite_engine(url: URL) -> Engine:
    url = resolve_sqlite_url(url)
    kwargs: Dict[str, Any] = {
        "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}}
    if not url.database or url.database == ":memory:":
        kwargs["poolclass"] = StaticPool  # one shared in-memory database, single-threaded use
    engine = sa.create_engine(url, future=True, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _server_engine(url: URL) -> Engine:
    connect_args: Dict[str, Any] = {}
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg2":
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        if "options" not in url.query:
            connect_args["options"] = f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"
    return sa.create_engine(url, future=True, pool_pre_ping=True, pool_timeout=10,
                            connect_args=connect_args)


def create_engine(url: str) -> Engine:
    """An engine for ``url`` with Kefu's connection settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return _server_engine(parsed)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- backend
class SqlBackend(ShopBackend):
    """The shop's data in an SQL database (SQLite file by default)."""

    def __init__(self, url: str = DEFAULT_DATABASE_URL,
                 clock: Optional[Callable[[], datetime]] = None) -> None:
        try:
            self._engine = create_engine(url)
        except (exc.ArgumentError, ImportError) as error:
            raise BackendUnavailable(f"bad database URL: {error}") from error
        self._clock = clock or _utc_now
        self.dialect = self._engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close all pooled connections."""
        self._engine.dispose()

    # ---- plumbing
    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now

    def _new_id(self, prefix: str) -> str:
        """``prefix`` + local time (14 digits) + 6 random digits."""
        stamp = self._now().astimezone(SHOP_TZ).strftime("%Y%m%d%H%M%S")
        return f"{prefix}{stamp}{secrets.randbelow(10 ** 6):06d}"

    @contextmanager
    def _transaction(self, write: bool = False,
                     passthrough: Tuple[type, ...] = ()) -> Iterator[Connection]:
        """One transaction; database errors become ``BackendUnavailable``."""
        try:
            with self._engine.connect() as conn:
                if write:
                    conn = conn.execution_options(**{_WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except passthrough:
            raise
        except exc.SQLAlchemyError as error:
            cause = getattr(error, "orig", None) or error
            logger.warning("database error (%s): %s", type(error).__name__, cause)
            raise BackendUnavailable(f"database unavailable ({type(error).__name__})") from error

    def _lock_for_bulk_write(self, conn: Connection) -> None:
        """Serialise schema creation and imports across processes (SQLite: BEGIN IMMEDIATE)."""
        if self.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_BULK_LOCK_KEY)))

    def create_schema(self) -> None:
        """Create the tables that do not exist yet (safe to run concurrently)."""
        with self._transaction(write=True) as conn:
            self._lock_for_bulk_write(conn)
            METADATA.create_all(conn, checkfirst=True)

    def count_rows(self) -> Dict[str, int]:
        """Number of rows of every table."""
        with self._transaction() as conn:
            return {table.name: conn.execute(sa.select(sa.func.count()).select_from(table))
                    .scalar_one() for table in METADATA.sorted_tables}

    # ---- reads
    def get_customer(self, customer_id: str) -> Optional[Customer]:
        with self._transaction() as conn:
            row = conn.execute(customers.select().where(customers.c.id == customer_id)).first()
        return _customer(row) if row else None

    def get_order(self, order_id: str) -> Optional[Order]:
        with self._transaction() as conn:
            return self._read_order(conn, order_id)

    def list_orders(self, customer_id: str, statuses: Optional[Sequence[str]] = None,
                    limit: int = 5) -> List[Order]:
        if limit <= 0 or (statuses is not None and not statuses):
            return []
        query = orders.select().where(orders.c.customer_id == customer_id)
        if statuses is not None:
            query = query.where(orders.c.status.in_(list(statuses)))
        query = query.order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(limit)
        with self._transaction() as conn:
            return self._orders_from_rows(conn, conn.execute(query).all())

    def list_after_sales(self, order_id: str) -> List[AfterSale]:
        query = (after_sales.select().where(after_sales.c.order_id == order_id)
                 .order_by(after_sales.c.created_at.desc(), after_sales.c.id.desc()))
        with self._transaction() as conn:
            return [_after_sale(row) for row in conn.execute(query)]

    def get_after_sale(self, case_id: str) -> Optional[AfterSale]:
        with self._transaction() as conn:
            row = conn.execute(after_sales.select().where(after_sales.c.id == case_id)).first()
        return _after_sale(row) if row else None

    def list_coupons(self, customer_id: str) -> List[Coupon]:
        query = (coupons.select().where(coupons.c.customer_id == customer_id)
                 .order_by(coupons.c.expires_at, coupons.c.id))
        with self._transaction() as conn:
            return [_coupon(row) for row in conn.execute(query)]

    def find_products(self, query: str, limit: int = 5) -> List[Product]:
        needle = (query or "").strip().lower()
        if not needle or limit <= 0:
            return []
        name = products.c.name
        stmt = (products.select().where(sa.func.lower(name).contains(needle, autoescape=True))
                .order_by(sa.func.length(name), name, products.c.sku).limit(limit))
        with self._transaction() as conn:
            return [_product(row) for row in conn.execute(stmt)]

    def list_products(self) -> List[Product]:
        with self._transaction() as conn:
            return [_product(row) for row in conn.execute(products.select().order_by(
                products.c.sku))]

    # ---- order assembly
    def _read_order(self, conn: Connection, order_id: str) -> Optional[Order]:
        row = conn.execute(orders.select().where(orders.c.id == order_id)).first()
        return self._orders_from_rows(conn, [row])[0] if row else None

    def _orders_from_rows(self, conn: Connection, rows: Sequence[Row]) -> List[Order]:
        """Orders with their items and shipments (three queries, any number of orders)."""
        ids = [row.id for row in rows]
        if not ids:
            return []
        items: Dict[str, List[OrderItem]] = {order_id: [] for order_id in ids}
        for item in conn.execute(order_items.select().where(order_items.c.order_id.in_(ids))
                                 .order_by(order_items.c.order_id, order_items.c.position)):
            items[item.order_id].append(
                OrderItem(sku=item.sku, name=item.name, qty=item.qty, price=item.price))
        events: Dict[str, List[ShipmentEvent]] = {order_id: [] for order_id in ids}
        ev = shipment_events.c
        for event_row in conn.execute(shipment_events.select().where(ev.order_id.in_(ids))
                                      .order_by(ev.order_id, ev.time, ev.position)):
            events[event_row.order_id].append(ShipmentEvent(
                time=event_row.time, location=event_row.location,
                description=event_row.description))
        ships = {s.order_id: Shipment(carrier=s.carrier, tracking_number=s.tracking_number,
                                      events=tuple(events[s.order_id]))
                 for s in conn.execute(shipments.select().where(shipments.c.order_id.in_(ids)))}
        return [self._order(row, items[row.id], ships.get(row.id)) for row in rows]

    @staticmethod
    def _order(row: Row, items: List[OrderItem], shipment: Optional[Shipment]) -> Order:
        address = Address(name=row.address_name, phone=row.address_phone,
                          region=row.address_region, detail=row.address_detail)
        return Order(id=row.id, customer_id=row.customer_id, status=row.status,
                     created_at=row.created_at, total=row.total, items=tuple(items),
                     address=address, paid_at=row.paid_at, shipped_at=row.shipped_at,
                     delivered_at=row.delivered_at, shipment=shipment)

    @staticmethod
    def _lock_order(conn: Connection, order_id: str) -> Row:
        """The order row, locked until commit (SQLite: the write transaction locks)."""
        row = conn.execute(orders.select().where(orders.c.id == order_id)
                           .with_for_update()).first()
        if row is None:
            raise NotFound(f"order {order_id} not found")
        return row

    # ---- writes
    def cancel_order(self, order_id: str) -> Tuple[Order, bool]:
        with self._transaction(write=True) as conn:
            row = self._lock_order(conn, order_id)
            if row.status == "cancelled":
                return self._read_order(conn, order_id), False
            if row.status not in CANCELLABLE:
                raise NotAllowed("already_shipped", f"order {order_id} is {row.status}")
            conn.execute(orders.update().where(orders.c.id == order_id)
                         .values(status="cancelled"))
            return self._read_order(conn, order_id), True

    def record_shipment_urge(self, order_id: str, day: str) -> bool:
        if not _DAY.match(day or ""):
            raise ValueError(f"day must be YYYY-MM-DD, got {day!r}")
        urge = shipment_urges.c
        try:
            with self._transaction(write=True, passthrough=(exc.IntegrityError,)) as conn:
                if conn.execute(sa.select(orders.c.id).where(orders.c.id == order_id)).first() \
                        is None:
                    raise NotFound(f"order {order_id} not found")
                if conn.execute(sa.select(urge.day).where(urge.order_id == order_id,
                                                          urge.day == day)).first():
                    return False
                conn.execute(shipment_urges.insert().values(
                    order_id=order_id, day=day, created_at=self._now()))
        except exc.IntegrityError:  # a concurrent urge won: uq_shipment_urges_order_day
            return False
        return True

    def create_after_sale(self, order_id: str, case_type: str, amount: Decimal,
                          reason: str) -> Tuple[AfterSale, bool]:
        if case_type not in AFTER_SALE_TYPES:
            raise ValueError(f"case_type must be one of {', '.join(AFTER_SALE_TYPES)}")
        with self._transaction(write=True) as conn:
            self._lock_order(conn, order_id)
            existing = conn.execute(
                after_sales.select()
                .where(after_sales.c.order_id == order_id,
                       after_sales.c.status.in_(OPEN_AFTER_SALE_STATUSES))
                .order_by(after_sales.c.created_at.desc(), after_sales.c.id.desc())).first()
            if existing is not None:
                return _after_sale(existing), False
            case = AfterSale(id=self._new_id("AS"), order_id=order_id, type=case_type,
                             status="pending", amount=to_money(amount), reason=reason,
                             created_at=self._now())
            conn.execute(after_sales.insert().values(**_values(case)))
        return case, True

    def change_address(self, order_id: str, address: Address) -> Order:
        with self._transaction(write=True) as conn:
            row = self._lock_order(conn, order_id)
            if row.status in SHIPPED:
                raise NotAllowed("already_shipped", f"order {order_id} is {row.status}")
            if row.status == "cancelled":
                raise NotAllowed("cancelled", f"order {order_id} is cancelled")
            conn.execute(orders.update().where(orders.c.id == order_id)
                         .values(**_address_values(address)))
            return self._read_order(conn, order_id)

    def create_invoice_request(self, order_id: str, title: str, tax_number: Optional[str],
                               email: str) -> Tuple[InvoiceRequest, bool]:
        tax_number = tax_number or None
        c = invoice_requests.c
        same_tax = c.tax_number.is_(None) if tax_number is None else c.tax_number == tax_number
        with self._transaction(write=True) as conn:
            self._lock_order(conn, order_id)
            existing = conn.execute(
                invoice_requests.select()
                .where(c.order_id == order_id, c.title == title, c.email == email, same_tax)
                .order_by(c.created_at, c.id)).first()
            if existing is not None:
                return _invoice(existing), False
            request = InvoiceRequest(id=self._new_id("INV"), order_id=order_id, title=title,
                                     tax_number=tax_number, email=email, created_at=self._now())
            conn.execute(invoice_requests.insert().values(**_values(request)))
        return request, True

    # ---- bulk import (used by actions.backends.loader)
    def import_records(self, records: ShopRecords,
                       only_if_empty: bool = False) -> Optional[Dict[str, UpsertCount]]:
        """Insert or update ``records`` by id in ONE transaction.

        An order's items and shipment (with its events) are replaced by the
        given ones. Records must be valid (the loader validates them). With
        ``only_if_empty``, nothing is written (``None`` returned) when the
        customers table has rows.
        """
        with self._transaction(write=True) as conn:
            self._lock_for_bulk_write(conn)
            if only_if_empty and conn.execute(sa.select(customers.c.id).limit(1)).first():
                return None
            counts = {
                "customers": _upsert(conn, customers, "id", map(_values, records.customers)),
                "products": _upsert(conn, products, "sku", map(_values, records.products)),
                "orders": _upsert(conn, orders, "id", map(_order_values, records.orders)),
                "after_sales": _upsert(conn, after_sales, "id", map(_values, records.after_sales)),
                "coupons": _upsert(conn, coupons, "id", map(_values, records.coupons)),
            }
            _replace_order_children(conn, list(records.orders))
        return counts


def _upsert(conn: Connection, table: sa.Table, key: str,
            values: Iterable[Dict[str, Any]]) -> UpsertCount:
    """Insert the rows whose ``key`` is new, update the others."""
    rows = list(values)
    if not rows:
        return UpsertCount()
    column = table.c[key]
    existing = set()
    for chunk in _chunks([row[key] for row in rows]):
        existing.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
    new = [row for row in rows if row[key] not in existing]
    old = [{**{k: v for k, v in row.items() if k != key}, "_key": row[key]}
           for row in rows if row[key] in existing]
    if new:
        conn.execute(table.insert(), new)
    if old:
        conn.execute(table.update().where(column == sa.bindparam("_key")), old)
    return UpsertCount(inserted=len(new), updated=len(old))


def _replace_order_children(conn: Connection, order_list: List[Order]) -> None:
    """Replace the items, shipments and shipment events of these orders."""
    ids = [order.id for order in order_list]
    for chunk in _chunks(ids):
        for table in (shipment_events, shipments, order_items):
            conn.execute(table.delete().where(table.c.order_id.in_(chunk)))
    items = [{"order_id": o.id, "position": n, "sku": i.sku, "name": i.name, "qty": i.qty,
              "price": i.price} for o in order_list for n, i in enumerate(o.items)]
    ships = [{"order_id": o.id, "carrier": o.shipment.carrier,
              "tracking_number": o.shipment.tracking_number}
             for o in order_list if o.shipment is not None]
    events = [{"order_id": o.id, "position": n, "time": e.time, "location": e.location,
               "description": e.description}
              for o in order_list if o.shipment is not None
              for n, e in enumerate(sorted(o.shipment.events, key=lambda e: e.time))]
    for table, rows in ((order_items, items), (shipments, ships), (shipment_events, events)):
        if rows:
            conn.execute(table.insert(), rows)
