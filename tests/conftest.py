"""Shared fixtures: a real running Kefu stack for integration tests.

``kefu_stack`` starts the whole stack (see ``stack.py``) once per test
session. ``make test`` trains the model before pytest runs.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from stack import ROOT, TEST_CLOCK, Processes, Stack, StackError, running_stack

# The demo data and every expectation live on the demo's day: pin "now" there for
# the whole suite, so it passes on any date (a test needing another day sets its own).
os.environ["KEFU_CLOCK"] = TEST_CLOCK

__all__ = ["ROOT", "Stack", "bot_text", "fresh_sender", "started"]


@pytest.fixture(scope="session")
def kefu_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A running Kefu stack shared by the integration tests."""
    with started(tmp_path_factory.mktemp("kefu_stack")) as (stack, _procs):
        yield stack


@contextmanager
def started(workdir: Path) -> Iterator[Tuple[Stack, Processes]]:
    """``running_stack`` that fails the test (not errors) when a server cannot start."""
    try:
        with running_stack(workdir) as running:
            yield running
    except StackError as error:
        pytest.fail(str(error))


def bot_text(replies: List[dict]) -> str:
    """All reply texts joined, for assertions."""
    return "\n".join(reply.get("text", "") for reply in replies)


def fresh_sender(prefix: str = "test") -> str:
    """A new conversation id."""
    return f"{prefix}-{secrets.token_hex(6)}"
