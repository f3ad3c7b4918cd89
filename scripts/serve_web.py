#!/usr/bin/env python3
"""Static server for the Kefu customer web chat page (standard library only).

Usage::

    python scripts/serve_web.py --port 8080 --rasa-url http://localhost:5005

Routes (GET and HEAD only):

* ``/`` and ``/<file>``     files of ``web/chat/`` (``/`` is ``index.html``)
* ``/vendor/socket.io.min.js`` (and its ``.map``)
                            from ``web/node_modules/socket.io-client/dist/``
                            (run ``npm ci --prefix web`` first)
* ``/config.js``            ``window.KEFU_CONFIG = {...};`` generated from the
                            command line; the shop name comes from the
                            ``KEFU_SHOP_NAME`` environment variable.

Everything else is a 404: there is no directory listing, and a request path
is never joined onto the file system before it has been checked to contain
no ``..``, backslash, NUL or empty segment (after percent-decoding) and its
resolved real path has been checked to stay inside the served folder.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import unquote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHAT_DIR = PROJECT_ROOT / "web" / "chat"
DEFAULT_VENDOR_DIR = PROJECT_ROOT / "web" / "node_modules" / "socket.io-client" / "dist"
DEFAULT_SHOP_NAME = "小鹿优选"
SHOP_NAME_ENV = "KEFU_SHOP_NAME"

#: The only files served below ``/vendor/``.
VENDOR_FILES: Tuple[str, ...] = ("socket.io.min.js", "socket.io.min.js.map")

CONTENT_TYPES: Dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
FALLBACK_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class ServerSettings:
    """What the request handler needs to know, fixed at start-up."""

    chat_dir: Path
    vendor_dir: Path
    config_js: bytes
    csp: str
    verbose: bool = False
    extra_headers: Dict[str, str] = field(default_factory=dict)


def content_type_for(path: Path) -> str:
    """Return the Content-Type header value for a file, by its suffix."""
    return CONTENT_TYPES.get(path.suffix.lower(), FALLBACK_CONTENT_TYPE)


def validate_rasa_url(url: str) -> str:
    """Check that ``url`` is an absolute http(s) URL and return it without a trailing slash.

    Raises:
        ValueError: if the URL is not http(s) or has no host.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--rasa-url must be an absolute http(s) URL, got {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"--rasa-url must not have a query or fragment, got {url!r}")
    return url.strip().rstrip("/")


def build_config(rasa_url: str, shop_name: str) -> Dict[str, str]:
    """Return the page configuration object exposed as ``window.KEFU_CONFIG``."""
    return {"rasaUrl": rasa_url, "shopName": shop_name}


def build_config_js(config: Dict[str, str]) -> str:
    """Render ``config`` as a JavaScript statement that sets ``window.KEFU_CONFIG``.

    The object is JSON-encoded with every non-ASCII character escaped, and
    ``<``, ``>`` and ``&`` escaped too, so that no value can end the script,
    open a comment or break out of a string, wherever the file is included.
    """
    encoded = json.dumps(config, ensure_ascii=True, sort_keys=True)
    encoded = encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"window.KEFU_CONFIG = {encoded};\n"


def build_csp(rasa_url: str) -> str:
    """Return a Content-Security-Policy allowing only our own files and the Rasa server.

    The Rasa origin is listed both as http(s) (long polling) and ws(s)
    (WebSocket). Images may come from any http(s) URL, as bot responses
    can carry product pictures from anywhere.
    """
    parts = urlsplit(rasa_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    ws_origin = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: http: https:",
            f"connect-src 'self' {origin} {ws_origin}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
        ]
    )


