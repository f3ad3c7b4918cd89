"""Human-handoff tickets, agent accounts and agent sessions (SQLAlchemy Core).

One ``TicketStore`` per process; it is thread-safe (one engine, short
transactions). Tables are prefixed ``handoff_`` / ``agent_`` so they can live
in the same database as the order backend (SQLite ``var/kefu.db`` by default,
PostgreSQL works too).

Times are timezone-aware UTC ``datetime`` values in Python and naive UTC in
the database. The clock is injectable for tests.

Ticket life cycle::

    open_ticket ──> waiting ──claim──> assigned ──close──> closed (──> csat)
                       └──cancel_by_customer──> cancelled
    open_callback_ticket ──> callback ──resolve_callback──> closed
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, List, Mapping, NoReturn, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import QueuePool, StaticPool

from actions.backends.sql import tune_sqlite_connection

Clock = Callable[[], datetime]

DEFAULT_DATABASE_URL = "sqlite:///var/kefu.db"

# Ticket statuses.
WAITING = "waiting"
ASSIGNED = "assigned"
CLOSED = "closed"
CANCELLED = "cancelled"
CALLBACK = "callback"
ACTIVE_STATUSES = (WAITING, ASSIGNED)

# Ticket kinds: a live chat handed to an agent, or an out-of-hours callback.
LIVE = "live"
CALLBACK_KIND = "callback"

PRIORITY_TIERS = frozenset({"gold", "platinum"})
PRIORITY_REASONS = frozenset({"complaint"})

ONLINE_WINDOW = timedelta(seconds=60)
HANDLING_SAMPLE = 20
DEFAULT_HANDLING_MINUTES = 5.0
MIN_PASSWORD_LENGTH = 8
SQLITE_BUSY_TIMEOUT_MS = 30_000

DEFAULT_SERVICE_HOURS = "09:00-22:00"
DEFAULT_SERVICE_TIMEZONE = "Asia/Shanghai"
SERVICE_HOURS_ENV = "KEFU_SERVICE_HOURS"
SERVICE_TIMEZONE_ENV = "KEFU_SERVICE_TIMEZONE"


class HandoffError(Exception):
    """Base class of ticket store errors."""


class TicketNotFound(HandoffError, LookupError):
    """No ticket with that id."""


class NotAssignee(HandoffError, PermissionError):
    """The agent is not the one the ticket is assigned to."""


class TicketConflict(HandoffError):
    """The ticket is not in a status that allows the operation."""


class AgentExists(HandoffError, ValueError):
    """An agent with that username already exists."""


# --------------------------------------------------------------------- schema

metadata = MetaData()

tickets_table = Table(
    "handoff_tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(255), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("customer_id", String(64)),
    Column("customer_masked_phone", String(32)),
    Column("customer_tier", String(32)),
    Column("order_id", String(64)),
    Column("summary", Text, nullable=False),
    Column("transcript_url", String(1024)),
    Column("callback_message", Text),
    Column("callback_preference", String(255)),
    Column("agent_id", Integer),
    Column("created_at", DateTime, nullable=False),
    Column("assigned_at", DateTime),
    Column("closed_at", DateTime),
    Column("csat_rating", Integer),
    Column("csat_at", DateTime),
    Column("last_notified_position", Integer),
)
_t = tickets_table.c
Index("ix_handoff_tickets_conversation", _t.conversation_id, _t.status)
Index("ix_handoff_tickets_queue", _t.status, _t.priority, _t.created_at)
Index("ix_handoff_tickets_agent", _t.agent_id, _t.status)
# At most one waiting/assigned ticket and one pending callback per conversation:
# makes open_ticket idempotent even under concurrent calls.
_active = _t.status.in_(ACTIVE_STATUSES)
Index(
    "ux_handoff_tickets_active",
    _t.conversation_id,
    unique=True,
    sqlite_where=_active,
    postgresql_where=_active,
)
_pending_callback = _t.status == CALLBACK
Index(
    "ux_handoff_tickets_callback",
    _t.conversation_id,
    unique=True,
    sqlite_where=_pending_callback,
    postgresql_where=_pending_callback,
)

# Ratings of conversations the bot resolved alone (one per conversation);
# ratings after a human hand-over live on the ticket (csat_rating).
bot_csat_table = Table(
    "handoff_bot_csat",
    metadata,
    Column("conversation_id", String(255), primary_key=True),
    Column("rating", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

agents_table = Table(
    "agent_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(64), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime),
)
_a = agents_table.c

sessions_table = Table(
    "agent_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("agent_id", Integer, nullable=False, index=True),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False, index=True),
)
_s = sessions_table.c


# -------------------------------------------------------------------- records

@dataclass(frozen=True)
class Ticket:
    """One handoff ticket (see the module docstring for the life cycle)."""

    id: int
    conversation_id: str
    channel: str
    kind: str
    status: str
    priority: int
    reason: str
    customer_id: Optional[str]
    customer_masked_phone: Optional[str]
    customer_tier: Optional[str]
    order_id: Optional[str]
    summary: str
    transcript_url: Optional[str]
    callback_message: Optional[str]
    callback_preference: Optional[str]
    agent_id: Optional[int]
    created_at: datetime
    assigned_at: Optional[datetime]
    closed_at: Optional[datetime]
    csat_rating: Optional[int]
    csat_at: Optional[datetime]
    last_notified_position: Optional[int]

    @property
    def is_active(self) -> bool:
        """True while the ticket is waiting or assigned."""
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class Agent:
    """A human customer-service agent (never carries the password hash)."""

    id: int
    username: str
    display_name: str
    active: bool
    created_at: datetime
    last_seen_at: Optional[datetime]


@dataclass(frozen=True)
class QueueEntry:
    """A waiting ticket with its 1-based position and estimated wait."""

    ticket: Ticket
    position: int
    wait_minutes: int


# ------------------------------------------------------------------- helpers

def ticket_priority(reason: str, tier: Optional[str]) -> int:
    """1 for complaints and gold/platinum customers, else 0."""
    if reason in PRIORITY_REASONS or (tier or "").lower() in PRIORITY_TIERS:
        return 1
    return 0


def hash_password(password: str) -> str:
    """Hash with scrypt and a random per-user salt: ``scrypt$n$r$p$salt$hash``."""
    n, r, p = 2**14, 8, 1
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p)
    return "$".join(["scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    """Check ``password`` against a ``hash_password`` value in constant time."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A valid hash to verify against when the username is unknown (same timing)."""
    return hash_password(secrets.token_hex(8))


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _to_db(value: Optional[datetime]) -> Optional[datetime]:
    """Aware (or naive-UTC) datetime -> naive UTC for the database."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _from_db(value: Optional[datetime]) -> Optional[datetime]:
    """Naive UTC from the database -> aware UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _row_to_ticket(row: Mapping[str, Any]) -> Ticket:
    data = dict(row)
    for key in ("created_at", "assigned_at", "closed_at", "csat_at"):
        data[key] = _from_db(data[key])
    return Ticket(**data)


