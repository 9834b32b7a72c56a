"""A reverse proxy in front of a real registry that fails a share of requests on purpose.

Half the failures happen before the request reaches the registry (503 or a dropped connection),
half after the registry acted (the answer is replaced by 502 or the connection is dropped), which
is what makes retries of DELETE and PUT interesting. Seeded, bounded, loopback only.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class FlakyProxy:
    def __init__(
        self,
        upstream: str,
        failure_rate: float = 0.2,
        seed: int = 7,
        fail_when: Callable[[str, str], int | None] | None = None,
    ):
        """fail_when(method, path) -> a status to answer instead of forwarding, every time (a
        deterministic fault for one repository or one DELETE), or None to go on as usual."""
        self.upstream = upstream
        self.rate = failure_rate
        self.fail_when = fail_when
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stats = {"requests": 0, "failed_before": 0, "failed_after": 0}
        self.client = httpx.Client(base_url=f"http://{upstream}", timeout=30)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()

    def _draw(self) -> str:
        with self.lock:
            self.stats["requests"] += 1
            r = self.rng.random()
            if r < self.rate / 2:
                self.stats["failed_before"] += 1
                return "before"
            if r < self.rate:
                self.stats["failed_after"] += 1
                return "after"
            return "ok"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _drop(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass

            def _fail(self, status: int) -> None:
                body = b'{"errors":[{"code":"UNAVAILABLE","message":"flaky proxy"}]}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                forced = proxy.fail_when(self.command, self.path) if proxy.fail_when else None
                if forced is not None:
                    self._fail(forced)
                    return
                fate = proxy._draw()
                if fate == "before":
                    if proxy.rng.random() < 0.5:
                        self._fail(503)
                    else:
                        self._drop()
                    return
                # Keep Host, as a real reverse proxy does: the registry builds Location from it.
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                resp = proxy.client.request(self.command, self.path, content=body, headers=headers)
                if fate == "after":
                    if proxy.rng.random() < 0.5:
                        self._fail(502)
                    else:
                        self._drop()
                    return
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                data = b"" if self.command == "HEAD" else resp.content
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                if data:
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _proxy  # noqa: N815

        return Handler
