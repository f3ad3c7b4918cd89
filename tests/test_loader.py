"""The JSON data loader: validation, upserts, CLI, catalogue sync, demo seeding."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

from actions.backends.loader import (
    DEMO_DAY,
    DEMO_FILE,
    LOOKUP_FILE,
    DataFileError,
    ensure_demo_data,
    load_data,
    read_data_file,
    render_lookup,
    sync_catalogue,
    validate_data,
)
from actions.backends.sql import SqlBackend
from backend_fixtures import (  # noqa: F401  (postgres_url is a fixture)
    DEMO_ORDERS,
    make_postgres_backend,
    make_sqlite_backend,
    postgres_server,
    postgres_url,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO: Dict[str, Any] = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
DEMO_COUNTS = {"customers": 5, "products": 35, "orders": 16, "after_sales": 3, "coupons": 6,
               "order_items": 19, "shipments": 10, "shipment_events": 41,
               "invoice_requests": 0, "shipment_urges": 0}


def demo() -> Dict[str, Any]:
    """A deep copy of the demo data to modify."""
    return copy.deepcopy(DEMO)


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SqlBackend]:
    backend = make_sqlite_backend(tmp_path)
    yield backend
    backend.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlBackend]:
    if request.param == "sqlite":
        backend = make_sqlite_backend(tmp_path)
    else:
        backend = make_postgres_backend(request.getfixturevalue("postgres_url"))
    yield backend
    backend.close()


# ---------------------------------------------------------------- valid data
def test_demo_file_loads_into_an_empty_database(tmp_path: Path) -> None:
    backend = SqlBackend(f"sqlite:///{tmp_path / 'new.db'}")
    counts = load_data(backend, DEMO_FILE)
    assert {kind: c.inserted for kind, c in counts.items()} == {
        kind: DEMO_COUNTS[kind] for kind in counts}
    assert all(c.updated == 0 for c in counts.values())
    assert backend.count_rows() == DEMO_COUNTS


def test_load_twice_and_change_a_field(any_sql_backend: SqlBackend, tmp_path: Path) -> None:
    counts = load_data(any_sql_backend, DEMO_FILE)
    assert all(c.inserted == 0 for c in counts.values())
    assert any_sql_backend.count_rows() == DEMO_COUNTS
    data = demo()
    data["customers"][0]["name"] = "张伟伟"
    data["products"][0]["price"] = "69.00"
    data["coupons"][0]["used"] = True
    load_data(any_sql_backend, write_json(tmp_path / "changed.json", data))
    assert any_sql_backend.count_rows() == DEMO_COUNTS
    assert any_sql_backend.get_customer("C1001").name == "张伟伟"
    assert any_sql_backend.find_products("纯棉T恤")[0].price == Decimal("69.00")
    assert {c.id: c.used for c in any_sql_backend.list_coupons("C1001")}["CP1001"] is True


def test_order_items_and_events_are_replaced(backend: SqlBackend) -> None:
    data = {"orders": [o for o in demo()["orders"] if o["id"] == DEMO_ORDERS["paid_overdue"]
                       or o["id"] == DEMO_ORDERS["delivered_recent"]]}
    paid, delivered = data["orders"]
    paid["items"] = paid["items"][:1]
    paid["total"] = "299.00"
    delivered["shipment"]["events"] = delivered["shipment"]["events"][-2:]
    load_data(backend, data)
    rows = backend.count_rows()
    assert rows["order_items"] == DEMO_COUNTS["order_items"] - 1
    assert rows["shipment_events"] == DEMO_COUNTS["shipment_events"] - 4
    assert len(backend.get_order(DEMO_ORDERS["paid_overdue"]).items) == 1
    assert len(backend.get_order(DEMO_ORDERS["delivered_recent"]).shipment.events) == 2


def test_references_may_point_into_the_database(backend: SqlBackend) -> None:
    order = copy.deepcopy(DEMO["orders"][0])
    order["id"] = "202611241111119999"
    case = {"id": "AS-NEW-1", "order_id": DEMO_ORDERS["delivered_recent"], "type": "refund",
            "status": "completed", "amount": "10.00", "reason": "", "created_at":
            "2026-11-22T10:00:00+08:00"}
    coupon = dict(DEMO["coupons"][0], id="CP-NEW-1", customer_id="C1005")
    counts = load_data(backend, {"orders": [order], "after_sales": [case], "coupons": [coupon]})
    assert counts["orders"].inserted == counts["after_sales"].inserted == 1
    assert backend.get_order("202611241111119999").customer_id == "C1001"


def test_numbers_and_utc_times_are_accepted(backend: SqlBackend) -> None:
    product = dict(DEMO["products"][0], sku="NEW-1", name="测试商品", price=12.5, stock=3)
    coupon = dict(DEMO["coupons"][0], id="CP-Z", amount=5, expires_at="2026-12-31T15:59:59Z")
    load_data(backend, {"products": [product], "coupons": [coupon]})
    assert backend.find_products("测试商品")[0].price == Decimal("12.50")
    stored = {c.id: c for c in backend.list_coupons("C1001")}["CP-Z"]
    assert stored.amount == Decimal("5.00")
    assert stored.expires_at.isoformat() == "2026-12-31T23:59:59+08:00"


def test_validate_without_database_needs_references_in_the_file() -> None:
    assert validate_data(DEMO).counts()["orders"] == 16
    with pytest.raises(DataFileError, match=r'orders\[0\].*customer_id "C1001" is not in the file'):
        validate_data({"orders": [DEMO["orders"][0]]})


# ---------------------------------------------------------------- invalid data
def set_field(section: str, index: int, **changes: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data[section][index].update(changes)
    return change


def set_nested(section: str, index: int, path: str, value: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        target = data[section][index]
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if isinstance(target, list) else last] = value
    return change


def delete_field(section: str, index: int, name: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        del data[section][index][name]
    return change


def append(section: str, record: dict) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data.setdefault(section, []).append(record)
    return change


O = "orders[{}] (id {})"
SF = O.format(3, DEMO_ORDERS["shipped_sf"])
PAID = O.format(1, DEMO_ORDERS["paid_recent"])
PENDING = O.format(0, DEMO_ORDERS["pending_payment"])
DELIVERED = O.format(6, DEMO_ORDERS["delivered_recent"])
C0 = "customers[0] (id C1001)"
P0 = "products[0] (sku TS1001)"
OPEN_CASE = dict(DEMO["after_sales"][0], id="AS-SECOND")

INVALID = {
    "status_enum": (set_field("orders", 3, status="sent"),
                    f'{SF}: status "sent" is not one of pending_payment, paid, shipped'),
    "order_id_short": (set_field("orders", 0, id="12345"),
                       'orders[0] (id 12345): id "12345" must be a string of 12 to 20 digits'),
    "order_id_letters": (set_field("orders", 0, id="2026112409300010AB"),
                         "must be a string of 12 to 20 digits"),
    "order_id_number": (set_field("orders", 0, id=202611240930001001),
                        "orders[0]: id must be a string"),
    "phone_short": (set_field("customers", 0, phone="1380013800"),
                    f'{C0}: phone "1380013800" is not an 11-digit mainland mobile number'),
    "phone_prefix": (set_field("customers", 0, phone="12800138000"), f"{C0}: phone"),
    "address_phone": (set_nested("orders", 1, "address.phone", "021-12345678"),
                      f"{PAID}: address.phone"),
    "tier": (set_field("customers", 0, tier="diamond"),
             f'{C0}: tier "diamond" is not one of normal, silver, gold, platinum'),
    "naive_time": (set_field("orders", 0, created_at="2026-11-24T09:30:00"),
                   f"{PENDING}: created_at \"2026-11-24T09:30:00\" has no UTC offset"),
    "date_only": (set_field("orders", 0, created_at="2026-11-24"),
                  f"{PENDING}: created_at must be an ISO 8601 time"),
    "bad_time": (set_field("coupons", 0, expires_at="下个月"),
                 'coupons[0] (id CP1001): expires_at must be an ISO 8601 time'),
    "null_created": (set_field("orders", 0, created_at=None),
                     f"{PENDING}: created_at must not be null"),
    "paid_before_created": (set_field("orders", 1, paid_at="2026-11-22T14:16:00+08:00"),
                            f"{PAID}: paid_at is earlier than created_at"),
    "delivered_before_shipped": (
        set_field("orders", 6, delivered_at="2026-11-19T08:00:00+08:00"),
        f"{DELIVERED}: delivered_at is earlier than shipped_at"),
    "event_before_created": (
        set_nested("orders", 6, "shipment.events.0.time", "2026-11-01T08:00:00+08:00"),
        f"{DELIVERED}: a shipment event is earlier than created_at"),
    "shipped_needs_shipment": (set_field("orders", 3, shipment=None),
                               f"{SF}: status shipped needs a shipment"),
    "paid_without_paid_at": (set_field("orders", 1, paid_at=None),
                             f"{PAID}: status paid needs paid_at"),
    "delivered_needs_time": (set_field("orders", 6, delivered_at=None),
                             f"{DELIVERED}: status delivered needs delivered_at"),
    "pending_with_paid_at": (set_field("orders", 0, paid_at="2026-11-24T09:31:00+08:00"),
                             f"{PENDING}: status pending_payment must not have paid_at"),
    "paid_with_shipment": (set_field("orders", 1, shipment=DEMO["orders"][3]["shipment"]),
                           f"{PAID}: status paid must not have a shipment"),
    "order_customer_ref": (set_field("orders", 0, customer_id="C9999"),
                           f'{PENDING}: customer_id "C9999" is not in the file or the database'),
    "after_sale_order_ref": (set_field("after_sales", 0, order_id="999999999999"),
                             'after_sales[0] (id AS20261121103000482913): order_id '
                             '"999999999999" is not in the file or the database'),
    "coupon_customer_ref": (set_field("coupons", 2, customer_id="C9999"),
                            'coupons[2] (id CP1003): customer_id "C9999" is not in'),
    "after_sale_type": (set_field("after_sales", 1, type="swap"),
                        'after_sales[1] (id AS20261114091500731846): type "swap" is not one of'),
    "after_sale_status": (set_field("after_sales", 1, status="open"), 'status "open"'),
    "after_sale_amount": (set_field("after_sales", 1, amount="1000.00"),
                          "amount 1000.00 exceeds the order total 297.00"),
    "after_sale_before_order": (set_field("after_sales", 1, created_at="2026-11-01T00:00:00Z"),
                                "created_at is earlier than the order's created_at"),
    "two_open_cases": (append("after_sales", OPEN_CASE),
                       "after_sales[3] (id AS-SECOND): order 202611160930009009 would have "
                       "more than one open after-sales case"),
    "duplicate_order": (append("orders", DEMO["orders"][0]),
                        f"orders[16] (id {DEMO_ORDERS['pending_payment']}): duplicate id, "
                        f"already used by {PENDING}"),
    "duplicate_phone": (set_field("customers", 1, phone="13800138000"),
                        "customers[1] (id C1002): phone 13800138000 is already used by "
                        "customers[0]"),
    "negative_price": (set_field("products", 0, price="-1.00"),
                       f'{P0}: price "-1.00" must be 0 or more'),
    "three_decimals": (set_field("products", 0, price="79.001"),
                       f'{P0}: price "79.001" has more than two decimals'),
    "price_text": (set_field("products", 0, price="七十九"),
                   f'{P0}: price must be an amount in yuan like "199.00"'),
    "price_bool": (set_field("products", 0, price=True), f"{P0}: price must be an amount"),
    "stock_negative": (set_field("products", 0, stock=-1), f"{P0}: stock must be at least 0"),
    "stock_text": (set_field("products", 0, stock="5"), f"{P0}: stock must be an integer"),
    "stock_float": (set_field("products", 0, stock=1.5), f"{P0}: stock must be an integer"),
    "points_bool": (set_field("customers", 0, points=True), f"{C0}: points must be an integer"),
    "used_text": (set_field("coupons", 0, used="yes"),
                  "coupons[0] (id CP1001): used must be true or false"),
    "coupon_zero": (set_field("coupons", 0, amount="0"), "amount \"0\" must be greater than 0"),
    "unknown_field": (set_field("orders", 0, totl="1.00"), f'{PENDING}: unknown field "totl"'),
    "missing_field": (delete_field("orders", 0, "total"), f'{PENDING}: missing field "total"'),
    "missing_nested": (set_nested("orders", 0, "address", {"name": "张伟"}),
                       f'{PENDING}: missing field "address.phone"'),
    "unknown_section": (lambda d: d.update(order=[]), 'unknown top-level key "order"'),
    "section_not_list": (lambda d: d.update(coupons={}), "coupons must be a JSON array"),
    "record_not_object": (append("customers", "C2000"),
                          "customers[6]: record must be a JSON object"),
    "items_empty": (set_field("orders", 0, items=[]), f"{PENDING}: items must be a non-empty"),
    "qty_zero": (set_nested("orders", 0, "items.0.qty", 0),
                 f"{PENDING}: items[0].qty must be at least 1"),
    "attributes_shape": (set_field("products", 0, attributes={"size": "M"}),
                         f"{P0}: attributes must map names to lists of strings"),
    "event_naive": (set_nested("orders", 3, "shipment.events.1.time", "2026-11-21 22:15:00"),
                    f"{SF}: shipment.events[1].time \"2026-11-21 22:15:00\" has no UTC offset"),
    "event_missing": (set_nested("orders", 3, "shipment.events.1", {"time": "x"}),
                      f'{SF}: missing field "shipment.events[1].location"'),
    "name_newline": (set_field("products", 0, name="纯棉\nT恤"),
                     f"{P0}: name must not contain control characters"),
    "name_empty": (set_field("customers", 0, name=" "), f"{C0}: name must not be empty"),
    "id_with_space": (set_field("coupons", 0, id="CP 1"), "id \"CP 1\" must be 1-64 characters"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_data_is_rejected_and_nothing_written(backend: SqlBackend, tmp_path: Path,
                                                      case: str) -> None:
    change, expected = INVALID[case]
    data = demo()
    data["customers"][4]["name"] = "陈静静"  # a valid change that must not be written
    data["customers"].append(  # a valid new record that must not be written either
        {"id": "C2000", "name": "新客户", "phone": "13600136000", "tier": "normal", "points": 0})
    change(data)
    before = backend.count_rows()
    with pytest.raises(DataFileError) as info:
        load_data(backend, write_json(tmp_path / "bad.json", data))
    assert expected in str(info.value), str(info.value)
    assert backend.count_rows() == before
    assert backend.get_customer("C2000") is None
    assert backend.get_customer("C1005").name == "陈静"


def test_every_problem_is_reported(backend: SqlBackend) -> None:
    data = demo()
    data["customers"][0]["tier"] = "vip"
    data["orders"][5]["total"] = "abc"
    with pytest.raises(DataFileError) as info:
        load_data(backend, data)
    assert len(info.value.problems) == 2
    assert "customers[0] (id C1001)" in str(info.value)
    assert f"orders[5] (id {DEMO['orders'][5]['id']})" in str(info.value)


def test_open_case_conflicting_with_the_database(backend: SqlBackend) -> None:
    case = dict(DEMO["after_sales"][0], id="AS-OTHER")
    with pytest.raises(DataFileError, match="AS20261121103000482913 in the database"):
        load_data(backend, {"after_sales": [case]})
    # closing the stored case in the same file makes room for the new one
    closed = dict(DEMO["after_sales"][0], status="completed")
    load_data(backend, {"after_sales": [closed, case]})
    assert [c.id for c in backend.list_after_sales(case["order_id"]) if c.is_open] == ["AS-OTHER"]


@pytest.mark.parametrize("text, expected", [
    ("{", "not valid JSON"),
    ('{"customers": []', "not valid JSON"),
    ("[]", "must contain one JSON object"),
    ('{"customers": [], "customers": []}', "duplicate key 'customers'"),
    ('{"products": [{"price": NaN}]}', "NaN is not a valid JSON number"),
])
def test_unparsable_files(tmp_path: Path, backend: SqlBackend, text: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    before = backend.count_rows()
    with pytest.raises(DataFileError, match=expected):
        load_data(backend, path)
    assert backend.count_rows() == before


def test_missing_file() -> None:
    with pytest.raises(DataFileError, match="cannot read the file"):
        read_data_file("/nonexistent/shop.json")


# ---------------------------------------------------------------- CLI
def run_cli(*args: str, env: Dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, "-m", "actions.backends.loader", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=full_env)


def test_cli_loads_a_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    done = run_cli(str(DEMO_FILE), "--database-url", url)
    assert done.returncode == 0, done.stderr
    assert "customers       5  (5 new, 0 updated)" in done.stdout
    assert "orders         16  (16 new, 0 updated)" in done.stdout
    again = run_cli(str(DEMO_FILE), env={"KEFU_DATABASE_URL": url})
    assert again.returncode == 0 and "(0 new, 16 updated)" in again.stdout


def test_cli_rejects_a_bad_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    data = demo()
    data["orders"][3]["status"] = "sent"
    done = run_cli(str(write_json(tmp_path / "bad.json", data)), "--database-url", url)
    assert done.returncode == 1
    assert f'{SF}: status "sent" is not one of' in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert SqlBackend(url).count_rows()["orders"] == 0


def test_cli_reports_an_unusable_database(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = run_cli(str(DEMO_FILE), "--database-url", f"sqlite:///{blocker}/sub/kefu.db")
    assert done.returncode == 1 and "error:" in done.stderr and "Traceback" not in done.stderr


def test_cli_needs_file_or_sync() -> None:
    assert run_cli().returncode == 2


def test_cli_sync_catalogue(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run_cli(str(DEMO_FILE), "--database-url", url).returncode == 0
    target = tmp_path / "product.yml"
    done = run_cli("--sync-catalogue", "--database-url", url, "--lookup-file", str(target))
    assert done.returncode == 0, done.stderr
    assert "wrote 35 product names" in done.stdout
    assert target.read_text(encoding="utf-8").startswith('version: "3.1"\n')


def test_cli_sync_refuses_an_empty_catalogue(tmp_path: Path) -> None:
    target = tmp_path / "product.yml"
    done = run_cli("--sync-catalogue", "--database-url", f"sqlite:///{tmp_path / 'e.db'}",
                   "--lookup-file", str(target))
    assert done.returncode == 1 and "catalogue is empty" in done.stderr
    assert not target.exists()


# ---------------------------------------------------------------- catalogue sync
def test_sync_catalogue_writes_the_lookup(backend: SqlBackend, tmp_path: Path) -> None:
    from kefu_nlu.segment import read_product_names  # the file's real consumer

    duplicate = dict(DEMO["products"][0], sku="TS1001-B")
    load_data(backend, {"products": [duplicate]})
    target = tmp_path / "product.yml"
    assert sync_catalogue(backend, target) == 35
    text = target.read_text(encoding="utf-8")
    assert text.startswith('version: "3.1"\n# Product names recognised by the spaCy')
    names = read_product_names(target)
    assert names == sorted(set(names)) and len(names) == 35
    assert set(names) == set(read_product_names(LOOKUP_FILE))


def test_render_lookup_format() -> None:
    assert render_lookup(["T恤", "卫衣"]).endswith(
        "nlu:\n- lookup: product\n  examples: |\n    - T恤\n    - 卫衣\n")


# ---------------------------------------------------------------- demo seeding
def test_ensure_demo_data_seeds_once(tmp_path: Path) -> None:
    backend = SqlBackend(f"sqlite:///{tmp_path / 'seed.db'}")
    assert ensure_demo_data(backend) is True
    assert backend.count_rows() == DEMO_COUNTS
    backend.cancel_order(DEMO_ORDERS["paid_recent"])
    assert ensure_demo_data(backend) is False
    assert backend.get_order(DEMO_ORDERS["paid_recent"]).status == "cancelled"


def test_docs_example_is_valid() -> None:
    import re

    from actions.backends.loader import parse_json

    text = (ROOT / "docs" / "data-format.md").read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)```", text, re.S)
    assert example is not None
    assert validate_data(parse_json(example.group(1))).counts()["orders"] == 1


def run_at_once(calls: List[Callable[[], Any]]) -> List[Any]:
    """Run ``calls`` in threads released together; each result or raised exception."""
    barrier = threading.Barrier(len(calls))
    results: List[Any] = []

    def start(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results.append(call())
        except Exception as error:  # returned to the caller's assertion
            results.append(error)

    threads = [threading.Thread(target=start, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def new_database(kind: str, request: pytest.FixtureRequest, path: Path) -> str:
    """A URL of an empty database: an SQLite file at ``path`` or a new PostgreSQL database."""
    if kind == "sqlite":
        return f"sqlite:///{path}"
    return postgres_server(request.config).create_database()


def drop_database(kind: str, request: pytest.FixtureRequest, url: str) -> None:
    if kind == "postgresql":
        postgres_server(request.config).drop_database(url)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_first_starts_seed_once(kind: str, request: pytest.FixtureRequest,
                                           tmp_path: Path) -> None:
    url = new_database(kind, request, tmp_path / "race.db")
    backends = [SqlBackend(url) for _ in range(3)]
    results = run_at_once([lambda b=b: ensure_demo_data(b) for b in backends])
    assert sorted(results, key=str) == [False, False, True], results
    assert backends[0].count_rows() == DEMO_COUNTS
    for backend in backends:
        backend.close()
    drop_database(kind, request, url)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_bot_and_workspace_create_a_new_database_at_once(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Action servers and workspaces starting together on an empty database all succeed."""
    from actions.handoff.tickets import TicketStore

    for attempt in range(20 if kind == "sqlite" else 3):
        url = new_database(kind, request, tmp_path / f"fresh{attempt}.db")
        openers = [SqlBackend(url) if i % 2 else TicketStore(url) for i in range(6)]
        results = run_at_once([opener.create_schema for opener in openers])
        for opener in openers:
            opener.close() if isinstance(opener, SqlBackend) else opener.dispose()
        drop_database(kind, request, url)
        assert results == [None] * len(openers), f"attempt {attempt}: {results}"


