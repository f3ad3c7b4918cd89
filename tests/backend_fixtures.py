"""Backends loaded with the demo data, on real databases (helpers, not tests).

- ``make_sqlite_backend(tmp_path, clock=None)``: a fresh SQLite file.
- PostgreSQL: ``postgres_server()`` starts ONE throwaway server per test
  session from Debian's ``postgresql`` package (stopped at session end); the
  module-scoped fixture ``postgres_url`` (import it into the test module)
  gives each module a fresh database. Without the binaries the tests are
  skipped, unless ``KEFU_REQUIRE_POSTGRES=1`` (then they fail).
- ``backend_kinds()`` and ``open_backend(kind, request, tmp_path)``: the same
  demo data behind SQLite, PostgreSQL or HTTP (``tests/http_backend_fixture.py``).
- ``DEMO_CUSTOMERS`` / ``DEMO_ORDERS``: ids of the demo records by purpose
  (table in ``docs/data-format.md``).
"""
from __future__ import annotations

import atexit
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import pytest

from actions.backends.base import ShopBackend
from actions.backends.loader import DEMO_FILE, load_data
from actions.backends.sql import METADATA, SHOP_TZ, SqlBackend, create_engine
from stack import free_port

FIXED_NOW = datetime(2026, 11, 24, 10, 0, tzinfo=SHOP_TZ)
REQUIRE_POSTGRES_ENV = "KEFU_REQUIRE_POSTGRES"
PG_BINDIR_ENV = "KEFU_PG_BINDIR"  # optional: directory with initdb and pg_ctl

DEMO_CUSTOMERS = {"normal": "C1001", "silver": "C1002", "gold": "C1003",
                  "platinum": "C1004", "normal_2": "C1005"}
DEMO_PHONES = {"C1001": "13800138000", "C1002": "13912345678", "C1003": "13700137000",
               "C1004": "15800158000", "C1005": "18600186000"}
DEMO_ORDERS = {
    "pending_payment": "202611240930001001",     # C1001
    "paid_recent": "202611231415002002",         # C1002, paid 20 h ago
    "paid_overdue": "202611201130003003",        # C1003, paid 4 days ago, not shipped
    "shipped_sf": "202611210820004004",          # C1001, 顺丰速运, 4 events
    "shipped_zto": "202611190905005005",         # C1004, 中通快递, 5 events
    "shipped_yto": "202611220915012012",         # C1002, 圆通速递, 3 events
    "delivered_recent": "202611181012006006",    # C1003, 京东物流, delivered 11-21
    "delivered_old": "202611021930007007",       # C1002, delivered 11-06, rejected exchange
    "cancelled": "202611150840008008",           # C1001, cancelled before payment
    "open_after_sale": "202611160930009009",     # C1004, delivered 11-19, open return case
    "refund_completed": "202611100815010010",    # C1003, delivered 11-13, completed refund
    "other_phone": "202611230900011011",         # C1004, paid, consignee 周敏 13511112222
    "delivered_recent_2": "202611191400013013",  # C1001, 圆通速递, delivered 11-22
    "delivered_recent_3": "202611170830014014",  # C1005, 顺丰速运, delivered 11-20
    "cancelled_paid": "202611210950015015",      # C1005, paid then cancelled
    "delivered_oldest": "202610281020016016",    # C1004, delivered 10-30 (product now out of stock)
}
DEMO_AFTER_SALES = {"open": "AS20261121103000482913", "completed": "AS20261114091500731846",
                    "rejected": "AS20261120150000264375"}


def fixed_clock() -> datetime:
    """The tests' "now": 2026-11-24 10:00 in Shanghai."""
    return FIXED_NOW


# ---------------------------------------------------------------- SQLite
def make_sqlite_backend(tmp_path: Path,
                        clock: Optional[Callable[[], datetime]] = None) -> SqlBackend:
    """A SqlBackend on a new SQLite file in ``tmp_path`` with the demo data."""
    path = tmp_path / f"kefu-{secrets.token_hex(4)}.db"
    backend = SqlBackend(f"sqlite:///{path}", clock=clock)
    load_data(backend, DEMO_FILE)
    return backend


