"""Drive the Kefu web chat page in headless Chromium (helper module, not tests).

Uses Playwright for Python with Debian's Chromium (``apt-get install -y
chromium``); ``playwright install`` is never needed nor run. Typical use::

    from tests.browser import open_chat   # or: from browser import open_chat

    with open_chat(web_url) as chat:
        chat.wait_connected()
        chat.send("你好")
        print(chat.wait_for_bot_text("您好"))

Timeouts are in seconds.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

CHROMIUM_PATH = os.environ.get("KEFU_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT = 30.0
SERVE_WEB = Path(__file__).resolve().parent.parent / "scripts" / "serve_web.py"

BOT_SELECTOR = ".kefu-msg.kefu-bot"
USER_SELECTOR = ".kefu-msg.kefu-user"

# One JS snippet shared by the waits: the text of each bot message's text
# bubble ("" for a message with only an image or buttons).
_BOT_TEXTS_JS = """
() => Array.from(document.querySelectorAll('.kefu-msg.kefu-bot')).map(
    m => Array.from(m.querySelectorAll('.kefu-text')).map(t => t.textContent).join('\\n'))
"""


def chromium_available() -> bool:
    """Return True if the Chromium binary exists and Playwright can be imported."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return os.access(CHROMIUM_PATH, os.X_OK)


class ChatPage:
    """A loaded chat page with helpers that act like a customer."""

    def __init__(self, page: Any, url: str) -> None:
        """Wrap a Playwright ``Page`` already showing the chat at ``url``."""
        self.page = page
        self.url = url
        self.errors: List[str] = []  # uncaught JS errors on the page
        self._mark = 0  # number of bot messages when the last message was sent
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    # ----- state -----

    def status(self) -> str:
        """Return the connection state text shown in ``#kefu-status``."""
        return self.page.inner_text("#kefu-status").strip()

    def wait_connected(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until the status shows 已连接 (socket connected and session confirmed)."""
        self.page.wait_for_selector(
            '#kefu-status[data-state="connected"]', timeout=timeout * 1000
        )

    def session_id(self) -> Optional[str]:
        """Return the session id kept in localStorage (None before the first confirm)."""
        return self.page.evaluate("() => window.localStorage.getItem('kefu_session_id')")

    def reload(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Reload the page (same browser context, so localStorage is kept)."""
        self.page.reload(wait_until="load", timeout=timeout * 1000)
        self._mark = 0

    # ----- reading -----

    def bot_texts(self) -> List[str]:
        """Return the text of every bot message, oldest first ("" for text-less ones)."""
        return list(self.page.evaluate(_BOT_TEXTS_JS))

    def user_texts(self) -> List[str]:
        """Return the text of every customer message, oldest first."""
        return [t.strip() for t in self.page.locator(f"{USER_SELECTOR} .kefu-text").all_inner_texts()]

    def button_titles(self, enabled_only: bool = True) -> List[str]:
        """Return the titles of the buttons / quick replies shown (enabled ones by default)."""
        selector = ".kefu-button:not([disabled])" if enabled_only else ".kefu-button"
        return [t.strip() for t in self.page.locator(selector).all_inner_texts()]

    # ----- acting -----

    def send(self, text: str, *, press_enter: bool = False) -> None:
        """Type ``text`` into ``#kefu-input`` and send it (click 发送, or press Enter).

        Later ``wait_for_bot_*`` calls only look at bot messages that arrive
        after this call.
        """
        self._mark = self.page.locator(BOT_SELECTOR).count()
        self.page.fill("#kefu-input", text)
        if press_enter:
            self.page.press("#kefu-input", "Enter")
        else:
            self.page.click("#kefu-send")

    def click_button(self, title: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Click the newest enabled button / quick reply whose title is exactly ``title``."""
        self._mark = self.page.locator(BOT_SELECTOR).count()
        exact = re.compile(r"^\s*" + re.escape(title) + r"\s*$")
        button = self.page.locator(".kefu-button:not([disabled])", has_text=exact).last
        button.click(timeout=timeout * 1000)

    def wait_for_bot_message(
        self, timeout: float = DEFAULT_TIMEOUT, since: Optional[int] = None
    ) -> str:
        """Wait for a bot message after the last send (or after index ``since``); return its text."""
        start = self._mark if since is None else since
        try:
            self.page.wait_for_function(
                "n => document.querySelectorAll('.kefu-msg.kefu-bot').length > n",
                arg=start,
                timeout=timeout * 1000,
            )
        except Exception as exc:  # playwright TimeoutError: say what was there
            raise AssertionError(
                f"no bot message within {timeout}s (status {self.status()!r}, "
                f"{start} bot messages before)"
            ) from exc
        return self.bot_texts()[start]

    def wait_for_bot_text(
        self, substring: str, timeout: float = DEFAULT_TIMEOUT, since: Optional[int] = None
    ) -> str:
        """Wait for a bot message containing ``substring``; return that message's text.

        Only messages after the last ``send``/``click_button`` count, unless
        ``since`` (an index into :meth:`bot_texts`, 0 for all) is given.
        """
        start = self._mark if since is None else since
        js = (
            "([n, sub]) => (" + _BOT_TEXTS_JS + ")().slice(n).some(t => t.includes(sub))"
        )
        try:
            self.page.wait_for_function(js, arg=[start, substring], timeout=timeout * 1000)
        except Exception as exc:  # playwright TimeoutError: say what was there
            raise AssertionError(
                f"no bot message containing {substring!r} within {timeout}s; "
                f"bot messages since #{start}: {self.bot_texts()[start:]!r}"
            ) from exc
        return next(t for t in self.bot_texts()[start:] if substring in t)

    def screenshot(self, path: str) -> None:
        """Save a PNG of the page."""
        self.page.screenshot(path=path, full_page=True)


@contextlib.contextmanager
def open_chat(
    page_url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    viewport: Optional[dict] = None,
    storage_state: Optional[Any] = None,
) -> Iterator[ChatPage]:
    """Launch headless Chromium, open ``page_url`` and yield a :class:`ChatPage`.

    Each call is a fresh browser profile (empty localStorage) unless
    ``storage_state`` is given; the browser is closed on exit.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(
                locale="zh-CN",
                viewport=viewport or {"width": 420, "height": 760},
                storage_state=storage_state,
            )
            context.set_default_timeout(timeout * 1000)
            page = context.new_page()
            chat = ChatPage(page, page_url)
            page.goto(page_url, wait_until="load", timeout=timeout * 1000)
            yield chat
        finally:
            browser.close()


@contextlib.contextmanager
def serve_chat_page(
    rasa_url: str, shop_name: Optional[str] = None, startup_timeout: float = 15.0
) -> Iterator[str]:
    """Run ``scripts/serve_web.py`` on a free port for ``rasa_url``; yield the page URL.

    The server is stopped (SIGTERM, then kill) on exit.
    """
    env: Dict[str, str] = dict(os.environ)
    if shop_name is not None:
        env["KEFU_SHOP_NAME"] = shop_name
    proc = subprocess.Popen(
        [sys.executable, str(SERVE_WEB), "--port", "0", "--rasa-url", rasa_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], startup_timeout)
        line = proc.stdout.readline().decode("utf-8", "replace") if ready else ""
        match = re.search(r"(http://\S+?/) ", line)
        if not match:
            raise RuntimeError(f"serve_web.py did not start: {line!r}")
        yield match.group(1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
