"""Start a real Kefu stack on free local ports (tests and benchmarks).

The action server, the Rasa server (trained model, REST + Socket.IO
channels, HTTP API with a token, its own SQLite tracker store) and the web
chat server, each a child process with its log in the work directory.
"""
from __future__ import annotations

import os
import random
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = ROOT / "models" / "kefu.tar.gz"
START_TIMEOUT = 240


class StackError(RuntimeError):
    """A server of the stack could not be started."""


_handed_out: Set[int] = set()  # ports given to servers of this test run


def _ephemeral_range() -> Tuple[int, int]:
    """The kernel's range for outgoing connections' local ports."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """An unused TCP port on the loopback interface, below the ephemeral range.

    Rasa binds its port only after loading the model (a minute on 2 cores); a
    port from the ephemeral range could meanwhile be taken by any outgoing
    connection, so servers get ports the kernel never hands out by itself.
    """
    low, _high = _ephemeral_range()
    for _attempt in range(50):
        port = random.randrange(20000, max(low, 20001))
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The demo data lives in November 2026; tests run on its clock.
TEST_CLOCK = "2026-11-24T10:00:00+08:00"
TEST_TOKEN_SECRET = "kefu-test-secret-not-for-production"
# the workspace's API wants JSON and this header on every POST (CSRF defence)
WORKSPACE_HEADERS = {"X-Kefu-Workspace": "1", "Content-Type": "application/json"}


def server_env(workdir: Path) -> Dict[str, str]:
    """Environment for the servers: own database, fixed clock, token secret."""
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        PYTHONPATH=str(ROOT),
        KEFU_DATABASE_URL=f"sqlite:///{workdir / 'kefu.db'}",
        KEFU_CLOCK=TEST_CLOCK,
        KEFU_CUSTOMER_TOKEN_SECRET=TEST_TOKEN_SECRET,
        # agents are always on duty in tests
        KEFU_SERVICE_HOURS="00:00-24:00",
    )
    return env


@dataclass
class Stack:
    """URLs and credentials of a running Kefu stack."""

    rasa_url: str
    actions_url: str
    web_url: str
    token: str
    workdir: Path
    workspace_url: str = ""

    @property
    def env(self) -> Dict[str, str]:
        """The environment the servers run with (database URL, clock, ...)."""
        return server_env(self.workdir)

    @property
    def rest_url(self) -> str:
        return f"{self.rasa_url}/webhooks/rest/webhook"

    def health_url(self, name: str) -> str:
        """The URL that answers 200 once process ``name`` is ready."""
        return {
            "actions": f"{self.actions_url}/health",
            "web": self.web_url,
            "workspace": f"{self.workspace_url}login",
            "rasa": f"{self.rasa_url}/status?token={self.token}",
        }[name]

    def say(self, sender: str, message: str, metadata: Optional[dict] = None) -> List[dict]:
        """Send ``message`` over REST as ``sender``; return the bot's replies."""
        body = {"sender": sender, "message": message}
        if metadata is not None:
            body["metadata"] = metadata
        response = requests.post(self.rest_url, json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def parse(self, text: str) -> dict:
        """NLU result for ``text`` from the HTTP API (``/model/parse``)."""
        response = requests.post(
            f"{self.rasa_url}/model/parse",
            params={"token": self.token},
            json={"text": text},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def tracker(self, sender: str) -> dict:
        """The stored conversation of ``sender`` from the HTTP API."""
        response = requests.get(
            f"{self.rasa_url}/conversations/{sender}/tracker",
            params={"token": self.token},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` every 0.5 s until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.5)
    return value


def workspace_session(stack: "Stack", username: str, password: str) -> requests.Session:
    """A logged-in HTTP session on the stack's agent workspace (JSON API)."""
    session = requests.Session()
    session.headers.update(WORKSPACE_HEADERS)
    response = session.post(f"{stack.workspace_url}api/login", timeout=30,
                            json={"username": username, "password": password})
    response.raise_for_status()
    return session


def create_agent(stack: "Stack", username: str, password: str, name: str) -> None:
    """Create a workspace agent account with ``scripts/create_agent.py``."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "create_agent.py"), username, "--name", name],
        cwd=ROOT, env={**stack.env, "KEFU_AGENT_PASSWORD": password}, check=True,
        capture_output=True, timeout=60,
    )


class Processes:
    """Child processes with their logs; stops them all on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: Dict[str, subprocess.Popen] = {}
        self.commands: Dict[str, Tuple[List[str], Dict[str, str]]] = {}

    def start(self, name: str, args: List[str],
              extra_env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        self.commands[name] = (args, dict(extra_env or {}))
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            args, cwd=ROOT, env={**server_env(self.workdir), **(extra_env or {})}, stdout=log,
            stderr=subprocess.STDOUT
        )
        self.children[name] = proc
        return proc

    def restart(self, name: str, stack: "Stack") -> None:
        """Stop ``name`` like an operator would (SIGTERM), start it again, wait until it answers."""
        self.stop(self.children[name])
        args, extra_env = self.commands[name]
        self.start(name, args, extra_env)
        self.wait_http(name, stack.health_url(name))

    def log_tail(self, name: str, lines: int = 40) -> str:
        text = (self.workdir / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, name: str, url: str, timeout: float = START_TIMEOUT) -> None:
        """Wait until ``url`` answers 200, failing early if ``name`` died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.children[name].poll() is not None:
                raise StackError(f"{name} exited during start-up:\n{self.log_tail(name)}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise StackError(f"{name} did not start in {timeout}s:\n{self.log_tail(name)}")

    @staticmethod
    def stop(*procs: subprocess.Popen) -> None:
        """SIGTERM, then SIGKILL whatever has not exited after 20 s."""
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        self.stop(*self.children.values())


def write_endpoints(workdir: Path, actions_port: int) -> Path:
    """An endpoints file pointing at the test action server and tracker DB."""
    path = workdir / "endpoints.yml"
    path.write_text(
        "action_endpoint:\n"
        f"  url: http://127.0.0.1:{actions_port}/webhook\n"
        "tracker_store:\n"
        "  type: SQL\n"
        "  dialect: sqlite\n"
        f"  db: {workdir / 'tracker.db'}\n",
        encoding="utf-8",
    )
    return path


@contextmanager
def running_stack(workdir: Path) -> Iterator[Tuple[Stack, Processes]]:
    """A started stack and its processes, all stopped on exit."""
    procs = Processes(workdir)
    try:
        yield start_stack(workdir, procs), procs
    finally:
        procs.stop_all()


def start_stack(workdir: Path, procs: Processes) -> Stack:
    """Start action server, Rasa server and web chat; wait until all answer."""
    if not MODEL.exists():
        raise StackError(f"{MODEL} is missing: run `make train` first")
    rasa_port, actions_port, web_port = free_port(), free_port(), free_port()
    workspace_port = free_port()
    # a leading "-" on purpose: a generated token may start with one (1 in 64), and
    # the command line must not take it for an option
    token = "-" + secrets.token_urlsafe(16)
    rasa = str(BIN / "rasa")
    procs.start("actions", [rasa, "run", "actions", "--actions", "actions",
                            "--port", str(actions_port)])
    procs.start("rasa", [
        rasa, "run", "--model", str(MODEL), "--interface", "127.0.0.1",
        "--port", str(rasa_port), "--endpoints", str(write_endpoints(workdir, actions_port)),
        "--credentials", str(ROOT / "credentials.yml"), "--enable-api",
        f"--auth-token={token}", "--cors", "*",
    ])
    procs.start("web", [sys.executable, str(ROOT / "scripts" / "serve_web.py"),
                        "--port", str(web_port),
                        "--rasa-url", f"http://127.0.0.1:{rasa_port}"])
    procs.start("workspace", [sys.executable, "-m", "workspace", "--port", str(workspace_port)],
                extra_env={"KEFU_RASA_URL": f"http://127.0.0.1:{rasa_port}",
                           "KEFU_RASA_TOKEN": token})
    stack = Stack(
        rasa_url=f"http://127.0.0.1:{rasa_port}",
        actions_url=f"http://127.0.0.1:{actions_port}",
        web_url=f"http://127.0.0.1:{web_port}/",
        token=token,
        workdir=workdir,
        workspace_url=f"http://127.0.0.1:{workspace_port}/",
    )
    for name in ("actions", "web", "workspace", "rasa"):
        procs.wait_http(name, stack.health_url(name))
    return stack
