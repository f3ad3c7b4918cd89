"""Tests for scripts/serve_web.py on its own (no Rasa, no browser needed)."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Dict, Iterator, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "serve_web.py"
SOCKET_IO_MIN = ROOT / "web" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
RASA_URL = "http://127.0.0.1:59999"
TRICKY_SHOP = '小鹿"优选</script><!--\u2028&'
CONFIG_PREFIX = "window.KEFU_CONFIG = "


@dataclass
class Server:
    """A running serve_web.py subprocess."""

    proc: subprocess.Popen
    host: str
    port: int

    def request(
        self, path: str, method: str = "GET", headers: Optional[Dict[str, str]] = None
    ) -> Tuple[int, Dict[str, str], bytes]:
        """Send one request with ``path`` sent verbatim; return (status, headers, body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()


def start_server(*extra_args: str, env: Optional[Dict[str, str]] = None) -> Server:
    """Start serve_web.py on a free port (``--port 0``) and wait for its banner line."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", "0", *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else os.environ.copy(),
        cwd=str(ROOT),
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    line = proc.stdout.readline().decode("utf-8") if ready else ""
    match = re.search(r"http://([\d.]+):(\d+)/", line)
    if not match:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        pytest.fail(f"serve_web.py did not start: stdout={line!r} stderr={err.decode()!r}")
    return Server(proc=proc, host=match.group(1), port=int(match.group(2)))


def stop_server(server: Server) -> Tuple[int, str, str]:
    """SIGTERM the server; return (exit code, rest of stdout, stderr)."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
    try:
        out, err = server.proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        out, err = server.proc.communicate(timeout=5)
    return server.proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One server for the module, with a shop name that needs escaping."""
    env = os.environ.copy()
    env["KEFU_SHOP_NAME"] = TRICKY_SHOP
    srv = start_server("--rasa-url", RASA_URL + "/", env=env)
    yield srv
    stop_server(srv)


def load_module() -> ModuleType:
    """Import scripts/serve_web.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("serve_web", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("serve_web", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def parse_config_js(body: bytes) -> Dict[str, str]:
    """Return the object assigned by /config.js."""
    text = body.decode("ascii")  # everything non-ASCII must be escaped
    assert text.startswith(CONFIG_PREFIX) and text.rstrip().endswith(";"), text
    return json.loads(text[len(CONFIG_PREFIX):].rstrip().rstrip(";"))


# ---------------------------------------------------------------- serving


def test_index_served_as_utf8_html(server: Server) -> None:
    status, headers, body = server.request("/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    html = body.decode("utf-8")
    assert "在线客服" in html
    assert 'id="kefu-input"' in html and 'id="kefu-send"' in html
    assert 'src="/vendor/socket.io.min.js"' in html and 'src="/config.js"' in html
    assert "connect-src 'self' http://127.0.0.1:59999 ws://127.0.0.1:59999" in headers[
        "content-security-policy"
    ]
    assert headers["x-content-type-options"] == "nosniff"
    assert server.request("/index.html")[2] == body


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/chat.js", "text/javascript; charset=utf-8"),
        ("/chat.css", "text/css; charset=utf-8"),
        ("/config.js", "text/javascript; charset=utf-8"),
    ],
)
def test_assets_have_utf8_content_types(server: Server, path: str, content_type: str) -> None:
    status, headers, body = server.request(path)
    assert status == 200
    assert headers["content-type"] == content_type
    assert int(headers["content-length"]) == len(body) > 0


def test_query_string_is_ignored(server: Server) -> None:
    assert server.request("/chat.js?v=123")[0] == 200


def test_config_js_is_safely_encoded(server: Server) -> None:
    status, headers, body = server.request("/config.js")
    assert status == 200
    assert headers["cache-control"] == "no-cache"
    assert b"</script>" not in body and b"<!--" not in body and b"&" not in body
    config = parse_config_js(body)
    assert config == {"rasaUrl": RASA_URL, "shopName": TRICKY_SHOP}


def test_config_js_default_shop_name() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KEFU_SHOP_NAME"}
    srv = start_server("--rasa-url", "https://kefu.example.com:8443", env=env)
    try:
        config = parse_config_js(srv.request("/config.js")[2])
        csp = srv.request("/")[1]["content-security-policy"]
    finally:
        stop_server(srv)
    assert config == {"rasaUrl": "https://kefu.example.com:8443", "shopName": "小鹿优选"}
    assert "wss://kefu.example.com:8443" in csp


def test_build_config_js_escapes_line_separators() -> None:
    module = load_module()
    js = module.build_config_js(module.build_config("http://x", "a\u2028b\u2029c</script>"))
    assert js.isascii()
    assert "\\u2028" in js and "\\u2029" in js and "</" not in js


@pytest.mark.skipif(
    not SOCKET_IO_MIN.is_file(), reason="web/node_modules missing: run `npm ci --prefix web`"
)
def test_socket_io_client_served(server: Server) -> None:
    status, headers, body = server.request("/vendor/socket.io.min.js")
    assert status == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert body == SOCKET_IO_MIN.read_bytes()
    status, headers, head_body = server.request("/vendor/socket.io.min.js", method="HEAD")
    assert status == 200 and head_body == b""
    assert int(headers["content-length"]) == len(body)


# ---------------------------------------------------------------- refusing


@pytest.mark.parametrize(
    "path",
    [
        "/../../etc/passwd",
        "/vendor/../../x",
        "/vendor/../../package.json",
        "/vendor/../index.html",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/vendor/..%2f..%2fpackage.json",
        "/vendor/%2e%2e/socket.io.js",
        "/..%5c..%5cetc%5cpasswd",
        "/./index.html",
        "//etc/passwd",
        "/etc/passwd",
        "http://127.0.0.1/../../etc/passwd",
        "/vendor/socket.io.js",  # only the whitelisted vendor files
        "/vendor/",
        "/vendor",
        "/nonexistent.html",
        "/index.html/",
        "/.gitignore",
        "/%00",
        "/index.html%00.js",
        "/%ff%fe",
    ],
)
def test_traversal_and_unknown_paths_are_404(server: Server, path: str) -> None:
    status, headers, body = server.request(path)
    assert status == 404, (path, body[:200])
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert b"root:" not in body and b"<html" not in body


def test_other_methods_refused(server: Server) -> None:
    status, _, body = server.request("/", method="POST", headers={"Content-Length": "0"})
    assert status in (405, 501)
    assert b"<" not in body  # no echo of request data, no HTML error page
    assert server.request("/")[0] == 200  # still serving


def test_bad_rasa_url_rejected() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--port", "0", "--rasa-url", "javascript:alert(1)"],
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 2
    assert b"--rasa-url" in proc.stderr


# ---------------------------------------------------------------- lifecycle


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_exits_cleanly_on_signal_and_logs_quietly(signum: int) -> None:
    srv = start_server("--rasa-url", RASA_URL)
    assert srv.request("/")[0] == 200
    assert srv.request("/missing")[0] == 404
    # hold a keep-alive connection open: it must not block shutdown
    idle = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    idle.request("GET", "/chat.css")
    idle.getresponse().read()
    started = time.monotonic()
    srv.proc.send_signal(signum)
    try:
        out, err = srv.proc.communicate(timeout=10)
    finally:
        idle.close()
    assert srv.proc.returncode == 0
    assert time.monotonic() - started < 5
    assert "stopped" in out.decode("utf-8")
    assert err.decode("utf-8") == ""  # quiet: no per-request log lines, no traceback