def _row_to_agent(row: Mapping[str, Any]) -> Agent:
    return Agent(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        active=bool(row["active"]),
        created_at=_from_db(row["created_at"]),
        last_seen_at=_from_db(row["last_seen_at"]),
    )


def _wait_minutes(position: int, agents_online: int, handling_minutes: float) -> int:
    """``ceil(position × handling ÷ max(agents, 1))``, at least 1 (see ``estimate_wait_for_position``)."""
    minutes = position * handling_minutes / max(agents_online, 1)
    return max(1, math.ceil(round(minutes, 6)))


def _validate_rating(rating: Any) -> int:
    """An int 1-5 (or its decimal string); anything else is a ValueError."""
    if isinstance(rating, bool):
        raise ValueError(f"CSAT rating must be 1-5, got {rating!r}")
    if isinstance(rating, str) and rating.strip().isdigit():
        rating = int(rating.strip())
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValueError(f"CSAT rating must be 1-5, got {rating!r}")
    return rating


def _make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and a thread-safe pool."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, future=True)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        future=True,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        poolclass=StaticPool if in_memory else QueuePool,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    tune_sqlite_connection(dbapi_connection, SQLITE_BUSY_TIMEOUT_MS / 1000)


# ---------------------------------------------------------------------- store

class TicketStore:
    """Tickets, queue, agents and sessions in one SQL database."""

    def __init__(self, url: str = DEFAULT_DATABASE_URL, clock: Optional[Clock] = None) -> None:
        """Connect to ``url`` (nothing is created until ``create_schema``)."""
        self.url = url
        self.clock: Clock = clock or _utc_now
        self.engine = _make_engine(url)

    def create_schema(self) -> None:
        """Create the ``handoff_*`` and ``agent_*`` tables if missing (idempotent).

        Safe when the bot and the workspace start at the same time: if another
        process creates a table in between, the check is repeated. Every such
        collision means one more table exists, so one retry per table suffices.
        """
        for _attempt in range(len(metadata.tables)):
            try:
                metadata.create_all(self.engine, checkfirst=True)
                return
            except (OperationalError, ProgrammingError, IntegrityError):
                continue
        metadata.create_all(self.engine, checkfirst=True)

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()

    def now(self) -> datetime:
        """The store's clock as aware UTC."""
        value = self.clock()
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    # ----------------------------------------------------------- opening

    def open_ticket(
        self,
        conversation_id: str,
        channel: str,
        reason: str,
        customer_id: Optional[str] = None,
        masked_phone: Optional[str] = None,
        tier: Optional[str] = None,
        order_id: Optional[str] = None,
        summary: str = "",
        transcript_url: Optional[str] = None,
    ) -> Ticket:
        """Queue the conversation for an agent and return its ticket.

        Idempotent: if the conversation already has a waiting or assigned
        ticket, that ticket is returned unchanged.
        """
        existing = self.active_ticket_for(conversation_id)
        if existing is not None:
            return existing
        values = self._new_ticket_values(
            conversation_id, channel, reason, customer_id, masked_phone, tier,
            order_id, summary, transcript_url,
        )
        values.update(kind=LIVE, status=WAITING)
        try:
            return self._insert_ticket(values)
        except IntegrityError:  # a concurrent call opened it first
            existing = self.active_ticket_for(conversation_id)
            if existing is None:
                raise
            return existing

    def open_callback_ticket(
        self,
        conversation_id: str,
        channel: str,
        reason: str,
        customer_id: Optional[str] = None,
        masked_phone: Optional[str] = None,
        tier: Optional[str] = None,
        order_id: Optional[str] = None,
        summary: str = "",
        transcript_url: Optional[str] = None,
        *,
        message: str,
        preference: Optional[str] = None,
    ) -> Ticket:
        """Record an out-of-hours request for an agent to get back to the customer.

        One pending callback per conversation: a second call updates that
        ticket's ``message`` and ``preference`` and returns it.
        """
        values = self._new_ticket_values(
            conversation_id, channel, reason, customer_id, masked_phone, tier,
            order_id, summary, transcript_url,
        )
        values.update(
            kind=CALLBACK_KIND, status=CALLBACK,
            callback_message=message or "", callback_preference=preference,
        )
        try:
            return self._insert_ticket(values)
        except IntegrityError:
            return self._update_pending_callback(conversation_id, message, preference)

    def _new_ticket_values(
        self,
        conversation_id: str,
        channel: str,
        reason: str,
        customer_id: Optional[str],
        masked_phone: Optional[str],
        tier: Optional[str],
        order_id: Optional[str],
        summary: str,
        transcript_url: Optional[str],
    ) -> dict:
        if not conversation_id:
            raise ValueError("conversation_id is required")
        if not reason:
            raise ValueError("reason is required")
        tier = tier.lower() if tier else None
        return dict(
            conversation_id=conversation_id,
            channel=channel or "",
            priority=ticket_priority(reason, tier),
            reason=reason,
            customer_id=customer_id or None,
            customer_masked_phone=masked_phone or None,
            customer_tier=tier,
            order_id=order_id or None,
            summary=summary or "",
            transcript_url=transcript_url or None,
            created_at=_to_db(self.now()),
        )

    def _insert_ticket(self, values: dict) -> Ticket:
        with self.engine.begin() as conn:
            result = conn.execute(tickets_table.insert().values(**values))
            ticket_id = result.inserted_primary_key[0]
            return self._get(conn, ticket_id)

    def _update_pending_callback(
        self, conversation_id: str, message: str, preference: Optional[str]
    ) -> Ticket:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(_t.id).where(_t.conversation_id == conversation_id, _t.status == CALLBACK)
            ).first()
            if row is None:
                raise TicketConflict("pending callback vanished; retry")
            conn.execute(
                tickets_table.update()
                .where(_t.id == row.id)
                .values(callback_message=message or "", callback_preference=preference)
            )
            return self._get(conn, row.id)

    # ----------------------------------------------------------- reading

    def get_ticket(self, ticket_id: int) -> Optional[Ticket]:
        """The ticket with ``ticket_id``, or None."""
        with self.engine.connect() as conn:
            return self._find(conn, ticket_id)

    def active_ticket_for(self, conversation_id: str) -> Optional[Ticket]:
        """The conversation's waiting or assigned ticket, or None."""
        query = select(tickets_table).where(
            _t.conversation_id == conversation_id, _t.status.in_(ACTIVE_STATUSES)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _row_to_ticket(row) if row else None

    def waiting_queue(self) -> List[Ticket]:
        """Waiting tickets, highest priority first, then first come first served."""
        query = (
            select(tickets_table)
            .where(_t.status == WAITING)
            .order_by(_t.priority.desc(), _t.created_at.asc(), _t.id.asc())
        )
        with self.engine.connect() as conn:
            return [_row_to_ticket(r) for r in conn.execute(query).mappings()]

    def position(self, ticket_id: int) -> Optional[int]:
        """1-based place of a waiting ticket in ``waiting_queue``; None if not waiting."""
        with self.engine.connect() as conn:
            ticket = self._find(conn, ticket_id)
            if ticket is None or ticket.status != WAITING:
                return None
            created = _to_db(ticket.created_at)
            ahead = and_(
                _t.status == WAITING,
                or_(
                    _t.priority > ticket.priority,
                    and_(_t.priority == ticket.priority, _t.created_at < created),
                    and_(
                        _t.priority == ticket.priority,
                        _t.created_at == created,
                        _t.id < ticket.id,
                    ),
                ),
            )
            count = conn.execute(select(func.count()).select_from(tickets_table).where(ahead))
            return int(count.scalar_one()) + 1

    def tickets_assigned_to(self, agent_id: int) -> List[Ticket]:
        """The agent's open (assigned) tickets, oldest assignment first."""
        query = (
            select(tickets_table)
            .where(_t.agent_id == agent_id, _t.status == ASSIGNED)
            .order_by(_t.assigned_at.asc(), _t.id.asc())
        )
        with self.engine.connect() as conn:
            return [_row_to_ticket(r) for r in conn.execute(query).mappings()]

    def callback_tickets(self) -> List[Ticket]:
        """Pending out-of-hours callbacks, highest priority first, then oldest."""
        query = (
            select(tickets_table)
            .where(_t.status == CALLBACK)
            .order_by(_t.priority.desc(), _t.created_at.asc(), _t.id.asc())
        )
        with self.engine.connect() as conn:
            return [_row_to_ticket(r) for r in conn.execute(query).mappings()]

    # ------------------------------------------------------- wait estimate

    def average_handling_minutes(self) -> float:
        """Mean assigned->closed minutes of the last 20 closed live tickets (default 5)."""
        query = (
            select(_t.assigned_at, _t.closed_at)
            .where(
                _t.status == CLOSED,
                _t.kind == LIVE,
                _t.assigned_at.isnot(None),
                _t.closed_at.isnot(None),
            )
            .order_by(_t.closed_at.desc(), _t.id.desc())
            .limit(HANDLING_SAMPLE)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        durations = [max((r.closed_at - r.assigned_at).total_seconds(), 0.0) for r in rows]
        if not durations:
            return DEFAULT_HANDLING_MINUTES
        return sum(durations) / len(durations) / 60.0

    def estimate_wait_for_position(self, position: int) -> int:
        """Minutes a customer at ``position`` should expect to wait.

        ``ceil(position × H ÷ A)``, at least 1, where ``H`` is
        ``average_handling_minutes()`` (mean handling time of the last 20
        closed tickets, 5 when there are none) and ``A`` is ``agents_online()``
        (agents with a heartbeat in the last 60 s), counted as 1 when nobody
        is online. Each online agent frees a seat every ``H`` minutes on
        average, so the queue drains at ``A / H`` customers per minute.
        """
        return _wait_minutes(position, self.agents_online(), self.average_handling_minutes())

    def estimated_wait_minutes(self, ticket_id: int) -> int:
        """Estimated wait of a waiting ticket (see ``estimate_wait_for_position``); 0 if not waiting."""
        position = self.position(ticket_id)
        return 0 if position is None else self.estimate_wait_for_position(position)

    def queue_snapshot(self) -> List[QueueEntry]:
        """``waiting_queue`` with positions and wait estimates, in three queries."""
        queue = self.waiting_queue()
        if not queue:
            return []
        agents = self.agents_online()
        handling = self.average_handling_minutes()
        return [
            QueueEntry(t, i, _wait_minutes(i, agents, handling))
            for i, t in enumerate(queue, start=1)
        ]

    # ----------------------------------------------------------- changing

    def claim(self, ticket_id: int, agent_id: int) -> bool:
        """Assign a waiting ticket to the agent; exactly one concurrent claim wins.

        A single conditional ``UPDATE ... WHERE status = 'waiting'``, so the
        database decides the winner. Returns False if the ticket is not waiting.
        """
        statement = (
            tickets_table.update()
            .where(_t.id == ticket_id, _t.status == WAITING)
            .values(status=ASSIGNED, agent_id=agent_id, assigned_at=_to_db(self.now()))
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def close(self, ticket_id: int, agent_id: int) -> Ticket:
        """Close an assigned ticket; only its assignee may.

        Raises ``TicketNotFound``, ``NotAssignee`` or ``TicketConflict`` (not assigned).
        """
        statement = (
            tickets_table.update()
            .where(_t.id == ticket_id, _t.status == ASSIGNED, _t.agent_id == agent_id)
            .values(status=CLOSED, closed_at=_to_db(self.now()))
        )
        with self.engine.begin() as conn:
            changed = conn.execute(statement).rowcount == 1
            ticket = self._get(conn, ticket_id)
        if not changed:
            self._raise_not_assigned(ticket, agent_id)
        return ticket

    def resolve_callback(self, ticket_id: int, agent_id: int) -> Ticket:
        """Mark a pending callback as handled by the agent (status ``closed``)."""
        now = _to_db(self.now())
        statement = (
            tickets_table.update()
            .where(_t.id == ticket_id, _t.status == CALLBACK)
            .values(status=CLOSED, agent_id=agent_id, assigned_at=now, closed_at=now)
        )
        with self.engine.begin() as conn:
            changed = conn.execute(statement).rowcount == 1
            ticket = self._get(conn, ticket_id)
        if not changed:
            raise TicketConflict(f"ticket {ticket_id} is {ticket.status}, not a pending callback")
        return ticket

    def cancel_by_customer(self, conversation_id: str) -> Optional[Ticket]:
        """Cancel the conversation's *waiting* ticket; None if there is none.

        An assigned ticket is not cancelled (an agent is already on it).
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                select(_t.id).where(_t.conversation_id == conversation_id, _t.status == WAITING)
            ).first()
            if row is None:
                return None
            changed = conn.execute(
                tickets_table.update()
                .where(_t.id == row.id, _t.status == WAITING)
                .values(status=CANCELLED, closed_at=_to_db(self.now()))
            ).rowcount
            return self._get(conn, row.id) if changed else None

    def record_csat(self, conversation_id: str, rating: Any) -> Optional[Ticket]:
        """Store a 1-5 rating on the conversation's latest closed, unrated live ticket.

        Raises ``ValueError`` for a rating outside 1-5; returns None when no
        ticket is waiting for a rating.
        """
        value = _validate_rating(rating)
        latest = (
            select(_t.id)
            .where(
                _t.conversation_id == conversation_id,
                _t.status == CLOSED,
                _t.kind == LIVE,
                _t.csat_rating.is_(None),
            )
            .order_by(_t.closed_at.desc(), _t.id.desc())
            .limit(1)
        )
        with self.engine.begin() as conn:
            row = conn.execute(latest).first()
            if row is None:
                return None
            changed = conn.execute(
                tickets_table.update()
                .where(_t.id == row.id, _t.csat_rating.is_(None))
                .values(csat_rating=value, csat_at=_to_db(self.now()))
            ).rowcount
            return self._get(conn, row.id) if changed else None

    def set_transcript_url(self, ticket_id: int, url: str) -> None:
        """Record where agents read the ticket's transcript."""
        with self.engine.begin() as conn:
            conn.execute(tickets_table.update().where(_t.id == ticket_id)
                         .values(transcript_url=url))

    def record_bot_csat(self, conversation_id: str, rating: Any) -> bool:
        """Store the rating of a bot-resolved conversation; ``False`` if it has one."""
        value = _validate_rating(rating)
        try:
            with self.engine.begin() as conn:
                conn.execute(bot_csat_table.insert().values(
                    conversation_id=conversation_id, rating=value,
                    created_at=_to_db(self.now())))
        except IntegrityError:
            return False
        return True

    def bot_csat(self, conversation_id: str) -> Optional[int]:
        """The bot-resolved rating of a conversation, if any."""
        with self.engine.connect() as conn:
            return conn.execute(select(bot_csat_table.c.rating).where(
                bot_csat_table.c.conversation_id == conversation_id)).scalar()

    def set_last_notified_position(
        self, ticket_id: int, position: Optional[int], *, expected: Any = ...
    ) -> bool:
        """Remember the queue position last told to the customer.

        With ``expected`` (an int or None) the write only happens if the stored
        value still equals it (compare-and-set, so two notifiers never send the
        same update). Returns True if a row was written.
        """
        condition = _t.id == ticket_id
        if expected is not ...:
            stored = _t.last_notified_position
            condition = and_(condition, stored.is_(None) if expected is None else stored == expected)
        statement = tickets_table.update().where(condition).values(last_notified_position=position)
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def _find(self, conn: Connection, ticket_id: int) -> Optional[Ticket]:
        row = conn.execute(select(tickets_table).where(_t.id == ticket_id)).mappings().first()
        return _row_to_ticket(row) if row else None

    def _get(self, conn: Connection, ticket_id: int) -> Ticket:
        ticket = self._find(conn, ticket_id)
        if ticket is None:
            raise TicketNotFound(f"no ticket {ticket_id}")
        return ticket

    @staticmethod
    def _raise_not_assigned(ticket: Ticket, agent_id: int) -> NoReturn:
        if ticket.agent_id != agent_id:
            raise NotAssignee(f"ticket {ticket.id} is not assigned to agent {agent_id}")
        raise TicketConflict(f"ticket {ticket.id} is {ticket.status}, not assigned")

    # ------------------------------------------------------------- agents

    def create_agent(self, username: str, display_name: str, password: str) -> Agent:
        """Create an agent account; the password is stored as a salted scrypt hash.

        Raises ``ValueError`` for an empty username/name or a password shorter
        than 8 characters, ``AgentExists`` for a taken username.
        """
        username = username.strip()
        display_name = display_name.strip()
        if not username or not display_name:
            raise ValueError("username and display name are required")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
        values = dict(
            username=username,
            display_name=display_name,
            password_hash=hash_password(password),
            active=True,
            created_at=_to_db(self.now()),
        )
        try:
            with self.engine.begin() as conn:
                agent_id = conn.execute(agents_table.insert().values(**values)).inserted_primary_key[0]
        except IntegrityError as exc:
            raise AgentExists(f"agent {username!r} already exists") from exc
        agent = self.get_agent(agent_id)
        assert agent is not None
        return agent

    def set_password(self, username: str, password: str) -> bool:
        """Replace an agent's password; False if there is no such agent."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
        statement = (
            agents_table.update()
            .where(_a.username == username.strip())
            .values(password_hash=hash_password(password))
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def get_agent(self, agent_id: int) -> Optional[Agent]:
        """The agent with ``agent_id``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(agents_table).where(_a.id == agent_id)).mappings().first()
        return _row_to_agent(row) if row else None

    def authenticate(self, username: str, password: str) -> Optional[Agent]:
        """The active agent if the password matches, else None (timing does not reveal which)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(agents_table).where(_a.username == username.strip())
            ).mappings().first()
        stored = row["password_hash"] if row else _dummy_hash()
        matches = verify_password(password, stored)
        if row is None or not matches or not row["active"]:
            return None
        return _row_to_agent(row)

    def create_session(self, agent_id: int, ttl: timedelta) -> str:
        """Start a session; returns the secret token (only its SHA-256 is stored)."""
        token = secrets.token_urlsafe(32)
        now = self.now()
        with self.engine.begin() as conn:
            conn.execute(sessions_table.delete().where(_s.expires_at <= _to_db(now)))
            conn.execute(
                sessions_table.insert().values(
                    token_hash=_hash_token(token),
                    agent_id=agent_id,
                    created_at=_to_db(now),
                    expires_at=_to_db(now + ttl),
                )
            )
        return token

    def agent_for_session(self, token: str) -> Optional[Agent]:
        """The active agent of an unexpired session token, or None."""
        if not token:
            return None
        query = (
            select(agents_table)
            .join(sessions_table, _s.agent_id == _a.id)
            .where(
                _s.token_hash == _hash_token(token),
                _s.expires_at > _to_db(self.now()),
                _a.active.is_(True),
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _row_to_agent(row) if row else None

    def end_session(self, token: str) -> None:
        """Forget a session token (logout)."""
        with self.engine.begin() as conn:
            conn.execute(sessions_table.delete().where(_s.token_hash == _hash_token(token)))

    def heartbeat(self, agent_id: int) -> None:
        """Mark the agent as online now."""
        statement = agents_table.update().where(_a.id == agent_id).values(
            last_seen_at=_to_db(self.now())
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def go_offline(self, agent_id: int) -> None:
        """Stop counting the agent as online (logout)."""
        with self.engine.begin() as conn:
            conn.execute(agents_table.update().where(_a.id == agent_id).values(last_seen_at=None))

    def agents_online(self) -> int:
        """Number of active agents with a heartbeat in the last 60 seconds."""
        since = _to_db(self.now() - ONLINE_WINDOW)
        query = select(func.count()).select_from(agents_table).where(
            _a.active.is_(True), _a.last_seen_at >= since
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


# -------------------------------------------------------------- service hours

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_service_hours(spec: str) -> List[Tuple[time, Optional[time]]]:
    """Parse ``"09:00-22:00"`` (or several, comma-separated) into (start, end) pairs.

    ``end`` is exclusive; ``24:00`` becomes None (end of day). A range whose
    end is before its start wraps past midnight (``"22:00-06:00"``).
    """
    ranges: List[Tuple[time, Optional[time]]] = []
    for part in spec.split(","):
        match = _RANGE.match(part)
        if not match:
            raise ValueError(f"bad service hours {spec!r}; expected like 09:00-22:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise ValueError(f"bad service hours {spec!r}")
        ranges.append((time(h1, m1), None if h2 == 24 else time(h2, m2)))
    return ranges


def within_service_hours(
    now: Optional[datetime] = None,
    spec: Optional[str] = None,
    tz: Optional[str] = None,
) -> bool:
    """True if ``now`` falls inside the service hours (start inclusive, end exclusive).

    ``spec`` defaults to env ``KEFU_SERVICE_HOURS`` or ``"09:00-22:00"``;
    ``tz`` to env ``KEFU_SERVICE_TIMEZONE`` or ``"Asia/Shanghai"``. A naive
    ``now`` is taken as UTC; None means the current time.
    """
    spec = spec or os.environ.get(SERVICE_HOURS_ENV) or DEFAULT_SERVICE_HOURS
    zone = ZoneInfo(tz or os.environ.get(SERVICE_TIMEZONE_ENV) or DEFAULT_SERVICE_TIMEZONE)
    now = now or _utc_now()
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    local = now.astimezone(zone).time().replace(tzinfo=None)
    return any(_in_range(local, start, end) for start, end in parse_service_hours(spec))


def _in_range(moment: time, start: time, end: Optional[time]) -> bool:
    if end is None:
        return moment >= start
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end  # wraps past midnight


__all__ = (
    "Agent", "AgentExists", "HandoffError", "NotAssignee", "QueueEntry", "Ticket",
    "TicketConflict", "TicketNotFound", "TicketStore", "hash_password",
    "parse_service_hours", "ticket_priority", "verify_password", "within_service_hours",
    "WAITING", "ASSIGNED", "CLOSED", "CANCELLED", "CALLBACK",
)