def test_demo_data_is_moved_to_today(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first run weeks after the demo was written still shows recent orders and valid coupons."""
    monkeypatch.setenv("KEFU_CLOCK", "2027-01-10T09:00:00+08:00")
    backend = SqlBackend(f"sqlite:///{tmp_path / 'later.db'}")
    assert ensure_demo_data(backend) is True
    written = validate_data(read_data_file(DEMO_FILE))
    days = timedelta(days=(date(2027, 1, 10) - DEMO_DAY).days)
    for original in written.orders:
        moved = backend.get_order(original.id)
        assert moved.created_at == original.created_at + days
        assert moved.paid_at == (original.paid_at and original.paid_at + days)
        if original.shipment:
            assert [e.time for e in moved.shipment.events] == [
                e.time + days for e in original.shipment.events]
    coupons = {c.id: c for c in written.coupons}
    for customer in written.customers:
        for coupon in backend.list_coupons(customer.id):
            assert coupon.expires_at == coupons[coupon.id].expires_at + days
    backend.close()


def test_demo_data_on_its_own_day_is_unchanged(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_CLOCK", f"{DEMO_DAY.isoformat()}T23:30:00+08:00")
    backend = SqlBackend(f"sqlite:///{tmp_path / 'same.db'}")
    ensure_demo_data(backend)
    for original in validate_data(read_data_file(DEMO_FILE)).orders:
        assert backend.get_order(original.id).created_at == original.created_at
    backend.close()
