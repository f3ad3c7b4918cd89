"""Browser tests of the customer web chat page (web/chat/) in headless Chromium.

Two groups:

* against the real stack (``kefu_stack`` fixture from conftest.py: Rasa with
  the socketio channel plus scripts/serve_web.py): connection state, greeting,
  a shipping question, buttons, session kept across a reload;
* against a scripted fake Socket.IO server (python-socketio + aiohttp, both
  installed with Rasa) for what the bot's training data cannot promise:
  rendering of buttons / quick replies / images / odd payloads, HTML escaping,
  empty and over-long input, metadata, reconnection.

Skipped when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import ChatPage, chromium_available, open_chat, serve_chat_page  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not chromium_available(),
        reason="needs the `playwright` Python package and Debian's chromium (/usr/bin/chromium)",
    ),
]

FIRST_REPLY_TIMEOUT = 60.0  # the first message through a freshly loaded model is slow
REPLY_TIMEOUT = 30.0


# =========================================================== real Rasa stack


def _tracker_user_texts(stack: Any, session_id: str) -> List[str]:
    """Return the user messages Rasa recorded for ``session_id`` (HTTP API, with token)."""
    query = urllib.parse.urlencode({"token": stack.token})
    url = f"{stack.rasa_url.rstrip('/')}/conversations/{urllib.parse.quote(session_id)}/tracker?{query}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        tracker = json.load(resp)
    return [e.get("text") for e in tracker.get("events", []) if e.get("event") == "user"]


@pytest.mark.integration
def test_status_becomes_connected(kefu_stack: Any) -> None:
    with open_chat(kefu_stack.web_url) as chat:
        chat.wait_connected()
        assert chat.status() == "已连接"
        assert chat.session_id()
        assert chat.page.get_attribute("#kefu-input", "placeholder") == "请输入您的问题…"
        assert chat.page.inner_text("#kefu-send").strip() == "发送"
        assert chat.errors == []


@pytest.mark.integration
def test_greeting_gets_an_answer(kefu_stack: Any) -> None:
    with open_chat(kefu_stack.web_url) as chat:
        chat.wait_connected()
        chat.send("你好")
        first = chat.wait_for_bot_message(timeout=FIRST_REPLY_TIMEOUT)
        assert chat.user_texts() == ["你好"]
        assert first.strip() or chat.button_titles(), "empty bot message"
        chat.wait_for_bot_text("您好", timeout=REPLY_TIMEOUT)
        # Rasa filed the message under the page's session id (session_persistence)
        session_id = chat.session_id()
        assert session_id
        assert "你好" in _tracker_user_texts(kefu_stack, session_id)
        assert chat.errors == []


@pytest.mark.integration
def test_shipping_question(kefu_stack: Any) -> None:
    with open_chat(kefu_stack.web_url) as chat:
        chat.wait_connected()
        chat.send("运费怎么算", press_enter=True)
        answer = chat.wait_for_bot_text("运费", timeout=FIRST_REPLY_TIMEOUT)
        assert "运费" in answer
        assert chat.user_texts() == ["运费怎么算"]


@pytest.mark.integration
def test_button_click_sends_payload(kefu_stack: Any) -> None:
    """A not-understood message gets "您是想问……吗？" buttons; clicking one sends it."""
    with open_chat(kefu_stack.web_url) as chat:
        chat.wait_connected()
        chat.send("/nlu_fallback")  # what the NLU gives an unclear message
        chat.wait_for_bot_text("您是想问", timeout=FIRST_REPLY_TIMEOUT)
        assert chat.button_titles()[-1] == "转人工"
        chat.click_button("查物流进度")
        assert chat.user_texts()[-1] == "查物流进度"
        chat.wait_for_bot_text("订单号", timeout=REPLY_TIMEOUT)
        session_id = chat.session_id()
        assert session_id
        assert _tracker_user_texts(kefu_stack, session_id)[-1] == "/track_shipment"


@pytest.mark.integration
def test_reload_keeps_session_id(kefu_stack: Any) -> None:
    with open_chat(kefu_stack.web_url) as chat:
        chat.wait_connected()
        first = chat.session_id()
        assert first
        chat.reload()
        chat.wait_connected()
        assert chat.session_id() == first
        assert chat.page.get_attribute("#kefu-chat", "data-session-id") == first


# =========================================================== fake socket.io server

TINY_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42m"
    "P8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
XSS_TEXT = '<img src=x onerror="window.__kefu_xss=1"><b>粗体</b> & <script>window.__kefu_xss=2</script>'


class FakeRasa:
    """A Socket.IO server speaking Rasa's socketio channel protocol, with scripted replies."""

    def __init__(self) -> None:
        """Prepare (not start) the server."""
        self.events: List[Tuple[str, Any]] = []  # (event name, data) as received
        self.port = 0
        self.confirm_delay = 0.0  # seconds to hold back session_confirm
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-rasa", daemon=True)
        self._runner: Any = None
        self._error: Optional[BaseException] = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def received(self, event: str) -> List[Any]:
        """Return the payloads received for ``event``, oldest first."""
        return [data for name, data in list(self.events) if name == event]

    def start(self) -> None:
        """Start serving on a free port (in a background thread)."""
        self._thread.start()
        if not self._ready.wait(20) or self._error:
            raise RuntimeError(f"fake socket.io server did not start: {self._error!r}")

    def stop(self) -> None:
        """Stop serving, cancel the server's background tasks and join the thread."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(15)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._setup())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _setup(self) -> None:
        import socketio
        from aiohttp import web

        sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
        app = web.Application()
        sio.attach(app, socketio_path="socket.io")

        @sio.on("session_request")
        async def session_request(sid: str, data: Optional[Dict[str, Any]]) -> None:
            self.events.append(("session_request", data))
            data = data or {}
            session_id = data.get("session_id") or f"fake{len(self.events):04d}"
            if self.confirm_delay:
                await asyncio.sleep(self.confirm_delay)
            entered = sio.enter_room(sid, session_id)
            if inspect.isawaitable(entered):  # a coroutine from python-socketio 5.10 on
                await entered
            await sio.emit("session_confirm", session_id, room=sid)

        @sio.on("user_uttered")
        async def user_uttered(sid: str, data: Dict[str, Any]) -> None:
            self.events.append(("user_uttered", data))
            for reply in self._replies(str(data.get("message", ""))):
                if reply == "__kick__":
                    await sio.disconnect(sid)
                    return
                await sio.emit("bot_uttered", reply, room=data.get("session_id") or sid)

        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    @staticmethod
    def _replies(message: str) -> List[Any]:
        if message == "按钮":
            return [
                {
                    "text": "请选择：",
                    "quick_replies": [
                        {"content_type": "text", "title": "查询订单", "payload": "/query_order"},
                        {"content_type": "text", "title": "人工客服", "payload": "/human_handoff"},
                    ],
                },
                {"text": "或者", "buttons": [{"title": "运费说明", "payload": "/ask_shipping"}]},
            ]
        if message == "xss":
            return [{"text": XSS_TEXT}]
        if message == "图片":
            return [
                {"attachment": {"type": "image", "payload": {"src": TINY_PNG}}},
                {"image": "javascript:window.__kefu_xss=3"},
                {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": []}}},
                {"custom": {"anything": True}},
                "",
                {"text": "图片已发送"},
            ]
        if message == "__kick__":
            return ["__kick__"]
        return [{"text": f"收到：{message}"}]


@pytest.fixture(scope="module")
def fake_stack() -> Iterator[Tuple[FakeRasa, str]]:
    """A fake Rasa socket.io server and the chat page served for it."""
    pytest.importorskip("socketio")
    pytest.importorskip("aiohttp")
    fake = FakeRasa()
    fake.start()
    try:
        with serve_chat_page(fake.url, shop_name="测试小店") as web_url:
            yield fake, web_url
    finally:
        fake.stop()


@pytest.fixture()
def fake_chat(fake_stack: Tuple[FakeRasa, str]) -> Iterator[Tuple[ChatPage, FakeRasa]]:
    """A connected chat page talking to the fake server."""
    fake, web_url = fake_stack
    with open_chat(web_url, timeout=15) as chat:
        chat.wait_connected()
        yield chat, fake
        assert chat.errors == [], chat.errors


def test_fake_page_basics(fake_chat: Tuple[ChatPage, FakeRasa]) -> None:
    chat, fake = fake_chat
    page = chat.page
    assert page.title() == "在线客服 - 测试小店"
    assert page.inner_text("#kefu-shop") == "测试小店"
    assert page.get_attribute("#kefu-input", "maxlength") == "2000"
    session_id = chat.session_id()
    assert fake.received("session_request")[-1] in ({"session_id": None}, {"session_id": session_id})
    chat.send("在吗")
    assert chat.wait_for_bot_text("收到：在吗", timeout=10)
    sent = fake.received("user_uttered")[-1]
    assert sent == {"message": "在吗", "session_id": session_id, "metadata": {}}
    assert page.locator(".kefu-msg.kefu-user").count() == 1


def test_fake_buttons_and_quick_replies(fake_chat: Tuple[ChatPage, FakeRasa]) -> None:
    chat, fake = fake_chat
    chat.send("按钮")
    chat.wait_for_bot_text("或者", timeout=10)
    assert chat.button_titles() == ["查询订单", "人工客服", "运费说明"]
    assert chat.bot_texts() == ["请选择：", "或者"]  # button titles are not message text
    chat.click_button("人工客服")
    chat.wait_for_bot_text("收到：/human_handoff", timeout=10)
    assert chat.user_texts() == ["按钮", "人工客服"]
    assert fake.received("user_uttered")[-1]["message"] == "/human_handoff"
    # a used group of quick replies is disabled; the other message's button is not
    assert chat.button_titles() == ["运费说明"]
    chat.click_button("运费说明")
    chat.wait_for_bot_text("收到：/ask_shipping", timeout=10)
    assert chat.user_texts()[-1] == "运费说明"


def test_fake_html_is_escaped(fake_chat: Tuple[ChatPage, FakeRasa]) -> None:
    chat, _ = fake_chat
    chat.send("xss")
    chat.wait_for_bot_text("<img src=x", timeout=10)
    assert chat.bot_texts()[-1] == XSS_TEXT
    chat.send('<b onmouseover="x">用户</b>')
    chat.wait_for_bot_text("收到：<b", timeout=10)
    assert chat.user_texts()[-1] == '<b onmouseover="x">用户</b>'
    page = chat.page
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__kefu_xss") is None
    assert page.locator("#kefu-log b, #kefu-log script, #kefu-log img").count() == 0


def test_fake_images_and_odd_payloads(fake_chat: Tuple[ChatPage, FakeRasa]) -> None:
    chat, _ = fake_chat
    chat.send("图片")
    chat.wait_for_bot_text("图片已发送", timeout=10)
    page = chat.page
    images = page.locator(".kefu-msg.kefu-bot img.kefu-image")
    assert images.count() == 1
    assert images.first.get_attribute("src") == TINY_PNG
    page.wait_for_function("() => document.querySelector('img.kefu-image').complete")
    assert page.evaluate("() => document.querySelector('img.kefu-image').naturalWidth") == 1
    # javascript: image, template attachment, custom payload and "" render nothing
    assert page.locator(".kefu-msg.kefu-bot").count() == 2
    assert page.evaluate("() => window.__kefu_xss") is None


def test_fake_empty_and_long_input(fake_chat: Tuple[ChatPage, FakeRasa]) -> None:
    chat, fake = fake_chat
    page = chat.page
    before = len(fake.received("user_uttered"))
    page.fill("#kefu-input", "   \n  ")
    assert page.is_disabled("#kefu-send")
    page.press("#kefu-input", "Enter")
    page.wait_for_timeout(300)
    assert page.locator(".kefu-msg.kefu-user").count() == 0
    assert len(fake.received("user_uttered")) == before

    page.fill("#kefu-input", "")
    page.type("#kefu-input", "短")
    assert page.inner_text("#kefu-counter") == "1/2000"
    page.fill("#kefu-input", "好" * 2100)
    assert len(page.input_value("#kefu-input")) == 2000
    assert page.inner_text("#kefu-counter") == "2000/2000"
    chat.send("第一行")
    page.wait_for_timeout(100)
    page.fill("#kefu-input", "第一行")
    page.press("#kefu-input", "Shift+Enter")  # newline, not send
    page.wait_for_timeout(200)
    assert chat.user_texts() == ["第一行"]
    page.press("#kefu-input", "Enter")
    chat.wait_for_bot_text("收到：第一行", timeout=10, since=1)
    assert chat.user_texts() == ["第一行", "第一行"]
    assert page.input_value("#kefu-input") == ""
    assert page.inner_text("#kefu-counter") == "0/2000"


def test_fake_metadata_is_sent(fake_chat: Tuple[ChatPage, FakeRasa]) -> None:
    chat, fake = fake_chat
    chat.page.evaluate("() => { window.KEFU_CONFIG.metadata = {channel: 'web', uid: 42}; }")
    chat.send("带元数据")
    chat.wait_for_bot_text("收到：带元数据", timeout=10)
    assert fake.received("user_uttered")[-1]["metadata"] == {"channel": "web", "uid": 42}


def test_fake_reconnect_and_reload_keep_session(fake_chat: Tuple[ChatPage, FakeRasa]) -> None:
    chat, fake = fake_chat
    page = chat.page
    session_id = chat.session_id()
    assert session_id
    page.evaluate(
        """() => {
            window.__statuses = [];
            const el = document.getElementById('kefu-status');
            new MutationObserver(() => window.__statuses.push(el.dataset.state + ':' + el.textContent))
                .observe(el, {attributes: true, childList: true, characterData: true, subtree: true});
        }"""
    )
    chat.send("__kick__")  # the server drops the connection
    page.wait_for_function(
        "() => window.__statuses.some(s => s.startsWith('disconnected:')) && "
        "document.getElementById('kefu-status').dataset.state === 'connected'",
        timeout=15000,
    )
    statuses = page.evaluate("() => window.__statuses")
    assert "disconnected:连接已断开，正在重试…" in statuses
    assert statuses[-1] == "connected:已连接"
    assert fake.received("session_request")[-1] == {"session_id": session_id}
    chat.send("重连后")
    chat.wait_for_bot_text("收到：重连后", timeout=10)
    assert fake.received("user_uttered")[-1]["session_id"] == session_id

    chat.reload()
    chat.wait_connected()
    assert chat.session_id() == session_id
    assert fake.received("session_request")[-1] == {"session_id": session_id}


def test_fake_messages_typed_before_confirm_are_queued(fake_stack: Tuple[FakeRasa, str]) -> None:
    fake, web_url = fake_stack
    fake.confirm_delay = 2.0
    try:
        with open_chat(web_url, timeout=15) as chat:
            assert chat.page.get_attribute("#kefu-status", "data-state") == "connecting"
            assert chat.status() == "连接中…"
            chat.send("排队消息")
            assert chat.page.locator(".kefu-msg.kefu-user.kefu-pending").count() == 1
            chat.wait_connected()
            chat.wait_for_bot_text("收到：排队消息", timeout=10)
            assert chat.page.locator(".kefu-pending, .kefu-pending-note").count() == 0
            assert chat.user_texts() == ["排队消息"]
            assert fake.received("user_uttered")[-1]["session_id"] == chat.session_id()
            assert chat.errors == []
    finally:
        fake.confirm_delay = 0.0
