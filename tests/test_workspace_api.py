"""The agent workspace over real HTTP.

The aiohttp app runs on a free port in a background thread with a temporary
SQLite store; Rasa is a small real HTTP server that records every request it
gets (the real Rasa is exercised by the end-to-end tests). The last test
drives the pages in headless Chromium; set ``KEFU_SCREENSHOT_DIR`` to keep
screenshots of the queue and conversation views.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from aiohttp import web
from browser import CHROMIUM_ARGS, CHROMIUM_PATH, chromium_available
from stack import WORKSPACE_HEADERS

from actions.handoff.rasa_api import RasaClient
from actions.handoff.tickets import ASSIGNED, CLOSED, TicketStore
from workspace.app import NOTIFIER, create_app
from workspace.queue_exit import is_leave_request

TOKEN = "test-rasa-token"
PASSWORD = "correct-horse-battery"
START = datetime(2024, 5, 1, 3, 0, tzinfo=timezone.utc)
HEADERS = WORKSPACE_HEADERS


class FakeClock:
    """A settable clock for the store (sessions, waiting times)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


# ------------------------------------------------------------- fake Rasa

class FakeRasa:
    """A real HTTP server standing in for Rasa; records requests, keeps trackers."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        self.events: Dict[str, List[dict]] = {}
        self.fail_status: Optional[int] = None
        self.fail_method: Optional[str] = None  # fail only this method (None: all)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def posts(self, conversation_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """Recorded POST requests (for one conversation)."""
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST"
                    and (conversation_id is None or r["conversation_id"] == conversation_id)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                segments = parts.path.split("/")  # "", "conversations", id, tail...
                cid = unquote(segments[2]) if len(segments) > 2 else ""
                record = {"method": method, "path": parts.path, "query": query,
                          "body": body, "conversation_id": cid,
                          "tail": "/".join(segments[3:])}
                with fake.lock:
                    fake.requests.append(record)
                if query.get("token") != TOKEN:
                    return self._reply(401, {"message": "bad token"})
                if fake.fail_status and fake.fail_method in (None, method):
                    return self._reply(fake.fail_status, {"message": "boom"})
                if method == "POST" and record["tail"] == "tracker/events":
                    with fake.lock:
                        fake.events.setdefault(cid, []).extend(
                            dict(e, timestamp=1714532400.0) for e in body)
                with fake.lock:
                    events = list(fake.events.get(cid, []))
                self._reply(200, {"sender_id": cid, "events": events})

            def _reply(self, status: int, data: dict) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


# ------------------------------------------------------- workspace server

class AppServer:
    """Runs an aiohttp app on a free port in its own thread and event loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 20) -> Any:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[TicketStore]:
    s = TicketStore(f"sqlite:///{tmp_path / 'kefu.db'}", clock=clock)
    s.create_schema()
    s.create_agent("wang", "小王", PASSWORD)
    s.create_agent("li", "小李", PASSWORD)
    yield s
    s.dispose()


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa()
    yield fake
    fake.stop()


@pytest.fixture
def make_server(store: TicketStore, rasa: FakeRasa) -> Iterator[Callable[..., AppServer]]:
    servers: List[AppServer] = []

    def make(rasa_url: Optional[str] = None, **kwargs: Any) -> AppServer:
        kwargs.setdefault("notifier_interval", None)
        client = RasaClient(rasa_url or rasa.url, TOKEN, timeout=3)
        server = AppServer(create_app(store, client, **kwargs))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., AppServer]) -> AppServer:
    return make_server()


