"""A reverse proxy that changes what a client asks for, so a real registry answers differently:
a smaller tags page size than regcollect asks (so pagination really happens), or a token scope
without `delete` for one repository (so the real token server and registry refuse a delete there
and allow it elsewhere, with one credential). Loopback only; every request is counted by path.

`rewrite(method, path) -> path` changes the request line; paths under /__token go to `token`
(the token server), and a `WWW-Authenticate` realm naming `token` is rewritten to point here.
`tag_page=N` serves the registry's own tag list N at a time with `Link: rel="next"` (distribution
2.8 pages the catalog but not tags/list; distribution 3, Harbor and ghcr.io page both).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
TOKEN_PREFIX = "/__token"


class RewriteProxy:
    def __init__(
        self,
        upstream: str,
        rewrite: Callable[[str, str], str] | None = None,
        token: str | None = None,
        tag_page: int | None = None,
    ):
        self.rewrite = rewrite
        self.tag_page = tag_page
        self.token = token.rstrip("/") if token else None
        self.seen: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self.client = httpx.Client(base_url=f"http://{upstream}", timeout=30)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RewriteProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()

    def _page(self, path: str, resp: httpx.Response) -> httpx.Response:
        url = httpx.URL(path)
        if not url.path.endswith("/tags/list") or not self.tag_page:
            return resp
        doc = resp.json()
        tags = sorted(doc.get("tags") or [])
        last = url.params.get("last")
        start = tags.index(last) + 1 if last in tags else 0
        page = tags[start : start + self.tag_page]
        headers = {"Content-Type": "application/json"}
        if start + self.tag_page < len(tags):
            headers["Link"] = f'<{url.path}?last={page[-1]}&n={self.tag_page}>; rel="next"'
        return httpx.Response(200, headers=headers, content=json.dumps({**doc, "tags": page}).encode())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = proxy.rewrite(self.command, self.path) if proxy.rewrite else self.path
                with proxy.lock:
                    proxy.seen[(self.command, path.split("?", 1)[0])] += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                if proxy.token and path.startswith(TOKEN_PREFIX):
                    headers.pop("Host", None)
                    url = proxy.token + path.removeprefix(TOKEN_PREFIX)
                    resp = httpx.request(self.command, url, content=body, headers=headers, timeout=30)
                else:
                    resp = proxy.client.request(self.command, path, content=body, headers=headers)
                    if proxy.tag_page and self.command == "GET" and resp.status_code == 200:
                        resp = proxy._page(path, resp)
                self.send_response(resp.status_code)
                for k, v in resp.headers.multi_items():
                    if k.lower() in HOP:
                        continue
                    if proxy.token and k.lower() == "www-authenticate":
                        v = v.replace(proxy.token, f"http://{proxy.host}{TOKEN_PREFIX}")
                    self.send_header(k, v)
                data = b"" if self.command == "HEAD" else resp.content
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                if data:
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _proxy  # noqa: N815

        return Handler
