"""Human handoff end to end in real headless Chromium: customer web chat + agent workspace.

The whole stack runs (``kefu_stack``: action server, Rasa with the trained
model, web chat server, workspace). One browser, two contexts: the customer
on the web chat, the agent on the workspace. Set ``KEFU_SCREENSHOT_DIR`` to
keep screenshots of both sides.

Skipped when Playwright or /usr/bin/chromium is missing.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import CHROMIUM_ARGS, CHROMIUM_PATH, ChatPage, chromium_available  # noqa: E402
from stack import Stack, create_agent, wait_until  # noqa: E402

from actions.handoff.tickets import Ticket, TicketStore  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not chromium_available(),
        reason="needs the `playwright` Python package and Debian's chromium (/usr/bin/chromium)",
    ),
]

AGENT, PASSWORD, AGENT_NAME = "agent1", "kefu-e2e-password", "小王"
FIRST_REPLY_TIMEOUT = 60.0  # the first message through a freshly loaded model is slow
REPLY_TIMEOUT = 45.0
AGENT_REPLY = "您好，我是客服小王，请问有什么可以帮您？"
CUSTOMER_FOLLOW_UP = "我想问一下退货的运费谁出"


# ------------------------------------------------------------------ helpers

@pytest.fixture(scope="module")
def agent_account(kefu_stack: Stack) -> str:
    """The agent 小王 exists in the stack's database (created once)."""
    create_agent(kefu_stack, AGENT, PASSWORD, AGENT_NAME)
    return AGENT


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM_PATH, headless=True,
                                      args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def store(kefu_stack: Stack) -> Iterator[TicketStore]:
    """The ticket store the bot and the workspace share."""
    s = TicketStore(kefu_stack.env["KEFU_DATABASE_URL"])
    yield s
    s.dispose()


