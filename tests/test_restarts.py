"""A human hand-over survives restarts of every process (issue #4).

The module runs its own stack (restarting the shared one would disturb other
tests): the customer queues for a person over REST, then the Rasa server, the
action server and the workspace are stopped with SIGTERM and started again,
as an operator deploying a new version would. The conversation must still be
with the humans, the agent must see the whole transcript, and the hand-back
and rating must work as if nothing happened.
"""
from __future__ import annotations

from typing import Iterator, List, Tuple

import pytest
import requests
from conftest import bot_text, fresh_sender, started
from stack import Processes, Stack, create_agent, wait_until, workspace_session

from actions.handoff.tickets import TicketStore

pytestmark = pytest.mark.integration

AGENT, PASSWORD, AGENT_NAME = "agent-restart", "restart-e2e-password", "小周"
FOLLOW_UP = "我的快递三天没动了，能帮我看看吗"
AGENT_REPLY = "您好，我是客服小周，正在帮您查询物流。"


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Stack, Processes]]:
    with started(tmp_path_factory.mktemp("restart_stack")) as running:
        create_agent(running[0], AGENT, PASSWORD, AGENT_NAME)
        yield running


@pytest.fixture
def store(own_stack: Tuple[Stack, Processes]) -> Iterator[TicketStore]:
    s = TicketStore(own_stack[0].env["KEFU_DATABASE_URL"])
    yield s
    s.dispose()


def bot_texts(stack: Stack, sender: str) -> List[str]:
    return [e.get("text") or "" for e in stack.tracker(sender)["events"] if e["event"] == "bot"]


def transcript(agent: requests.Session, stack: Stack, ticket_id: int) -> List[Tuple[str, str]]:
    response = agent.get(f"{stack.workspace_url}api/tickets/{ticket_id}/messages", timeout=30)
    response.raise_for_status()
    return [(m["role"], m["text"]) for m in response.json()["messages"]]


def test_a_handoff_survives_restarts_of_every_process(
    own_stack: Tuple[Stack, Processes], store: TicketStore
) -> None:
    stack, procs = own_stack
    agent = workspace_session(stack, AGENT, PASSWORD)
    assert agent.get(f"{stack.workspace_url}api/queue", timeout=30).ok  # on duty (heartbeat)
    sender = fresh_sender("restart")
    assert "排在第" in bot_text(stack.say(sender, "转人工"))
    ticket = store.active_ticket_for(sender)
    assert ticket is not None and ticket.status == "waiting"

    for name in ("rasa", "actions", "workspace"):
        procs.restart(name, stack)

    # still paused: the bot stays silent and the message waits for the agent
    assert stack.say(sender, FOLLOW_UP) == []
    queue = agent.get(f"{stack.workspace_url}api/queue", timeout=30).json()["queue"]
    assert ticket.id in [t["id"] for t in queue]
    assert agent.post(f"{stack.workspace_url}api/tickets/{ticket.id}/claim",
                      timeout=30).status_code == 200
    messages = transcript(agent, stack, ticket.id)
    assert ("customer", "转人工") in messages and ("customer", FOLLOW_UP) in messages
    assert any(role == "bot" and "排在第" in text for role, text in messages)

    # the workspace restarts while the agent is chatting: the login and ticket remain
    procs.restart("workspace", stack)
    reply = agent.post(f"{stack.workspace_url}api/tickets/{ticket.id}/reply",
                       json={"text": AGENT_REPLY}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert AGENT_REPLY in bot_texts(stack, sender)
    assert ("agent", AGENT_REPLY) in transcript(agent, stack, ticket.id)

    # hand-back and rating work as usual
    closed = agent.post(f"{stack.workspace_url}api/tickets/{ticket.id}/close", timeout=30)
    assert closed.status_code == 200 and closed.json()["handback"] is True
    wait_until(lambda: any("打个分" in t for t in bot_texts(stack, sender)), 30, "the CSAT question")
    assert "感谢您的评价" in bot_text(stack.say(sender, "5"))
    assert store.get_ticket(ticket.id).csat_rating == 5
    assert store.get_ticket(ticket.id).status == "closed"
