"""A small request/response layer over http.server, shared by the REST and /v2 sides.

Keeps the raw path (a percent-encoded package name must arrive as one segment), speaks HTTP/1.1
keep-alive (every answer has a Content-Length) and logs (method, path, status) per side.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str  # raw, still percent-encoded, without the query
    query: list[tuple[str, str]]
    headers: Message
    body: bytes

    def arg(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def args(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, indent=None).encode()
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    query: str
    status: int


class Server:
    """One side (REST or /v2) on its own loopback port, in a daemon thread."""

    def __init__(self, handle: Callable[[Request], Response]):
        self.handle = handle
        self.log: list[Logged] = []
        self._log_lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for it, and tests start and stop many servers.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> None:
        if not self.thread.is_alive():
            self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # keep-alive answers otherwise stall on delayed ACKs

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(self.command, parts.path, parse_qsl(parts.query), self.headers, body)
                try:
                    resp = server.handle(req)
                except Exception as exc:  # noqa: BLE001 - an emulator bug must show, not hang the client
                    resp = Response(500, f"emulator error: {exc!r}\n".encode())
                with server._log_lock:
                    server.log.append(Logged(req.method, req.path, parts.query, resp.status))
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                if self.command != "HEAD" and resp.body:
                    self.wfile.write(resp.body)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch  # noqa: N815

        return Handler


def v2_routes(referrer_ref: str = r"[^/]+") -> list[tuple[str, re.Pattern[str]]]:
    """The Registry API paths every emulator's /v2 side serves, as (kind, pattern)."""
    name = r"(?P<name>[a-z0-9][a-z0-9._/-]*)"
    return [
        ("manifest", re.compile(rf"^/v2/{name}/manifests/(?P<ref>[^/]+)$")),
        ("upload", re.compile(rf"^/v2/{name}/blobs/uploads/(?P<uuid>[^/]*)$")),
        ("blob", re.compile(rf"^/v2/{name}/blobs/(?P<ref>sha256:[0-9a-f]{{64}})$")),
        ("tags", re.compile(rf"^/v2/{name}/tags/list$")),
        ("referrers", re.compile(rf"^/v2/{name}/referrers/(?P<ref>{referrer_ref})$")),
    ]


def oci_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """A Registry API error body: {"errors": [{"code", "message"}]}."""
    return json_response(status, {"errors": [{"code": code, "message": message}]}, headers)
