"""Shared fixtures: a real running Kefu stack for integration tests.

``kefu_stack`` starts the whole stack (see ``stack.py``) once per test
session. ``make test`` trains the model before pytest runs.
"""
from __future__ import annotations

import os
import secrets
from typing import Iterator, List

import pytest

from stack import ROOT, TEST_CLOCK, Processes, Stack, StackError, start_stack

# The demo data and every expectation live on the demo's day: pin "now" there for
# the whole suite, so it passes on any date (a test needing another day sets its own).
os.environ["KEFU_CLOCK"] = TEST_CLOCK

__all__ = ["ROOT", "Stack", "bot_text", "fresh_sender"]


@pytest.fixture(scope="session")
def kefu_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A running Kefu stack shared by the integration tests."""
    workdir = tmp_path_factory.mktemp("kefu_stack")
    procs = Processes(workdir)
    try:
        try:
            stack = start_stack(workdir, procs)
        except StackError as error:
            pytest.fail(str(error))
        yield stack
    finally:
        procs.stop_all()


def bot_text(replies: List[dict]) -> str:
    """All reply texts joined, for assertions."""
    return "\n".join(reply.get("text", "") for reply in replies)


def fresh_sender(prefix: str = "test") -> str:
    """A new conversation id."""
    return f"{prefix}-{secrets.token_hex(6)}"