def login(server: AppServer, username: str = "wang", password: str = PASSWORD) -> requests.Session:
    session = requests.Session()
    response = session.post(f"{server.url}/api/login", headers=HEADERS,
                            json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    session.headers.update(HEADERS)
    return session


def open_ticket(store: TicketStore, clock: FakeClock, cid: str, reason: str = "request_human",
                tier: str = "normal") -> int:
    clock.advance(seconds=10)
    return store.open_ticket(cid, "socketio", reason, "c-" + cid, "138****5678", tier,
                             "O" + cid, f"{cid} 的摘要", None).id


def claimed(server: AppServer, store: TicketStore, clock: FakeClock, cid: str = "conv") -> tuple:
    """A ticket claimed by agent 小王; returns (ticket id, 小王's session)."""
    ticket_id = open_ticket(store, clock, cid)
    wang = login(server)
    assert wang.post(f"{server.url}/api/tickets/{ticket_id}/claim").status_code == 200
    return ticket_id, wang


# ---------------------------------------------------------------- login

API_ROUTES = [
    ("GET", "/api/me"), ("GET", "/api/queue"), ("GET", "/api/callbacks"),
    ("GET", "/api/tickets/1"), ("GET", "/api/tickets/1/messages"),
    ("POST", "/api/tickets/1/claim"), ("POST", "/api/tickets/1/reply"),
    ("POST", "/api/tickets/1/close"), ("POST", "/api/tickets/1/handback"),
    ("POST", "/api/callbacks/1/done"), ("POST", "/api/logout"), ("GET", "/api/nope"),
]


def test_every_api_and_page_requires_login(server: AppServer, store: TicketStore, clock: FakeClock) -> None:
    open_ticket(store, clock, "conv")
    for method, path in API_ROUTES:
        response = requests.request(method, server.url + path, headers=HEADERS, json={"text": "x"})
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "unauthenticated"
    for path in ("/", "/static/app.js", "/anything"):
        response = requests.get(server.url + path, allow_redirects=False)
        assert response.status_code == 302 and response.headers["Location"] == "/login", path
    assert requests.get(server.url + "/login").status_code == 200
    assert store.get_ticket(1).status == "waiting"  # nothing happened


def test_login_with_wrong_password_fails(server: AppServer) -> None:
    for username, password in (("wang", "wrong-password"), ("nobody", PASSWORD), ("wang", "")):
        response = requests.post(f"{server.url}/api/login", headers=HEADERS,
                                 json={"username": username, "password": password})
        assert response.status_code in (400, 401)
        assert "Set-Cookie" not in response.headers
        assert response.json()["error"]


def test_login_sets_a_strict_httponly_cookie(server: AppServer) -> None:
    response = requests.post(f"{server.url}/api/login", headers=HEADERS,
                             json={"username": "wang", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert response.json()["agent"]["display_name"] == "小王"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    session = requests.Session()
    session.cookies.update(response.cookies)
    assert session.get(f"{server.url}/api/me").json()["agent"]["username"] == "wang"
    assert session.get(f"{server.url}/login", allow_redirects=False).headers["Location"] == "/"


def test_repeated_wrong_passwords_are_throttled(server: AppServer) -> None:
    statuses = [
        requests.post(f"{server.url}/api/login", headers=HEADERS,
                      json={"username": "wang", "password": "wrong-password"}).status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]


def test_posts_need_json_and_the_custom_header(server: AppServer, store: TicketStore, clock: FakeClock) -> None:
    ticket_id = open_ticket(store, clock, "conv")
    wang = login(server)
    url = f"{server.url}/api/tickets/{ticket_id}/claim"
    no_header = requests.post(url, cookies=wang.cookies, json={})
    form = requests.post(url, cookies=wang.cookies, data={"a": "b"},
                         headers={"X-Kefu-Workspace": "1"})
    foreign = requests.post(url, cookies=wang.cookies, json={},
                            headers={"X-Kefu-Workspace": "1", "Origin": "https://evil.example"})
    assert [r.status_code for r in (no_header, form, foreign)] == [403, 403, 403]
    assert store.get_ticket(ticket_id).status == "waiting"


def test_sessions_expire(server: AppServer, clock: FakeClock) -> None:
    wang = login(server)
    clock.advance(hours=8, seconds=-5)
    assert wang.get(f"{server.url}/api/queue").status_code == 200
    clock.advance(seconds=10)
    assert wang.get(f"{server.url}/api/queue").status_code == 401
    assert wang.get(f"{server.url}/", allow_redirects=False).status_code == 302


def test_logout_ends_the_session(server: AppServer, store: TicketStore) -> None:
    wang = login(server)
    wang.get(f"{server.url}/api/queue")
    assert store.agents_online() == 1
    assert wang.post(f"{server.url}/api/logout").status_code == 200
    assert wang.get(f"{server.url}/api/queue").status_code == 401
    assert store.agents_online() == 0


# ---------------------------------------------------------------- queue

def test_queue_json_is_ordered_and_complete(server: AppServer, store: TicketStore, clock: FakeClock) -> None:
    a = open_ticket(store, clock, "a")
    b = open_ticket(store, clock, "b", tier="platinum")
    c = open_ticket(store, clock, "c", reason="complaint")
    d = open_ticket(store, clock, "d")
    wang = login(server)

    data = wang.get(f"{server.url}/api/queue").json()

    assert [t["id"] for t in data["queue"]] == [b, c, a, d]
    assert [t["position"] for t in data["queue"]] == [1, 2, 3, 4]
    first = data["queue"][0]
    assert first["tier_label"] == "铂金会员" and first["masked_phone"] == "138****5678"
    assert first["order_id"] == "Ob" and first["waiting_seconds"] == 20
    assert data["queue"][1]["reason_label"] == "投诉"
    assert "summary" not in first  # only the assignee reads the conversation
    assert data["agents_online"] == 1  # the poll itself is a heartbeat
    assert data["agent"]["display_name"] == "小王"


def test_two_concurrent_claims_one_wins(server: AppServer, store: TicketStore, clock: FakeClock) -> None:
    sessions = [login(server, "wang"), login(server, "li")]
    for round_no in range(8):
        ticket_id = open_ticket(store, clock, f"race{round_no}")
        barrier = threading.Barrier(2)
        results: List[requests.Response] = []

        def claim(session: requests.Session) -> None:
            barrier.wait()
            results.append(session.post(f"{server.url}/api/tickets/{ticket_id}/claim"))

        threads = [threading.Thread(target=claim, args=(s,)) for s in sessions]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.status_code for r in results) == [200, 409]
        loser = next(r for r in results if r.status_code == 409)
        assert loser.json()["error"] == "已被其他客服接入"
        assert store.get_ticket(ticket_id).status == ASSIGNED


def test_my_conversations_are_listed(server: AppServer, store: TicketStore, clock: FakeClock) -> None:
    ticket_id, wang = claimed(server, store, clock)
    data = wang.get(f"{server.url}/api/queue").json()
    assert data["queue"] == [] and [t["id"] for t in data["mine"]] == [ticket_id]
    li = login(server, "li")
    assert li.get(f"{server.url}/api/queue").json()["mine"] == []


# --------------------------------------------------------- conversation

def test_other_agents_cannot_read_reply_or_close(
    server: AppServer, store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    ticket_id, _ = claimed(server, store, clock)
    waiting = open_ticket(store, clock, "other")
    li = login(server, "li")
    base = f"{server.url}/api/tickets/{ticket_id}"

    responses = [
        li.get(base), li.get(base + "/messages"),
        li.post(base + "/reply", json={"text": "我来回复"}), li.post(base + "/close"),
        li.post(base + "/handback"), li.get(f"{server.url}/api/tickets/{waiting}"),
    ]

    assert [r.status_code for r in responses] == [403] * 6
    assert all(r.json()["error"] for r in responses)
    assert store.get_ticket(ticket_id).status == ASSIGNED
    assert rasa.requests == []  # nothing reached the customer
    assert li.get(f"{server.url}/api/tickets/99999").status_code == 404


def test_conversation_detail_has_summary_and_profile(
    make_server: Callable[..., AppServer], store: TicketStore, clock: FakeClock
) -> None:
    asked: List[str] = []

    def profile(customer_id: str) -> dict:
        asked.append(customer_id)
        return {"name": "张*", "orders": [{"order_id": "O1", "status": "已发货"}]}

    server = make_server(customer_profile=profile)
    ticket_id, wang = claimed(server, store, clock)

    data = wang.get(f"{server.url}/api/tickets/{ticket_id}").json()

    assert data["ticket"]["summary"] == "conv 的摘要"
    assert data["ticket"]["masked_phone"] == "138****5678"
    assert data["profile"]["orders"][0]["order_id"] == "O1"
    assert asked == ["c-conv"]


def test_failing_profile_lookup_is_reported_politely(
    make_server: Callable[..., AppServer], store: TicketStore, clock: FakeClock
) -> None:
    def broken(customer_id: str) -> dict:
        raise ConnectionError("CRM down")

    server = make_server(customer_profile=broken)
    ticket_id, wang = claimed(server, store, clock)
    response = wang.get(f"{server.url}/api/tickets/{ticket_id}")
    assert response.status_code == 200
    assert response.json()["profile"] is None
    assert response.json()["profile_error"] == "客户资料暂时无法获取"


def test_transcript_comes_from_the_tracker(
    server: AppServer, store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    rasa.events["conv"] = [
        {"event": "action", "name": "action_listen", "timestamp": 1714532400.0},
        {"event": "user", "text": "我要投诉", "timestamp": 1714532401.0},
        {"event": "bot", "text": "正在为您转接人工客服", "timestamp": 1714532402.0,
         "data": {"buttons": [{"title": "取消排队", "payload": "/cancel"}]}},
        {"event": "pause", "timestamp": 1714532403.0},
        {"event": "user", "text": "EXTERNAL: x", "metadata": {"is_external": True},
         "timestamp": 1714532404.0},
    ]
    ticket_id, wang = claimed(server, store, clock)
    url = f"{server.url}/api/tickets/{ticket_id}/messages"

    data = wang.get(url).json()

    assert [(m["role"], m["text"]) for m in data["messages"]] == [
        ("customer", "我要投诉"),
        ("bot", "正在为您转接人工客服\n［按钮：取消排队］"),
        ("system", "会话已转接人工客服，机器人暂停回复"),
    ]
    assert data["messages"][0]["time"] == "05-01 11:00:01"  # Asia/Shanghai
    rasa.events["conv"].append({"event": "user", "text": "在吗", "timestamp": 1714532410.0})
    newer = wang.get(url, params={"after": data["total"]}).json()
    assert [m["text"] for m in newer["messages"]] == ["在吗"] and newer["total"] == 4


def test_reply_sends_a_bot_event_to_the_latest_channel(
    server: AppServer, store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    ticket_id, wang = claimed(server, store, clock)

    response = wang.post(f"{server.url}/api/tickets/{ticket_id}/reply", json={"text": " 您好，我是客服小王 "})

    assert response.status_code == 200
    [post] = rasa.posts("conv")
    assert post["tail"] == "tracker/events"
    assert post["query"] == {"output_channel": "latest", "execute_side_effects": "true", "token": TOKEN}
    assert post["body"] == [{"event": "bot", "text": "您好，我是客服小王", "metadata": {"agent": "小王"}}]
    messages = wang.get(f"{server.url}/api/tickets/{ticket_id}/messages").json()["messages"]
    assert messages[-1]["role"] == "agent" and messages[-1]["agent"] == "小王"


def test_empty_or_huge_replies_are_refused(
    server: AppServer, store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    ticket_id, wang = claimed(server, store, clock)
    url = f"{server.url}/api/tickets/{ticket_id}/reply"
    assert wang.post(url, json={"text": "   "}).status_code == 400
    assert wang.post(url, json={"text": "字" * 2001}).status_code == 400
    assert wang.post(url, json=["not", "an", "object"]).status_code == 400
    assert rasa.posts() == []


def test_close_resumes_the_bot_and_triggers_the_csat_intent(
    server: AppServer, store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    ticket_id, wang = claimed(server, store, clock)

    response = wang.post(f"{server.url}/api/tickets/{ticket_id}/close")

    assert response.status_code == 200 and response.json()["handback"] is True
    resume, trigger = rasa.posts("conv")
    assert resume["tail"] == "tracker/events" and resume["body"] == [{"event": "resume"}]
    assert trigger["tail"] == "trigger_intent"
    assert trigger["body"] == {"name": "EXTERNAL_handoff_closed"}
    assert trigger["query"]["output_channel"] == "latest" and trigger["query"]["token"] == TOKEN
    assert store.get_ticket(ticket_id).status == CLOSED
    again = wang.post(f"{server.url}/api/tickets/{ticket_id}/close")
    late = wang.post(f"{server.url}/api/tickets/{ticket_id}/reply", json={"text": "还在吗"})
    assert (again.status_code, late.status_code) == (409, 409)
    assert len(rasa.posts()) == 2


# ------------------------------------------------------------- notifier

def test_notifier_sends_queue_updates_only_when_positions_change(
    server: AppServer, store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    notifier = server.app[NOTIFIER]
    first = open_ticket(store, clock, "first")
    open_ticket(store, clock, "second")

    assert server.call(notifier.run_once()) == 2
    slots, execute = rasa.posts("second")
    assert slots["body"] == [
        {"event": "slot", "name": "queue_position", "value": 2},
        {"event": "slot", "name": "queue_wait_minutes", "value": 10},
    ]
    assert slots["query"]["output_channel"] == "latest"
    assert execute["tail"] == "execute" and execute["body"] == {"name": "utter_queue_update"}
    assert execute["query"]["output_channel"] == "latest"

    assert server.call(notifier.run_once()) == 0  # nothing moved
    assert len(rasa.posts()) == 4

    store.claim(first, store.authenticate("wang", PASSWORD).id)
    assert server.call(notifier.run_once()) == 1
    assert [p["body"] for p in rasa.posts("second")[2:]] == [
        [{"event": "slot", "name": "queue_position", "value": 1},
         {"event": "slot", "name": "queue_wait_minutes", "value": 5}],
        {"name": "utter_queue_update"},
    ]
    assert len(rasa.posts("first")) == 2  # the claimed one hears nothing more


def test_notifier_runs_in_the_background(
    make_server: Callable[..., AppServer], store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    ticket_id = open_ticket(store, clock, "bg")
    make_server(notifier_interval=0.1)
    deadline = time.monotonic() + 10
    while store.get_ticket(ticket_id).last_notified_position != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.get_ticket(ticket_id).last_notified_position == 1
    assert [p["tail"] for p in rasa.posts("bg")][:2] == ["tracker/events", "execute"]


# ------------------------------------------------------------ queue exit

def said(text: str, intent: str = "inform", ts: float = 1714532500.0) -> dict:
    """A customer message as Rasa stores it while the bot is paused."""
    return {"event": "user", "text": text, "timestamp": ts,
            "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": []}}


QUEUED = [said("转人工", "request_human", 1714532405.0),
          {"event": "bot", "text": "正在为您转接人工客服，您当前排在第1位", "timestamp": 1714532406.0},
          {"event": "pause", "timestamp": 1714532406.0}]


@pytest.mark.parametrize("text,intent,leaves", [
    ("取消", "inform", True), (" 取消排隊 ", "inform", True), ("不用了。", "inform", True),
    ("不排了！", "inform", True), ("算了", "inform", True), ("不是这个", "deny", True),
    ("/deny", "deny", True), ("取消订单", "cancel_order", False), ("在吗", "inform", False),
])
def test_which_messages_mean_leaving_the_queue(text: str, intent: str, leaves: bool) -> None:
    assert is_leave_request(said(text, intent)) is leaves
    assert not is_leave_request({"event": "bot", "text": "取消"})
    assert not is_leave_request(dict(said("取消"), metadata={"is_external": True}))


def test_customer_leaves_the_queue_and_the_bot_takes_over(
    server: AppServer, store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    notifier = server.app[NOTIFIER]
    leave = open_ticket(store, clock, "leave")
    stay = open_ticket(store, clock, "stay")
    with_agent = open_ticket(store, clock, "agent")
    store.claim(with_agent, store.authenticate("li", PASSWORD).id)
    rasa.events["leave"] = QUEUED + [said("在吗"), said("取消排隊", ts=1714532510.0)]
    rasa.events["stay"] = QUEUED + [said("快点")]
    rasa.events["agent"] = QUEUED + [said("算了")]

    assert server.call(notifier.run_once()) == 1  # "stay" hears it moved up

    assert store.get_ticket(leave).status == "cancelled"
    resume, trigger = rasa.posts("leave")
    assert resume["tail"] == "tracker/events"
    assert resume["body"] == [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
    assert resume["query"]["output_channel"] == "latest"
    assert trigger["tail"] == "trigger_intent" and trigger["body"] == {"name": "EXTERNAL_queue_left"}
    assert store.get_ticket(stay).status == "waiting"
    assert store.get_ticket(stay).last_notified_position == 1
    assert store.get_ticket(with_agent).status == ASSIGNED  # the agent's customer is left alone
    assert [r for r in rasa.requests if r["conversation_id"] == "agent"] == []  # not even read

    rasa.requests.clear()
    assert server.call(notifier.exits.run_once()) == 0
    assert [(r["method"], r["conversation_id"]) for r in rasa.requests] == [("GET", "stay")]


def test_only_messages_after_the_ticket_was_opened_count(
    server: AppServer, store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    exits = server.app[NOTIFIER].exits
    opened = START.timestamp() + 10
    open_ticket(store, clock, "before")
    open_ticket(store, clock, "old-handoff")
    open_ticket(store, clock, "no-pause-yet")
    rasa.events["before"] = [said("算了", "deny", opened - 60)] + QUEUED
    # an earlier handoff (paused, "不用了", resumed), then the new request not yet paused
    rasa.events["old-handoff"] = [{"event": "pause", "timestamp": opened - 90},
                                  said("不用了", ts=opened - 80),
                                  {"event": "resume", "timestamp": opened - 70},
                                  said("转人工", "request_human", opened - 1)]
    rasa.events["no-pause-yet"] = [said("转人工", "request_human", opened + 10),
                                   said("不排了", ts=opened + 25)]

    assert server.call(exits.run_once()) == 1
    assert [t.conversation_id for t in store.waiting_queue()] == ["before", "old-handoff"]


def test_queue_exit_survives_rasa_outages(
    make_server: Callable[..., AppServer], server: AppServer, store: TicketStore,
    clock: FakeClock, rasa: FakeRasa
) -> None:
    ticket_id = open_ticket(store, clock, "leave")
    rasa.events["leave"] = QUEUED + [said("取消")]
    down = make_server(rasa_url="http://127.0.0.1:9")
    assert down.call(down.app[NOTIFIER].run_once()) == 0
    assert store.get_ticket(ticket_id).status == "waiting"

    exits = server.app[NOTIFIER].exits
    with rasa_failing(rasa, 503, method="POST"):  # tracker readable, hand-back fails
        assert server.call(server.app[NOTIFIER].run_once()) == 0
    assert store.get_ticket(ticket_id).status == "cancelled"
    assert rasa.posts("leave") and all(p["tail"] == "tracker/events" for p in rasa.posts("leave"))

    rasa.requests.clear()
    assert server.call(exits.run_once()) == 0  # retried: resumed although no longer waiting
    assert [p["tail"] for p in rasa.posts("leave")] == ["tracker/events", "trigger_intent"]
    assert rasa.posts("leave")[1]["body"] == {"name": "EXTERNAL_queue_left"}
    rasa.requests.clear()
    server.call(exits.run_once())
    assert rasa.requests == []  # done: nothing retried, nobody waiting


# ------------------------------------------------------------ Rasa down

@contextmanager
def rasa_failing(rasa: FakeRasa, status: int, method: Optional[str] = None) -> Iterator[None]:
    rasa.fail_status, rasa.fail_method = status, method
    try:
        yield
    finally:
        rasa.fail_status = rasa.fail_method = None


def assert_polite(response: requests.Response, status: int = 502) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "rasa_unavailable" and body["error"].startswith(("暂时无法", "消息未能"))
    assert "Traceback" not in response.text and TOKEN not in response.text


def test_rasa_unreachable_gives_polite_errors(
    make_server: Callable[..., AppServer], store: TicketStore, clock: FakeClock
) -> None:
    server = make_server(rasa_url="http://127.0.0.1:9")  # nothing listens there
    ticket_id, wang = claimed(server, store, clock)
    base = f"{server.url}/api/tickets/{ticket_id}"

    assert_polite(wang.get(base + "/messages"))
    assert_polite(wang.post(base + "/reply", json={"text": "您好"}))
    assert wang.get(base).status_code == 200  # summary and profile still there

    closed = wang.post(base + "/close")
    assert closed.status_code == 200
    assert closed.json()["handback"] is False and "重新交还机器人" in closed.json()["warning"]
    assert store.get_ticket(ticket_id).status == CLOSED
    assert server.call(server.app[NOTIFIER].run_once()) == 0


def test_rasa_errors_then_recovery(
    server: AppServer, store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    ticket_id, wang = claimed(server, store, clock)
    waiting = open_ticket(store, clock, "waiting")
    base = f"{server.url}/api/tickets/{ticket_id}"
    with rasa_failing(rasa, 500):
        assert_polite(wang.post(base + "/reply", json={"text": "您好"}))
        assert wang.post(base + "/close").json()["handback"] is False
        assert server.call(server.app[NOTIFIER].run_once()) == 0
        assert store.get_ticket(waiting).last_notified_position is None  # retried later

    retry = wang.post(base + "/handback")
    assert retry.status_code == 200 and retry.json()["handback"] is True
    assert rasa.posts("conv")[-1]["body"] == {"name": "EXTERNAL_handoff_closed"}
    assert server.call(server.app[NOTIFIER].run_once()) == 1


# ------------------------------------------------------------ callbacks

def test_callbacks_can_be_listed_and_marked_done(server: AppServer, store: TicketStore) -> None:
    ticket = store.open_callback_ticket("night", "socketio", "request_human", "c1", "139****0000",
                                        "gold", None, "查物流", None, message="明早回电", preference="电话")
    wang, li = login(server, "wang"), login(server, "li")

    listed = wang.get(f"{server.url}/api/callbacks").json()["callbacks"]
    assert [(c["id"], c["callback_message"], c["callback_preference"]) for c in listed] == [
        (ticket.id, "明早回电", "电话")]
    assert wang.get(f"{server.url}/api/queue").json()["callbacks"] == 1
    assert wang.post(f"{server.url}/api/callbacks/{ticket.id}/done").status_code == 200
    assert li.post(f"{server.url}/api/callbacks/{ticket.id}/done").status_code == 409
    assert wang.get(f"{server.url}/api/callbacks").json()["callbacks"] == []
    assert wang.post(f"{server.url}/api/tickets/{ticket.id}/claim").status_code == 404


# -------------------------------------------------------------- browser

DIALOGUE = [
    {"event": "user", "text": "我的快递三天没动了，订单号 O20240501", "timestamp": 1714532400.0},
    {"event": "bot", "text": "查询到您的订单已于 4 月 28 日发出，目前在杭州转运中心。",
     "timestamp": 1714532403.0},
    {"event": "user", "text": "一直是这个状态，我要投诉", "timestamp": 1714532460.0},
    {"event": "bot", "text": "非常抱歉给您带来不便，正在为您转接人工客服，请稍候。",
     "timestamp": 1714532462.0},
    {"event": "pause", "timestamp": 1714532462.5},
    {"event": "user", "text": "快点，我明天就要用", "timestamp": 1714532520.0},
]


def _profile(customer_id: str) -> dict:
    return {
        "name": "张*",
        "points": 3280,
        "recent_orders": [
            {"order_id": "O20240501", "status": "已发货", "total": "¥299.00", "created_at": "04-27"},
            {"order_id": "O20240412", "status": "已签收", "total": "¥89.90", "created_at": "04-12"},
        ],
    }


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="needs playwright and /usr/bin/chromium")
def test_agent_handles_a_conversation_in_the_browser(
    make_server: Callable[..., AppServer], store: TicketStore, clock: FakeClock, rasa: FakeRasa
) -> None:
    from playwright.sync_api import sync_playwright

    shots = os.environ.get("KEFU_SCREENSHOT_DIR")
    server = make_server(customer_profile=_profile)
    clock.now = datetime.now(timezone.utc) - timedelta(minutes=6)
    store.open_ticket("conv-vip", "socketio", "complaint", "C1001", "138****6621", "gold",
                      "O20240501", "客户反映订单 O20240501 物流三天未更新，情绪较急，明天要用，要求投诉。",
                      None)
    for i, (cid, reason, tier, phone) in enumerate([
        ("conv-2", "request_human", "platinum", "139****0087"),
        ("conv-3", "repeated_fallback", "normal", "137****4410"),
        ("conv-4", "payment_dispute", None, None),
    ]):
        clock.advance(minutes=1, seconds=17 * i)
        store.open_ticket(cid, "socketio", reason, None if tier is None else f"C20{i}", phone, tier,
                          None if tier is None else f"O2024042{i}", "摘要", None)
    clock.now = datetime.now(timezone.utc)
    rasa.events["conv-vip"] = list(DIALOGUE)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 760})
            page.set_default_timeout(10_000)
            errors: List[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda dialog: dialog.accept())

            page.goto(server.url + "/")
            assert page.url.endswith("/login")
            if shots:
                page.screenshot(path=os.path.join(shots, "workspace-login.png"))
            page.fill("#username", "wang")
            page.fill("#password", "wrong-password")
            page.click("#login-submit")
            page.wait_for_selector("#login-error:not([hidden])")
            assert page.inner_text("#login-error") == "用户名或密码错误"
            page.fill("#password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_selector("#queue-rows tr:nth-child(4)")
            rows = page.locator("#queue-rows tr").all_inner_texts()
            assert "投诉" in rows[0] and "黄金会员" in rows[0] and "138****6621" in rows[0]
            assert "铂金会员" in rows[1] and "匿名访客" in rows[3]
            assert page.inner_text("#agent-name") == "小王"
            if shots:
                page.screenshot(path=os.path.join(shots, "workspace-queue.png"), full_page=True)

            page.locator("#queue-rows tr").first.locator("button").click()
            page.wait_for_selector(".msg-customer")
            page.wait_for_selector("#profile-panel:not([hidden])")
            assert "物流三天未更新" in page.inner_text("#summary")
            assert "O20240412" in page.inner_text("#profile")
            page.fill("#reply-text", "您好，我是客服小王，正在为您催促物流，请稍等。")
            page.click("#reply-send")
            page.wait_for_selector(".msg-agent")
            assert "客服 小王" in page.inner_text(".msg-agent")
            if shots:
                page.screenshot(path=os.path.join(shots, "workspace-conversation.png"), full_page=True)
            assert rasa.posts("conv-vip")[0]["body"][0]["metadata"] == {"agent": "小王"}

            page.click("#close-ticket")
            page.wait_for_selector("#closed-note:not([hidden])")
            assert page.inner_text("#conv-status") == "已结束"
            assert [p["tail"] for p in rasa.posts("conv-vip")][1:] == ["tracker/events", "trigger_intent"]
            if shots:
                page.screenshot(path=os.path.join(shots, "workspace-closed.png"), full_page=True)

            store.open_callback_ticket("conv-night", "socketio", "request_human", "C3001",
                                       "135****2233", "platinum", "O20240430", "夜间咨询退款进度",
                                       None, message="退款什么时候到账？请明天上午联系我",
                                       preference="电话，上午 10 点后")
            page.click("a[data-tab=callbacks]")
            page.wait_for_selector("#callback-list .card")
            assert "退款什么时候到账" in page.inner_text("#callback-list")
            if shots:
                page.screenshot(path=os.path.join(shots, "workspace-callbacks.png"), full_page=True)
            page.click("#callback-list .card button")
            page.wait_for_selector("#callbacks-empty:not([hidden])")
            assert store.callback_tickets() == []
            assert errors == []
        finally:
            browser.close()
