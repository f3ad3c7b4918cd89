#!/usr/bin/env python3
"""Create an agent account for the workspace.

Usage::

    python scripts/create_agent.py USERNAME --name 显示名
    KEFU_AGENT_PASSWORD=... python scripts/create_agent.py USERNAME --name 显示名
    python scripts/create_agent.py USERNAME --reset-password

The password is asked twice (not echoed) unless ``KEFU_AGENT_PASSWORD`` is
set; it must have at least 8 characters. The database is
``KEFU_DATABASE_URL`` (default ``sqlite:///var/kefu.db``) or ``--database-url``.
Exit codes: 0 done, 1 refused (short password, mismatch, name taken), 2 usage.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actions.handoff.tickets import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    MIN_PASSWORD_LENGTH,
    AgentExists,
    TicketStore,
)

PASSWORD_ENV = "KEFU_AGENT_PASSWORD"


class Refused(Exception):
    """The request cannot be carried out; the message says why."""


def _parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Create a Kefu workspace agent account.")
    parser.add_argument("username", help="login name, e.g. wang.li")
    parser.add_argument("--name", help="display name shown to colleagues and customers (default: USERNAME)")
    parser.add_argument("--database-url", default=os.environ.get("KEFU_DATABASE_URL") or DEFAULT_DATABASE_URL,
                        help="SQLAlchemy URL (default: $KEFU_DATABASE_URL or %(default)s)")
    parser.add_argument("--reset-password", action="store_true",
                        help="set a new password for an existing agent instead")
    return parser.parse_args(argv)


def read_password() -> str:
    """The new password from ``KEFU_AGENT_PASSWORD`` or typed twice."""
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = getpass.getpass("密码 / Password: ")
        if getpass.getpass("再次输入 / Repeat: ") != password:
            raise Refused("the two passwords differ")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Refused(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    return password


def run(args: argparse.Namespace) -> str:
    """Create (or update) the agent; returns the message to print."""
    username = args.username.strip()
    if not username:
        raise Refused("username is empty")
    store = TicketStore(args.database_url)
    store.create_schema()
    try:
        password = read_password()
        if args.reset_password:
            if not store.set_password(username, password):
                raise Refused(f"no agent named {username!r}")
            return f"password of {username!r} updated"
        try:
            agent = store.create_agent(username, (args.name or username).strip(), password)
        except AgentExists:
            raise Refused(f"agent {username!r} already exists (use --reset-password)") from None
        return f"agent {agent.username!r} ({agent.display_name}) created with id {agent.id}"
    finally:
        store.dispose()


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = _parse_args(argv)
    try:
        print(run(args))
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("\ncancelled", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