def safe_segments(raw_path: str) -> Optional[List[str]]:
    """Split a raw request path into safe, percent-decoded segments.

    Returns ``None`` when the path must be refused: it does not start with
    ``/``, or after decoding contains ``..``/``.`` segments, empty segments
    (``//``), backslashes, NUL or other control characters. ``"/"`` gives ``[]``.
    """
    path = urlsplit(raw_path).path
    if not path.startswith("/"):
        return None
    decoded = unquote(path, errors="strict") if "%" in path else path
    if any(ch == "\\" or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
        return None
    if decoded == "/":
        return []
    segments = decoded[1:].split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            return None
    return segments


def resolve_inside(base: Path, segments: Sequence[str]) -> Optional[Path]:
    """Return the regular file ``base/segments...`` if it really lies inside ``base``.

    Symbolic links are resolved before the check, directories are never
    returned, and hidden files (a segment starting with ``.``) are refused.
    """
    if not segments or any(s.startswith(".") for s in segments):
        return None
    try:
        base_real = base.resolve(strict=True)
        candidate = base_real.joinpath(*segments).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if candidate != base_real and base_real not in candidate.parents:
        return None
    if not candidate.is_file():
        return None
    return candidate


def route(settings: ServerSettings, raw_path: str) -> Optional[Tuple[bytes, str, bool]]:
    """Map a request path to ``(body, content_type, no_cache)``, or ``None`` for 404."""
    segments = safe_segments(raw_path)
    if segments is None:
        return None
    if segments == ["config.js"]:
        return settings.config_js, CONTENT_TYPES[".js"], True
    if len(segments) == 2 and segments[0] == "vendor":
        if segments[1] not in VENDOR_FILES:
            return None
        target = resolve_inside(settings.vendor_dir, segments[1:])
        no_cache = False
    else:
        if segments == []:
            segments = ["index.html"]
        target = resolve_inside(settings.chat_dir, segments)
        no_cache = True
    if target is None:
        return None
    try:
        body = target.read_bytes()
    except OSError:
        return None
    return body, content_type_for(target), no_cache


class ChatRequestHandler(BaseHTTPRequestHandler):
    """Serves the chat page, the vendored socket.io client and ``/config.js``."""

    server_version = "KefuWeb/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    settings: ServerSettings  # set on a subclass by make_server()

    def version_string(self) -> str:
        """Return the Server header value (no Python version)."""
        return self.server_version

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        """Answer a GET request."""
        self._respond(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        """Answer a HEAD request (headers only)."""
        self._respond(send_body=False)

    def _respond(self, send_body: bool) -> None:
        """Route the request and write the response."""
        try:
            found = route(self.settings, self.path)
        except (UnicodeDecodeError, ValueError):
            found = None
        if found is None:
            body = "404 未找到 / Not Found\n".encode("utf-8")
            self._send(HTTPStatus.NOT_FOUND, body, CONTENT_TYPES[".txt"], True, send_body)
            return
        body, content_type, no_cache = found
        self._send(HTTPStatus.OK, body, content_type, no_cache, send_body)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        no_cache: bool,
        send_body: bool,
    ) -> None:
        """Write status, headers and (unless HEAD) the body."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-cache" if no_cache else "public, max-age=3600")
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", self.settings.csp)
        for name, value in self.settings.extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """Send errors (400, 405, 501, ...) without echoing request data back."""
        self.close_connection = True
        try:
            short = HTTPStatus(code).phrase
        except ValueError:
            short = "Error"
        body = f"{code} {short}\n".encode("utf-8")
        self.send_response(code, short)
        self.send_header("Content-Type", CONTENT_TYPES[".txt"])
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        if code == HTTPStatus.NOT_IMPLEMENTED:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Log only with ``--verbose``; the default is a quiet server."""
        if self.settings.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class ChatServer(ThreadingHTTPServer):
    """Threading HTTP server whose worker threads never block exit."""

    daemon_threads = True
    allow_reuse_address = True


def make_server(host: str, port: int, settings: ServerSettings) -> ChatServer:
    """Create (bind) the server; ``port`` 0 picks a free port."""
    handler = type("BoundChatRequestHandler", (ChatRequestHandler,), {"settings": settings})
    server_class = ChatServer
    if ":" in host:
        server_class = type("ChatServer6", (ChatServer,), {"address_family": socket.AF_INET6})
    return server_class((host, port), handler)


def install_signal_handlers(server: ChatServer) -> None:
    """Make SIGINT and SIGTERM stop ``serve_forever`` cleanly.

    ``shutdown()`` waits for the serving loop, so it runs on its own thread.
    """

    def _stop(signum: int, frame: Optional[FrameType]) -> None:
        threading.Thread(target=server.shutdown, name="kefu-web-shutdown", daemon=True).start()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Serve the Kefu customer web chat page.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind, 0 for any free one (default 8080)")
    parser.add_argument(
        "--rasa-url",
        default="http://localhost:5005",
        help="Rasa server URL as the customer's browser reaches it (default http://localhost:5005)",
    )
    parser.add_argument("--chat-dir", type=Path, default=DEFAULT_CHAT_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--vendor-dir", type=Path, default=DEFAULT_VENDOR_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the server until SIGINT/SIGTERM; return the process exit code."""
    args = parse_args(argv)
    try:
        rasa_url = validate_rasa_url(args.rasa_url)
    except ValueError as exc:
        print(f"serve_web: {exc}", file=sys.stderr)
        return 2
    shop_name = os.environ.get(SHOP_NAME_ENV) or DEFAULT_SHOP_NAME
    settings = ServerSettings(
        chat_dir=args.chat_dir,
        vendor_dir=args.vendor_dir,
        config_js=build_config_js(build_config(rasa_url, shop_name)).encode("utf-8"),
        csp=build_csp(rasa_url),
        verbose=args.verbose,
    )
    if not (args.chat_dir / "index.html").is_file():
        print(f"serve_web: {args.chat_dir}/index.html not found", file=sys.stderr)
        return 2
    if not (args.vendor_dir / VENDOR_FILES[0]).is_file():
        print(
            f"serve_web: warning: {args.vendor_dir / VENDOR_FILES[0]} is missing; "
            "run `npm ci --prefix web` (the page cannot connect without it)",
            file=sys.stderr,
        )
    try:
        server = make_server(args.host, args.port, settings)
    except OSError as exc:
        print(f"serve_web: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    install_signal_handlers(server)
    host, port = server.server_address[:2]
    shown_host = f"[{host}]" if ":" in str(host) else host
    print(f"Kefu web chat on http://{shown_host}:{port}/ (Rasa at {rasa_url})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    print("Kefu web chat stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
