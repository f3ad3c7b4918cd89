"""TicketStore on a real SQLite file and on a real PostgreSQL server.

PostgreSQL comes from ``backend_fixtures`` (a throwaway server from Debian's
package, skipped when not installed unless KEFU_REQUIRE_POSTGRES=1);
``KEFU_TEST_POSTGRES_URL`` points the tests at another throwaway database.
"""
from __future__ import annotations

import math
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, List

import pytest
from sqlalchemy import create_engine, inspect, select, text

from actions.handoff.tickets import (
    ASSIGNED,
    CALLBACK,
    CANCELLED,
    CLOSED,
    AgentExists,
    NotAssignee,
    TicketConflict,
    TicketNotFound,
    TicketStore,
    metadata,
    sessions_table,
    within_service_hours,
)

START = datetime(2024, 5, 1, 3, 0, tzinfo=timezone.utc)  # 11:00 in Shanghai
POSTGRES_URL = os.environ.get("KEFU_TEST_POSTGRES_URL")

from backend_fixtures import postgres_url  # noqa: E402,F401  (fixture)


class FakeClock:
    """A settable clock for the store."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kefu.db'}"
        return
    url = POSTGRES_URL or request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    metadata.drop_all(engine)
    yield url
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[TicketStore]:
    s = TicketStore(db_url, clock=clock)
    s.create_schema()
    yield s
    s.dispose()


def open_ticket(store: TicketStore, clock: FakeClock, cid: str, reason: str = "request_human",
                tier: str = "normal", **kwargs) -> int:
    clock.advance(seconds=1)
    return store.open_ticket(cid, "socketio", reason, kwargs.pop("customer_id", "c-" + cid),
                             "138****0000", tier, None, "summary", None, **kwargs).id


def make_agent(store: TicketStore, name: str) -> int:
    return store.create_agent(name, name.upper(), "correct-horse-battery").id


# ------------------------------------------------------------------ queue

def test_complaints_and_gold_platinum_go_first_then_fifo(store: TicketStore, clock: FakeClock) -> None:
    a = open_ticket(store, clock, "a")
    b = open_ticket(store, clock, "b", tier="silver")
    c = open_ticket(store, clock, "c", reason="complaint")
    d = open_ticket(store, clock, "d", tier="gold")
    e = open_ticket(store, clock, "e", tier="Platinum")
    f = open_ticket(store, clock, "f", tier=None, customer_id=None)
    g = open_ticket(store, clock, "g", reason="repeated_fallback")

    queue = store.waiting_queue()

    assert [t.id for t in queue] == [c, d, e, a, b, f, g]
    assert [t.priority for t in queue] == [1, 1, 1, 0, 0, 0, 0]
    assert queue[2].customer_tier == "platinum"
    assert queue[5].customer_id is None  # anonymous customers are allowed


def test_positions_follow_the_queue_and_move_up(store: TicketStore, clock: FakeClock) -> None:
    agent = make_agent(store, "wang")
    a = open_ticket(store, clock, "a")
    b = open_ticket(store, clock, "b")
    vip = open_ticket(store, clock, "vip", tier="gold")

    assert [store.position(t) for t in (vip, a, b)] == [1, 2, 3]
    assert store.claim(vip, agent)
    assert [store.position(t) for t in (vip, a, b)] == [None, 1, 2]
    store.cancel_by_customer("a")
    assert store.position(b) == 1
    assert store.position(99999) is None


def test_same_second_tickets_keep_insertion_order(store: TicketStore) -> None:
    ids = [store.open_ticket(f"s{i}", "socketio", "request_human").id for i in range(5)]
    assert [t.id for t in store.waiting_queue()] == ids
    assert [store.position(i) for i in ids] == [1, 2, 3, 4, 5]


def test_open_ticket_is_idempotent_per_conversation(store: TicketStore, clock: FakeClock) -> None:
    first = store.open_ticket("conv", "socketio", "request_human")
    clock.advance(minutes=1)
    again = store.open_ticket("conv", "rest", "complaint", summary="other")

    assert again == first
    assert len(store.waiting_queue()) == 1
    agent = make_agent(store, "wang")
    store.claim(first.id, agent)
    assert store.open_ticket("conv", "socketio", "request_human").id == first.id  # assigned too
    store.close(first.id, agent)
    assert store.open_ticket("conv", "socketio", "request_human").id != first.id


def test_concurrent_opens_create_one_ticket(store: TicketStore) -> None:
    barrier = threading.Barrier(6)
    ids: List[int] = []

    def worker() -> None:
        barrier.wait()
        ids.append(store.open_ticket("race", "socketio", "request_human").id)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(ids) == 6
    assert len(store.waiting_queue()) == 1


def test_active_ticket_for(store: TicketStore, clock: FakeClock) -> None:
    assert store.active_ticket_for("conv") is None
    ticket_id = open_ticket(store, clock, "conv")
    assert store.active_ticket_for("conv").id == ticket_id
    store.cancel_by_customer("conv")
    assert store.active_ticket_for("conv") is None


# ---------------------------------------------------------- wait estimate

def test_wait_estimate_defaults_to_five_minutes_per_place(store: TicketStore, clock: FakeClock) -> None:
    ids = [open_ticket(store, clock, f"c{i}") for i in range(3)]
    # nobody online counts as one agent; no history -> 5 minutes each
    assert [store.estimated_wait_minutes(i) for i in ids] == [5, 10, 15]


def test_wait_estimate_uses_online_agents_and_recent_handling_time(
    store: TicketStore, clock: FakeClock
) -> None:
    agents = [make_agent(store, n) for n in ("a1", "a2", "a3")]
    for minutes in (2, 4):  # two finished chats: average 3 minutes
        ticket = open_ticket(store, clock, f"done{minutes}")
        store.claim(ticket, agents[0])
        clock.advance(minutes=minutes)
        store.close(ticket, agents[0])
    waiting = [open_ticket(store, clock, f"w{i}") for i in range(5)]
    assert store.average_handling_minutes() == pytest.approx(3.0)

    store.heartbeat(agents[0])
    store.heartbeat(agents[1])
    assert store.agents_online() == 2
    expected = [max(1, math.ceil(p * 3.0 / 2)) for p in range(1, 6)]  # 2, 3, 5, 6, 8
    assert [store.estimated_wait_minutes(t) for t in waiting] == expected
    assert [e.wait_minutes for e in store.queue_snapshot()] == expected

    clock.advance(seconds=61)  # heartbeats too old: nobody online -> counted as 1
    assert store.agents_online() == 0
    assert store.estimated_wait_minutes(waiting[0]) == 3
    assert store.estimated_wait_minutes(99999) == 0


def test_wait_estimate_only_looks_at_last_20_closed_tickets(store: TicketStore, clock: FakeClock) -> None:
    agent = make_agent(store, "wang")
    durations = [100] + [1] * 20  # the 100-minute chat is the oldest of 21
    for i, minutes in enumerate(durations):
        ticket = open_ticket(store, clock, f"h{i}")
        store.claim(ticket, agent)
        clock.advance(minutes=minutes)
        store.close(ticket, agent)
    assert store.average_handling_minutes() == pytest.approx(1.0)
    waiting = open_ticket(store, clock, "w")
    assert store.estimated_wait_minutes(waiting) == 1  # never below one minute


# ------------------------------------------------------------------ claim

def test_claim_is_atomic_under_concurrent_threads(store: TicketStore, clock: FakeClock) -> None:
    agents = [make_agent(store, "a"), make_agent(store, "b")]
    for round_no in range(40):
        ticket_id = open_ticket(store, clock, f"race{round_no}")
        barrier = threading.Barrier(2)
        results = {}

        def claim(agent_id: int) -> None:
            barrier.wait()
            results[agent_id] = store.claim(ticket_id, agent_id)

        threads = [threading.Thread(target=claim, args=(a,)) for a in agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [a for a, won in results.items() if won]
        assert len(winners) == 1, results
        ticket = store.get_ticket(ticket_id)
        assert ticket.status == ASSIGNED and ticket.agent_id == winners[0]
        assert ticket.assigned_at == clock.now


def test_claim_only_waiting_tickets(store: TicketStore, clock: FakeClock) -> None:
    agent = make_agent(store, "wang")
    ticket_id = open_ticket(store, clock, "conv")
    store.cancel_by_customer("conv")
    assert store.claim(ticket_id, agent) is False
    assert store.claim(99999, agent) is False


# ------------------------------------------------------------------ close

def test_only_the_assignee_can_close(store: TicketStore, clock: FakeClock) -> None:
    owner, other = make_agent(store, "owner"), make_agent(store, "other")
    ticket_id = open_ticket(store, clock, "conv")
    with pytest.raises(NotAssignee):
        store.close(ticket_id, owner)  # still waiting: nobody's yet
    store.claim(ticket_id, owner)

    with pytest.raises(NotAssignee):
        store.close(ticket_id, other)
    assert store.get_ticket(ticket_id).status == ASSIGNED

    clock.advance(minutes=3)
    closed = store.close(ticket_id, owner)
    assert closed.status == CLOSED and closed.closed_at == clock.now
    with pytest.raises(TicketConflict):
        store.close(ticket_id, owner)
    with pytest.raises(TicketNotFound):
        store.close(99999, owner)


def test_cancel_by_customer(store: TicketStore, clock: FakeClock) -> None:
    agent = make_agent(store, "wang")
    assert store.cancel_by_customer("nobody") is None
    ticket_id = open_ticket(store, clock, "conv")

    cancelled = store.cancel_by_customer("conv")

    assert cancelled.id == ticket_id and cancelled.status == CANCELLED
    assert store.waiting_queue() == []
    assert store.cancel_by_customer("conv") is None
    taken = open_ticket(store, clock, "busy")
    store.claim(taken, agent)
    assert store.cancel_by_customer("busy") is None  # an agent is already on it
    assert store.get_ticket(taken).status == ASSIGNED


# ------------------------------------------------------------------- CSAT

def test_csat_goes_to_latest_closed_unrated_ticket(store: TicketStore, clock: FakeClock) -> None:
    agent = make_agent(store, "wang")
    assert store.record_csat("conv", 5) is None
    first = open_ticket(store, clock, "conv")
    store.claim(first, agent)
    store.close(first, agent)
    second = open_ticket(store, clock, "conv")
    store.claim(second, agent)
    clock.advance(minutes=1)
    store.close(second, agent)

    rated = store.record_csat("conv", 4)
    assert rated.id == second and rated.csat_rating == 4 and rated.csat_at == clock.now
    assert store.record_csat("conv", "5").id == first  # then the older unrated one
    assert store.record_csat("conv", 3) is None
    assert store.get_ticket(second).csat_rating == 4


@pytest.mark.parametrize("bad", [0, 6, -1, 3.5, "x", "", None, True])
def test_csat_rejects_ratings_outside_1_to_5(store: TicketStore, clock: FakeClock, bad) -> None:
    agent = make_agent(store, "wang")
    ticket_id = open_ticket(store, clock, "conv")
    store.claim(ticket_id, agent)
    store.close(ticket_id, agent)
    with pytest.raises(ValueError):
        store.record_csat("conv", bad)
    assert store.get_ticket(ticket_id).csat_rating is None


# -------------------------------------------------------------- callbacks

def test_callback_tickets_stay_out_of_the_live_queue(store: TicketStore, clock: FakeClock) -> None:
    agent = make_agent(store, "wang")
    ticket = store.open_callback_ticket(
        "night", "socketio", "request_human", "c1", "139****1111", "gold", "O1", "查物流", None,
        message="请明天上午回电", preference="电话",
    )
    again = store.open_callback_ticket("night", "socketio", "request_human",
                                       message="下午也可以", preference="短信")

    assert ticket.status == CALLBACK and ticket.priority == 1
    assert again.id == ticket.id and again.callback_message == "下午也可以"
    assert again.callback_preference == "短信"
    assert store.waiting_queue() == [] and store.active_ticket_for("night") is None
    assert [t.id for t in store.callback_tickets()] == [ticket.id]
    assert store.resolve_callback(ticket.id, agent).status == CLOSED
    with pytest.raises(TicketConflict):
        store.resolve_callback(ticket.id, agent)
    assert store.record_csat("night", 5) is None  # callbacks are not rated


def test_last_notified_position_compare_and_set(store: TicketStore, clock: FakeClock) -> None:
    ticket_id = open_ticket(store, clock, "conv")
    assert store.set_last_notified_position(ticket_id, 3, expected=None)
    assert not store.set_last_notified_position(ticket_id, 2, expected=None)
    assert store.set_last_notified_position(ticket_id, 2, expected=3)
    assert store.set_last_notified_position(ticket_id, 1)
    assert store.get_ticket(ticket_id).last_notified_position == 1


# ------------------------------------------------------- agents, sessions

def test_passwords_are_salted_hashes(store: TicketStore, db_url: str) -> None:
    store.create_agent("wang", "小王", "same-password")
    store.create_agent("li", "小李", "same-password")
    engine = create_engine(db_url)
    with engine.connect() as conn:
        hashes = [r[0] for r in conn.execute(text("SELECT password_hash FROM agent_accounts"))]
    engine.dispose()
    assert len(set(hashes)) == 2  # per-user salt
    assert all("same-password" not in h and h.startswith("scrypt$") for h in hashes)

    assert store.authenticate("wang", "same-password").display_name == "小王"
    assert store.authenticate("wang", "wrong-password") is None
    assert store.authenticate("wang", "") is None
    assert store.authenticate("nobody", "same-password") is None


def test_agent_accounts_validate_input(store: TicketStore) -> None:
    with pytest.raises(ValueError):
        store.create_agent("wang", "小王", "short")
    store.create_agent("wang", "小王", "long-enough")
    with pytest.raises(AgentExists):
        store.create_agent("wang", "别人", "long-enough")
    assert store.set_password("wang", "new-password")
    assert store.authenticate("wang", "new-password") is not None
    assert store.authenticate("wang", "long-enough") is None
    assert store.set_password("nobody", "new-password") is False


def test_sessions_expire_and_store_only_a_hash(store: TicketStore, clock: FakeClock, db_url: str) -> None:
    agent = make_agent(store, "wang")
    token = store.create_session(agent, timedelta(hours=8))

    assert store.agent_for_session(token).id == agent
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(select(sessions_table.c.token_hash)).scalars().all()
    engine.dispose()
    assert stored and token not in stored
    clock.advance(hours=8, seconds=-1)
    assert store.agent_for_session(token).id == agent
    clock.advance(seconds=1)
    assert store.agent_for_session(token) is None
    assert store.agent_for_session("") is None
    assert store.agent_for_session("not-a-token") is None


def test_end_session(store: TicketStore) -> None:
    agent = make_agent(store, "wang")
    token = store.create_session(agent, timedelta(hours=1))
    other = store.create_session(agent, timedelta(hours=1))
    store.end_session(token)
    assert store.agent_for_session(token) is None
    assert store.agent_for_session(other) is not None


def test_agents_online_counts_recent_heartbeats(store: TicketStore, clock: FakeClock) -> None:
    a, b = make_agent(store, "a"), make_agent(store, "b")
    assert store.agents_online() == 0
    store.heartbeat(a)
    clock.advance(seconds=30)
    store.heartbeat(b)
    assert store.agents_online() == 2
    clock.advance(seconds=31)
    assert store.agents_online() == 1
    store.go_offline(b)
    assert store.agents_online() == 0


# ---------------------------------------------------- persistence, schema

def test_tickets_survive_a_restart(db_url: str, clock: FakeClock) -> None:
    first = TicketStore(db_url, clock=clock)
    first.create_schema()
    ids = [open_ticket(first, clock, c) for c in ("a", "b")]
    agent = first.create_agent("wang", "小王", "correct-horse")
    first.claim(ids[0], agent.id)
    token = first.create_session(agent.id, timedelta(hours=8))
    first.dispose()

    second = TicketStore(db_url, clock=clock)
    second.create_schema()  # idempotent on an existing database
    assert [t.id for t in second.waiting_queue()] == [ids[1]]
    assert second.get_ticket(ids[0]).agent_id == agent.id
    assert second.position(ids[1]) == 1
    assert second.authenticate("wang", "correct-horse") is not None
    assert second.agent_for_session(token).id == agent.id
    second.dispose()


def test_tables_are_prefixed_and_share_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id TEXT PRIMARY KEY)"))
        conn.execute(text("INSERT INTO orders VALUES ('O1')"))
    store = TicketStore(url)
    store.create_schema()
    store.open_ticket("conv", "socketio", "request_human")
    tables = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        journal = conn.execute(text("PRAGMA journal_mode")).scalar()
        assert conn.execute(text("SELECT id FROM orders")).scalar() == "O1"
    store.dispose()
    engine.dispose()
    assert {t for t in tables if t != "orders"} == {
        "handoff_tickets", "handoff_bot_csat", "agent_accounts", "agent_sessions"}
    assert journal == "wal"


# ---------------------------------------------------------- service hours

def shanghai(hour: int, minute: int) -> datetime:
    return datetime(2024, 5, 1, hour, minute, tzinfo=timezone(timedelta(hours=8)))


@pytest.mark.parametrize(
    "hour, minute, expected",
    [(8, 59, False), (9, 0, True), (12, 30, True), (21, 59, True), (22, 0, False), (0, 0, False)],
)
def test_service_hours_edges(hour: int, minute: int, expected: bool) -> None:
    assert within_service_hours(shanghai(hour, minute), "09:00-22:00", "Asia/Shanghai") is expected


def test_service_hours_convert_other_time_zones() -> None:
    utc_0100 = datetime(2024, 5, 1, 1, 0, tzinfo=timezone.utc)  # 09:00 Shanghai
    assert within_service_hours(utc_0100, "09:00-22:00", "Asia/Shanghai")
    assert not within_service_hours(utc_0100 - timedelta(minutes=1), "09:00-22:00", "Asia/Shanghai")
    assert within_service_hours(utc_0100.replace(tzinfo=None), "09:00-22:00", "Asia/Shanghai")  # naive = UTC
    assert not within_service_hours(utc_0100, "09:00-22:00", "Europe/Berlin")  # 03:00 there
    # 20:30 / 21:30 in New York (EDT, UTC-4) are 08:30 / 09:30 the next day in Shanghai
    new_york_2030 = datetime(2024, 5, 1, 20, 30, tzinfo=timezone(timedelta(hours=-4)))
    assert not within_service_hours(new_york_2030, "09:00-22:00", "Asia/Shanghai")
    assert within_service_hours(new_york_2030 + timedelta(hours=1), "09:00-22:00", "Asia/Shanghai")
    assert within_service_hours(new_york_2030, "09:00-22:00", "America/New_York")


def test_service_hours_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_SERVICE_HOURS", "08:00-20:00")
    monkeypatch.setenv("KEFU_SERVICE_TIMEZONE", "Asia/Tokyo")
    tokyo_0800 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=9)))
    assert within_service_hours(tokyo_0800)
    assert not within_service_hours(tokyo_0800 - timedelta(seconds=1))
    assert within_service_hours(tokyo_0800, "09:00-22:00", "Asia/Shanghai") is False  # 07:00 there


def test_service_hours_wrap_midnight_and_reject_nonsense() -> None:
    assert within_service_hours(shanghai(23, 0), "22:00-06:00", "Asia/Shanghai")
    assert within_service_hours(shanghai(5, 59), "22:00-06:00", "Asia/Shanghai")
    assert not within_service_hours(shanghai(6, 0), "22:00-06:00", "Asia/Shanghai")
    assert within_service_hours(shanghai(23, 59), "00:00-24:00", "Asia/Shanghai")
    assert within_service_hours(shanghai(13, 30), "09:00-12:00,13:00-18:00", "Asia/Shanghai")
    assert not within_service_hours(shanghai(12, 30), "09:00-12:00,13:00-18:00", "Asia/Shanghai")
    for bad in ("9-22", "25:00-26:00", "09:00", "09:60-22:00"):
        with pytest.raises(ValueError):
            within_service_hours(shanghai(10, 0), bad, "Asia/Shanghai")