def shot(page: Any, name: str) -> None:
    """Screenshot into ``KEFU_SCREENSHOT_DIR`` when set."""
    folder = os.environ.get("KEFU_SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=os.path.join(folder, f"handoff-{name}.png"), full_page=True)


def open_customer(browser: Any, stack: Stack) -> ChatPage:
    """The customer's web chat in its own context, connected."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 420, "height": 760})
    context.set_default_timeout(30_000)
    page = context.new_page()
    chat = ChatPage(page, stack.web_url)
    page.goto(stack.web_url, wait_until="load")
    chat.wait_connected()
    return chat


def open_agent(browser: Any, stack: Stack) -> Any:
    """The workspace in its own context, logged in as 小王 (so an agent is online)."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "结束会话？" confirmation
    page.goto(stack.workspace_url)
    page.wait_for_url("**/login")
    page.fill("#username", AGENT)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_function(
        "name => (document.getElementById('agent-name') || {}).textContent === name",
        arg=AGENT_NAME
    )
    return page


def conversation_log(stack: Stack, sender: Optional[str]) -> str:
    """The Rasa tracker's events in short form, to explain a failure."""
    if not sender:
        return "(no session id)"
    try:
        events = stack.tracker(sender).get("events") or []
    except Exception as exc:  # the failure report must not fail
        return f"(tracker unavailable: {exc})"
    lines = []
    for e in events:
        kind = e.get("event")
        if kind == "user":
            intent = ((e.get("parse_data") or {}).get("intent") or {}).get("name")
            lines.append(f"user {e.get('text')!r} intent={intent}")
        elif kind == "bot":
            lines.append(f"bot {e.get('text')!r}")
        elif kind in ("action", "slot"):
            lines.append(f"{kind} {e.get('name')} {json.dumps(e.get('value'), ensure_ascii=False)}"
                         if kind == "slot" else f"action {e.get('name')}")
        else:
            lines.append(str(kind))
    return "\n  ".join(["tracker events:"] + lines)


def expect_bot(chat: ChatPage, stack: Stack, text: str, timeout: float = REPLY_TIMEOUT) -> str:
    """``chat.wait_for_bot_text`` that reports the tracker when it fails."""
    try:
        return chat.wait_for_bot_text(text, timeout=timeout)
    except AssertionError as exc:
        shot(chat.page, "failure-customer")
        raise AssertionError(f"{exc}\n{conversation_log(stack, chat.session_id())}") from None


def customer_ticket(store: TicketStore, chat: ChatPage) -> Ticket:
    """The customer's waiting/assigned ticket (the bot opened it)."""
    sender = chat.session_id()
    assert sender
    return wait_until(lambda: store.active_ticket_for(sender), 10, "the ticket of " + sender)


def close_contexts(*pages: Any) -> None:
    for page in pages:
        page.context.close()


# -------------------------------------------------------------------- tests

def test_customer_talks_to_an_agent_and_rates_the_service(
    kefu_stack: Stack, agent_account: str, browser: Any, store: TicketStore
) -> None:
    agent = open_agent(browser, kefu_stack)
    chat = open_customer(browser, kefu_stack)
    try:
        # the customer asks the bot, then for a person
        chat.send("运费怎么算")
        expect_bot(chat, kefu_stack, "运费", timeout=FIRST_REPLY_TIMEOUT)
        chat.send("转人工")
        queued = expect_bot(chat, kefu_stack, "排在第")
        assert "回复“取消”可以退出排队" in queued
        shot(chat.page, "1-customer-queued")
        ticket = customer_ticket(store, chat)
        assert ticket.status == "waiting" and ticket.reason == "request_human"

        # the agent sees it in the queue (live) and claims it
        position = wait_until(lambda: store.position(ticket.id), 5, "a queue position")
        row = agent.locator("#queue-rows tr").filter(
            has=agent.locator("td.col-pos", has_text=re.compile(rf"^{position}$"))).first
        row.wait_for(timeout=15_000)
        assert "客户要求转人工" in row.inner_text() and "网页聊天" in row.inner_text()
        shot(agent, "2-agent-queue")
        row.locator("button", has_text="接入").click()
        agent.wait_for_function("h => location.hash === h", arg=f"#/ticket/{ticket.id}")
        agent.locator(".msg-customer", has_text="转人工").first.wait_for(timeout=15_000)
        summary = agent.inner_text("#summary")
        assert "客户诉求" in summary and "运费" in summary, summary
        assert agent.inner_text("#conv-status") == "接待中"
        assert store.get_ticket(ticket.id).status == "assigned"

        # the agent replies; the customer reads it
        agent.fill("#reply-text", AGENT_REPLY)
        agent.click("#reply-send")
        agent.locator(".msg-agent", has_text=AGENT_REPLY).wait_for(timeout=15_000)
        chat.page.bring_to_front()
        expect_bot(chat, kefu_stack, AGENT_REPLY, timeout=15)

        # the customer answers; the agent sees it without reloading
        chat.send(CUSTOMER_FOLLOW_UP)
        agent.locator(".msg-customer", has_text=CUSTOMER_FOLLOW_UP).wait_for(timeout=15_000)
        assert chat.bot_texts()[-1] == AGENT_REPLY  # the paused bot said nothing
        shot(agent, "3-agent-conversation")
        shot(chat.page, "3-customer-conversation")

        # the agent hands the customer back; the bot asks for a rating
        agent.click("#close-ticket")
        agent.wait_for_selector("#closed-note:not([hidden])")
        assert agent.inner_text("#conv-status") == "已结束"
        expect_bot(chat, kefu_stack, "人工客服已结束本次服务", timeout=REPLY_TIMEOUT)
        expect_bot(chat, kefu_stack, "打个分", timeout=REPLY_TIMEOUT)
        assert "5分" in chat.button_titles()
        shot(chat.page, "4-customer-csat")
        chat.click_button("5分")
        expect_bot(chat, kefu_stack, "感谢您的评价", timeout=REPLY_TIMEOUT)
        shot(chat.page, "5-customer-thanks")

        rated = wait_until(lambda: store.get_ticket(ticket.id).csat_rating, 10, "the rating")
        assert rated == 5
        assert store.get_ticket(ticket.id).status == "closed"
        assert chat.errors == []
    finally:
        close_contexts(agent, chat.page)


def test_customer_leaves_the_queue(
    kefu_stack: Stack, agent_account: str, browser: Any, store: TicketStore
) -> None:
    agent = open_agent(browser, kefu_stack)  # an agent must be online to be queued
    chat = open_customer(browser, kefu_stack)
    try:
        chat.send("转人工")
        expect_bot(chat, kefu_stack, "排在第", timeout=FIRST_REPLY_TIMEOUT)
        ticket = customer_ticket(store, chat)
        assert ticket.status == "waiting"

        chat.send("取消")
        started = time.monotonic()
        expect_bot(chat, kefu_stack, "已为您取消排队", timeout=15)
        left_after = time.monotonic() - started
        shot(chat.page, "6-customer-left-queue")
        assert store.get_ticket(ticket.id).status == "cancelled"
        assert store.active_ticket_for(ticket.conversation_id) is None
        texts: List[str] = chat.bot_texts()
        assert sum("已为您取消排队" in t for t in texts) == 1, texts
        assert left_after < 15

        # the bot is back: it answers the next question itself
        chat.send("运费怎么算")
        expect_bot(chat, kefu_stack, "运费", timeout=REPLY_TIMEOUT)
        assert chat.errors == []
    finally:
        close_contexts(agent, chat.page)
