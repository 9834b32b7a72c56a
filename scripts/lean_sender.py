"""The benchmark's raw client only: send requests over the lean transport the way httpx.AsyncClient would: default headers,
timeouts, the auth flow (an httpx.Auth), and redirects.

Why not AsyncClient itself: building a request there (merging the URL with base_url parses it
twice), the cookie jar on every response and the layered send generators cost about 0.3 ms of CPU
per request, as much as everything else our client does per request together. On a machine shared
with the registry, that CPU is wall time (docs/performance.md). Requests and responses stay
httpx's own types, and the auth flow is driven exactly as httpx drives it. What this leaves out:
cookies (registries and token servers do not use them) and event hooks (we have none). With a
proxy in the environment, the client uses httpx's AsyncClient whole (registry/client.py).
"""

from __future__ import annotations

from typing import Any

import httpx

MAX_REDIRECTS = 20
REDIRECT_STATUSES = {301, 302, 303, 307, 308}


class LeanSender:
    def __init__(
        self,
        base: str,
        transport: httpx.AsyncBaseTransport,
        *,
        auth: httpx.Auth | None = None,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
    ):
        self.base = base
        self.transport = transport
        self.auth = auth
        self.timeout = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        self.headers = httpx.Headers(headers or {})

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """`url` is a path on the registry or an absolute URL."""
        merged = self.headers.copy()
        if headers:
            merged.update(headers)
        request = httpx.Request(
            method, url if "://" in url else self.base + url, headers=merged, content=content
        )
        if self.auth is None:
            return await self._follow(request)
        flow = self.auth.sync_auth_flow(request)  # token requests come out of it as requests
        request = next(flow)
        while True:
            response = await self._follow(request)
            try:
                request = flow.send(response)
            except StopIteration:
                return response

    async def _follow(self, request: httpx.Request) -> httpx.Response:
        """Send, following redirects (a blob GET may be sent on to storage elsewhere)."""
        for _ in range(MAX_REDIRECTS + 1):
            request.extensions.setdefault("timeout", self.timeout)
            response = await self.transport.handle_async_request(request)
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            request = redirected(request, response.status_code, location)
        raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=request)

    async def aclose(self) -> None:
        await self.transport.aclose()


def redirected(request: httpx.Request, status: int, location: str) -> httpx.Request:
    """The next request of a redirect, as httpx builds it: 303 (and 301/302 after POST) turn into
    GET without a body; credentials go only to the same origin."""
    url = request.url.join(location)
    method = request.method
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method = "GET"
    headers = httpx.Headers(request.headers)
    headers.pop("Host", None)
    if (url.scheme, url.host, url.port) != (request.url.scheme, request.url.host, request.url.port):
        headers.pop("Authorization", None)
    content: Any = None
    if method == request.method:
        content = request.content
    else:
        headers.pop("Content-Length", None)
        headers.pop("Transfer-Encoding", None)
    return httpx.Request(method, url, headers=headers, content=content, extensions=dict(request.extensions))