def wipe_database(url: str) -> None:
    """Delete every row of Kefu's tables (creating missing tables first)."""
    engine = create_engine(url)
    try:
        METADATA.create_all(engine)
        with engine.begin() as conn:
            for table in reversed(METADATA.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


# ---------------------------------------------------------------- PostgreSQL
def find_postgres_bindir() -> Optional[Path]:
    """``$KEFU_PG_BINDIR``, else the newest ``/usr/lib/postgresql/<version>/bin``, else PATH."""
    override = os.environ.get(PG_BINDIR_ENV)
    if override:
        return Path(override) if (Path(override) / "initdb").exists() else None
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    candidates.sort(key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresError(RuntimeError):
    """The throwaway PostgreSQL server could not be started."""


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust authentication."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="kefu-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.running = False
        # initdb refuses to run as root: run the server tools as "postgres"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = self.as_user + [str(self.bindir / args[0]), *args[1:]]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PostgresError(f"{args[0]} failed: {error}") from error
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresError(f"{args[0]} exited with {done.returncode}:\n"
                                f"{done.stdout}{done.stderr}{log}")

    def start(self) -> None:
        """initdb + pg_ctl start; raises ``PostgresError``."""
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        self.port = free_port()
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")
        self.running = True

    def stop(self) -> None:
        """Stop the server and delete its files (idempotent)."""
        if self.running:
            self.running = False
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
            except PostgresError:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                dbname="postgres", connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"kefu_test_{secrets.token_hex(4)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[-1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_server: Optional[PostgresServer] = None
_server_problem: Optional[Tuple[bool, str]] = None  # (fail even without the env var, reason)


def _postgres_unavailable(reason: str, always_fail: bool = False) -> None:
    if always_fail or os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
        pytest.fail(f"PostgreSQL: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL: {reason}")


def postgres_server(config: pytest.Config) -> PostgresServer:
    """The session's PostgreSQL server (started on first use, stopped at session end)."""
    global _server, _server_problem
    if _server is None and _server_problem is None:
        bindir = find_postgres_bindir()
        if bindir is None:
            _server_problem = (False, "server binaries not installed "
                                      "(apt-get install -y postgresql)")
        else:
            server = PostgresServer(bindir)
            try:
                server.start()
            except PostgresError as error:
                server.stop()
                _server_problem = (True, f"cannot start a test server: {error}")
            else:
                config.add_cleanup(server.stop)
                atexit.register(server.stop)
                _server = server
    if _server_problem is not None:
        _postgres_unavailable(_server_problem[1], always_fail=_server_problem[0])
    assert _server is not None
    return _server


@pytest.fixture(scope="module")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for this test module (dropped afterwards)."""
    server = postgres_server(request.config)
    url = server.create_database()
    yield url
    server.drop_database(url)


def make_postgres_backend(url: str,
                          clock: Optional[Callable[[], datetime]] = None) -> SqlBackend:
    """A SqlBackend on ``url`` with only the demo data in it."""
    wipe_database(url)
    backend = SqlBackend(url, clock=clock)
    load_data(backend, DEMO_FILE)
    return backend


# ---------------------------------------------------------------- any kind
def backend_kinds() -> List[str]:
    """Every backend the contract tests run against."""
    return ["sqlite", "postgresql", "http"]


def start_http(sql_backend: SqlBackend,
               tmp_path: Path) -> Tuple[ShopBackend, Callable[[], None]]:
    """An HttpBackend over ``sql_backend`` (skips when that fixture is not written yet)."""
    try:
        from http_backend_fixture import start_http_backend
    except ModuleNotFoundError as error:
        pytest.skip(f"HTTP backend not available yet ({error})")
    return start_http_backend(sql_backend, tmp_path)


def open_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path,
                 clock: Callable[[], datetime] = fixed_clock) -> Iterator[ShopBackend]:
    """Yield a backend of ``kind`` with only the demo data; clean up afterwards."""
    if kind == "postgresql":
        backend = make_postgres_backend(request.getfixturevalue("postgres_url"), clock)
        yield backend
        backend.close()
    elif kind == "sqlite":
        backend = make_sqlite_backend(tmp_path, clock)
        yield backend
        backend.close()
    elif kind == "http":
        sql_backend = make_sqlite_backend(tmp_path, clock)
        try:
            http_backend, stop = start_http(sql_backend, tmp_path)
            yield http_backend
            stop()
        finally:
            sql_backend.close()
    else:
        raise ValueError(f"unknown backend kind {kind!r}")
