"""Behaviour every ShopBackend must show, on SQLite, PostgreSQL and HTTP.

Each test gets a backend holding only the demo data (demo/shop.json) and a
clock fixed at 2026-11-24 10:00 Shanghai time.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator, List

import pytest
from sqlalchemy.exc import IntegrityError

from actions.backends.base import BackendUnavailable, NotAllowed, NotFound, ShopBackend
from actions.backends.loader import DEMO_FILE
from actions.backends.models import Address
from actions.backends.sql import SqlBackend, shipment_urges
from backend_fixtures import (  # noqa: F401  (postgres_url is a fixture)
    DEMO_AFTER_SALES,
    DEMO_CUSTOMERS,
    DEMO_ORDERS,
    FIXED_NOW,
    backend_kinds,
    free_port,
    make_sqlite_backend,
    open_backend,
    postgres_url,
)

DEMO = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
NEW_ADDRESS = Address(name="张伟", phone="13800138000", region="上海市 徐汇区",
                      detail="漕溪北路 88 号 12 楼")


@pytest.fixture(params=backend_kinds())
def backend_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def backend(backend_kind: str, request: pytest.FixtureRequest,
            tmp_path: Path) -> Iterator[ShopBackend]:
    yield from open_backend(backend_kind, request, tmp_path)


def demo_order(order_id: str) -> dict:
    return next(o for o in DEMO["orders"] if o["id"] == order_id)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------- reads
def test_get_customer(backend: ShopBackend) -> None:
    customer = backend.get_customer("C1004")
    assert customer is not None
    assert (customer.name, customer.phone, customer.tier, customer.points) == (
        "刘洋", "15800158000", "platinum", 12880)
    assert backend.get_customer("C9999") is None


def test_every_tier_has_a_demo_customer(backend: ShopBackend) -> None:
    tiers = {backend.get_customer(cid).tier for cid in DEMO_CUSTOMERS.values()}
    assert tiers == {"normal", "silver", "gold", "platinum"}


def test_get_order_with_items_address_and_shipment(backend: ShopBackend) -> None:
    order = backend.get_order(DEMO_ORDERS["delivered_recent"])
    assert order is not None
    assert order.customer_id == "C1003" and order.status == "delivered"
    assert [(i.sku, i.name, i.qty, i.price) for i in order.items] == [
        ("DJ1001", "羽绒服", 1, Decimal("699.00")), ("HM1001", "保温杯", 1, Decimal("89.00"))]
    assert order.total == Decimal("788.00")
    assert order.address.region == "广东省 广州市 天河区"
    assert order.shipment is not None
    assert (order.shipment.carrier, order.shipment.tracking_number) == ("京东物流",
                                                                        "JDVA20581234567")
    times = [event.time for event in order.shipment.events]
    assert len(times) == 6 and times == sorted(times)
    assert order.shipment.events[-1].description.startswith("您的快件已签收")
    assert order.shipment.latest_events(1)[0] == order.shipment.events[-1]
    assert order.delivered_at == at("2026-11-21T15:20:00+08:00")


def test_order_without_shipment_and_unknown_order(backend: ShopBackend) -> None:
    order = backend.get_order(DEMO_ORDERS["pending_payment"])
    assert order is not None and order.shipment is None
    assert order.paid_at is None and order.shipped_at is None and order.delivered_at is None
    assert backend.get_order("999999999999") is None


def test_address_phone_may_differ_from_customer_phone(backend: ShopBackend) -> None:
    order = backend.get_order(DEMO_ORDERS["other_phone"])
    customer = backend.get_customer(order.customer_id)
    assert order.address.phone == "13511112222" != customer.phone


def test_every_demo_order_round_trips(backend: ShopBackend) -> None:
    for raw in DEMO["orders"]:
        order = backend.get_order(raw["id"])
        assert order.status == raw["status"]
        assert order.total == Decimal(raw["total"])
        assert order.created_at == at(raw["created_at"])
        for name in ("paid_at", "shipped_at", "delivered_at"):
            expected = at(raw[name]) if raw[name] else None
            assert getattr(order, name) == expected, (raw["id"], name)
        assert len(order.items) == len(raw["items"])
        assert (order.shipment is None) == (raw["shipment"] is None)


def test_times_are_aware_and_money_is_decimal(backend: ShopBackend) -> None:
    order = backend.get_order(DEMO_ORDERS["shipped_sf"])
    for moment in (order.created_at, order.paid_at, order.shipped_at,
                   *(e.time for e in order.shipment.events)):
        assert moment.tzinfo is not None and moment.utcoffset() is not None
    # the same instant, whatever offset it is shown in
    assert order.created_at == datetime(2026, 11, 21, 0, 20, tzinfo=timezone.utc)
    assert isinstance(order.total, Decimal) and order.total == Decimal("399.00")
    assert str(order.total) == "399.00"
    product = backend.find_products("数据线")[0]
    assert product.price == Decimal("29.90") and str(product.price) == "29.90"


def test_list_orders_newest_first(backend: ShopBackend) -> None:
    orders = backend.list_orders("C1001", limit=10)
    assert [o.id for o in orders] == [DEMO_ORDERS["pending_payment"], DEMO_ORDERS["shipped_sf"],
                                      DEMO_ORDERS["delivered_recent_2"], DEMO_ORDERS["cancelled"]]
    created = [o.created_at for o in orders]
    assert created == sorted(created, reverse=True)
    assert all(o.items for o in orders)


def test_list_orders_filter_and_limit(backend: ShopBackend) -> None:
    shipped = backend.list_orders("C1001", statuses=["shipped", "delivered"])
    assert [o.status for o in shipped] == ["shipped", "delivered"]
    assert [o.id for o in backend.list_orders("C1001", limit=2)] == [
        DEMO_ORDERS["pending_payment"], DEMO_ORDERS["shipped_sf"]]
    assert len(backend.list_orders("C1004")) == 4
    assert backend.list_orders("C1002", statuses=["cancelled"]) == []
    assert backend.list_orders("C9999") == []


def test_after_sales(backend: ShopBackend) -> None:
    cases = backend.list_after_sales(DEMO_ORDERS["open_after_sale"])
    assert [c.id for c in cases] == [DEMO_AFTER_SALES["open"]]
    case = backend.get_after_sale(DEMO_AFTER_SALES["open"])
    assert case == cases[0]
    assert (case.type, case.status, case.amount, case.is_open) == (
        "return", "pending", Decimal("1299.00"), True)
    assert case.created_at == at("2026-11-21T10:30:00+08:00")
    done = backend.get_after_sale(DEMO_AFTER_SALES["completed"])
    assert (done.type, done.status, done.is_open) == ("refund", "completed", False)
    assert backend.get_after_sale("AS0000") is None
    assert backend.list_after_sales(DEMO_ORDERS["pending_payment"]) == []


def test_after_sales_newest_first(backend: ShopBackend) -> None:
    order_id = DEMO_ORDERS["delivered_old"]  # has a rejected (closed) case
    created, was_created = backend.create_after_sale(order_id, "refund", Decimal("50"), "补差价")
    assert was_created
    assert [c.id for c in backend.list_after_sales(order_id)] == [
        created.id, DEMO_AFTER_SALES["rejected"]]


def test_coupons_include_used_and_expired(backend: ShopBackend) -> None:
    coupons = {c.id: c for c in backend.list_coupons("C1001")}
    assert set(coupons) == {"CP1001", "CP1002"}
    assert coupons["CP1001"].min_spend == Decimal("199.00")
    assert coupons["CP1002"].expires_at < FIXED_NOW
    assert [c.used for c in backend.list_coupons("C1002")] == [True]
    high = {c.id: c for c in backend.list_coupons("C1004")}["CP1004"]
    assert high.min_spend == Decimal("3000.00") and high.amount == Decimal("300.00")
    assert backend.list_coupons("C9999") == []


def test_find_products(backend: ShopBackend) -> None:
    names = [p.name for p in backend.find_products("t恤")]
    assert set(names) == {"T恤", "纯棉T恤"}
    assert [p.name for p in backend.find_products("耳机")] and all(
        "耳机" in p.name for p in backend.find_products("耳机"))
    assert len(backend.find_products("机", limit=2)) == 2
    assert backend.find_products("不存在的商品") == []
    product = backend.find_products("牛仔裤")[0]
    assert product.attributes["size"][0] == "28" and product.stock == 150


def test_list_products(backend: ShopBackend) -> None:
    products = backend.list_products()
    assert len(products) == 35
    assert {p.name for p in products if p.stock == 0} == {"降噪耳机", "破壁机"}


# ---------------------------------------------------------------- cancel
def test_cancel_order_twice(backend: ShopBackend) -> None:
    order, cancelled = backend.cancel_order(DEMO_ORDERS["pending_payment"])
    assert cancelled and order.status == "cancelled"
    order, cancelled = backend.cancel_order(DEMO_ORDERS["pending_payment"])
    assert not cancelled and order.status == "cancelled"
    assert backend.get_order(DEMO_ORDERS["pending_payment"]).status == "cancelled"


def test_cancel_paid_order(backend: ShopBackend) -> None:
    order, cancelled = backend.cancel_order(DEMO_ORDERS["paid_recent"])
    assert cancelled and order.status == "cancelled" and order.items


@pytest.mark.parametrize("purpose", ["shipped_sf", "delivered_recent"])
def test_cancel_shipped_order_not_allowed(backend: ShopBackend, purpose: str) -> None:
    with pytest.raises(NotAllowed) as info:
        backend.cancel_order(DEMO_ORDERS[purpose])
    assert info.value.reason == "already_shipped"
    assert backend.get_order(DEMO_ORDERS[purpose]).status in ("shipped", "delivered")


def test_cancel_unknown_order(backend: ShopBackend) -> None:
    with pytest.raises(NotFound):
        backend.cancel_order("999999999999")


# ---------------------------------------------------------------- after-sales
def test_create_after_sale_once(backend: ShopBackend) -> None:
    order_id = DEMO_ORDERS["delivered_recent"]
    case, created = backend.create_after_sale(order_id, "return", Decimal("699.00"), "尺码不合适")
    assert created
    assert case.id.startswith("AS") and case.id[2:16] == "20261124100000"
    assert (case.order_id, case.type, case.status, case.amount, case.reason) == (
        order_id, "return", "pending", Decimal("699.00"), "尺码不合适")
    assert case.created_at == FIXED_NOW
    again, created_again = backend.create_after_sale(order_id, "refund", Decimal("1"), "再来一次")
    assert not created_again and again == case
    assert backend.list_after_sales(order_id) == [case]
    assert backend.get_after_sale(case.id) == case


def test_existing_open_case_is_returned(backend: ShopBackend) -> None:
    case, created = backend.create_after_sale(DEMO_ORDERS["open_after_sale"], "refund",
                                              Decimal("100.00"), "想仅退款")
    assert not created and case.id == DEMO_AFTER_SALES["open"]
    assert len(backend.list_after_sales(DEMO_ORDERS["open_after_sale"])) == 1


def test_closed_case_does_not_block_a_new_one(backend: ShopBackend) -> None:
    case, created = backend.create_after_sale(DEMO_ORDERS["refund_completed"], "return",
                                              Decimal("198.00"), "过敏")
    assert created and case.id != DEMO_AFTER_SALES["completed"]


def test_after_sale_unknown_order(backend: ShopBackend) -> None:
    with pytest.raises(NotFound):
        backend.create_after_sale("999999999999", "return", Decimal("1.00"), "x")


# ---------------------------------------------------------------- urges
def test_shipment_urge_once_per_day(backend: ShopBackend) -> None:
    order_id = DEMO_ORDERS["paid_overdue"]
    assert backend.record_shipment_urge(order_id, "2026-11-24") is True
    assert backend.record_shipment_urge(order_id, "2026-11-24") is False
    assert backend.record_shipment_urge(order_id, "2026-11-25") is True
    assert backend.record_shipment_urge(DEMO_ORDERS["paid_recent"], "2026-11-24") is True


def test_shipment_urge_unknown_order(backend: ShopBackend) -> None:
    with pytest.raises(NotFound):
        backend.record_shipment_urge("999999999999", "2026-11-24")


# ---------------------------------------------------------------- address
def test_change_address_before_shipping(backend: ShopBackend) -> None:
    order = backend.change_address(DEMO_ORDERS["pending_payment"], NEW_ADDRESS)
    assert order.address == NEW_ADDRESS
    assert backend.get_order(DEMO_ORDERS["pending_payment"]).address == NEW_ADDRESS
    assert backend.change_address(DEMO_ORDERS["pending_payment"], NEW_ADDRESS).address \
        == NEW_ADDRESS
    assert backend.change_address(DEMO_ORDERS["paid_recent"], NEW_ADDRESS).address == NEW_ADDRESS


@pytest.mark.parametrize("purpose, reason", [("shipped_sf", "already_shipped"),
                                             ("delivered_recent", "already_shipped"),
                                             ("cancelled", "cancelled")])
def test_change_address_not_allowed(backend: ShopBackend, purpose: str, reason: str) -> None:
    before = backend.get_order(DEMO_ORDERS[purpose]).address
    with pytest.raises(NotAllowed) as info:
        backend.change_address(DEMO_ORDERS[purpose], NEW_ADDRESS)
    assert info.value.reason == reason
    assert backend.get_order(DEMO_ORDERS[purpose]).address == before


def test_change_address_unknown_order(backend: ShopBackend) -> None:
    with pytest.raises(NotFound):
        backend.change_address("999999999999", NEW_ADDRESS)


# ---------------------------------------------------------------- invoices
def test_invoice_request_idempotent(backend: ShopBackend) -> None:
    order_id = DEMO_ORDERS["delivered_recent"]
    first, created = backend.create_invoice_request(order_id, "广州某某科技有限公司",
                                                    "91440101MA5XXXXXX1", "finance@example.com")
    assert created and first.id.startswith("INV") and first.created_at == FIXED_NOW
    again, created_again = backend.create_invoice_request(
        order_id, "广州某某科技有限公司", "91440101MA5XXXXXX1", "finance@example.com")
    assert not created_again and again == first
    other, created_other = backend.create_invoice_request(order_id, "个人", None, "me@example.com")
    assert created_other and other.id != first.id and other.tax_number is None
    same_personal, created_personal = backend.create_invoice_request(
        order_id, "个人", None, "me@example.com")
    assert not created_personal and same_personal.id == other.id


def test_invoice_unknown_order(backend: ShopBackend) -> None:
    with pytest.raises(NotFound):
        backend.create_invoice_request("999999999999", "个人", None, "me@example.com")


# ---------------------------------------------------------------- concurrency
def run_at_once(count: int, action: Callable[[], object]) -> List[object]:
    """Run ``action`` in ``count`` threads released together; return results or errors."""
    barrier = threading.Barrier(count)
    results: List[object] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = action()
        except Exception as error:  # reported by the assertion below
            results[index] = error

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("threads", [2, 8])
@pytest.mark.parametrize("purpose", ["delivered_recent", "delivered_recent_2",
                                     "delivered_recent_3"])
def test_concurrent_after_sales_create_one_case(backend: ShopBackend, backend_kind: str,
                                                purpose: str, threads: int) -> None:
    if backend_kind == "http":
        pytest.skip("race safety is the SQL layer's guarantee (tested on sqlite/postgresql)")
    order_id = DEMO_ORDERS[purpose]
    results = run_at_once(threads, lambda: backend.create_after_sale(
        order_id, "return", Decimal("10.00"), "并发测试"))
    assert all(isinstance(r, tuple) for r in results), results
    assert sorted(created for _, created in results) == [False] * (threads - 1) + [True]
    assert len({case.id for case, _ in results}) == 1
    assert len(backend.list_after_sales(order_id)) == 1


@pytest.mark.parametrize("threads", [2, 8])
def test_concurrent_urges_record_one(backend: ShopBackend, backend_kind: str,
                                     threads: int) -> None:
    if backend_kind == "http":
        pytest.skip("race safety is the SQL layer's guarantee (tested on sqlite/postgresql)")
    results = run_at_once(threads, lambda: backend.record_shipment_urge(
        DEMO_ORDERS["paid_overdue"], "2026-11-24"))
    assert sorted(results) == [False] * (threads - 1) + [True], results


def test_urge_unique_constraint(tmp_path: Path) -> None:
    backend = make_sqlite_backend(tmp_path)
    row = {"order_id": DEMO_ORDERS["paid_overdue"], "day": "2026-11-24", "created_at": FIXED_NOW}
    with backend._engine.begin() as conn:  # white-box: the constraint itself
        conn.execute(shipment_urges.insert().values(**row))
    with pytest.raises(IntegrityError), backend._engine.begin() as conn:
        conn.execute(shipment_urges.insert().values(**row))
    assert backend.record_shipment_urge(DEMO_ORDERS["paid_overdue"], "2026-11-24") is False
    backend.close()


# ---------------------------------------------------------------- failures
def test_unreachable_postgres_raises_backend_unavailable() -> None:
    port = free_port()  # nothing listens there
    backend = SqlBackend(f"postgresql+psycopg2://kefu@127.0.0.1:{port}/kefu?connect_timeout=2")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        backend.get_order(DEMO_ORDERS["paid_recent"])
    assert time.monotonic() - started < 5
    assert "127.0.0.1" not in str(info.value) and "SELECT" not in str(info.value)
    with pytest.raises(BackendUnavailable):
        backend.cancel_order(DEMO_ORDERS["paid_recent"])
    with pytest.raises(BackendUnavailable):
        backend.create_schema()


def test_missing_tables_raise_backend_unavailable(tmp_path: Path) -> None:
    backend = SqlBackend(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(BackendUnavailable) as info:
        backend.get_customer("C1001")
    assert "customers" not in str(info.value)


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    backend = SqlBackend(f"sqlite:///{tmp_path / 'settings.db'}")
    with backend._engine.connect() as conn:  # white-box: pragmas of a pooled connection
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_relative_sqlite_path_is_under_the_project_root() -> None:
    backend = SqlBackend("sqlite:///var/kefu-test-path.db")
    expected = Path(__file__).resolve().parents[1] / "var" / "kefu-test-path.db"
    assert backend.url == f"sqlite:///{expected}"
    backend.close()
