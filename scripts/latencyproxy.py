"""A reverse proxy that puts a network's round trip in front of a loopback registry, and counts.

The benchmark's model of a far registry: each request waits RTT (+ uniform 0..JITTER) ms once,
after the proxy has read it and before forwarding it, so a request costs one round trip. Bodies
are read whole (no streaming). Each client connection gets its own keep-alive connection to the
upstream, so the registry sees the client's connection count. Location headers that point at
the upstream are rewritten to point at the proxy. Requests are counted by method x kind
(catalog, tags, manifest, blob, upload, referrers, other, from the /v2 path).

GET /_latencyproxy/counts (neither delayed, forwarded nor counted) answers the counts, the status
codes and the proxy's own CPU seconds as JSON; --counts-file also gets them on SIGTERM/SIGINT.

HTTP/1.1 framing on both sides is h11's (the parser httpx's own transport uses), over asyncio
streams, without httpx's client layers: the proxy shares the CPU with the registry and the
client it measures, and httpx's AsyncClient costs about 1.4 ms of CPU per request here
(docs/performance.md), so 64 requests in flight at a few hundred requests a second would make
the proxy the bottleneck. Loopback only, bounded (connections, header and body sizes, time).

Usage: python scripts/latencyproxy.py UPSTREAM_HOST:PORT --port P [--rtt MS] [--jitter MS]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import random
import re
import signal
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import h11

CONTROL = "/_latencyproxy/counts"
MAX_BODY = 64 << 20  # bytes of one request or response body
MAX_HEADERS = 64 << 10  # bytes of a request or response head
MAX_CONNECTIONS = 1024  # client connections at once; more are closed at once
UPSTREAM_TIMEOUT = 120.0  # seconds for the upstream's answer
HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"expect", b"proxy-connection"}
KIND = re.compile(rb"^/v2/(?:_catalog|.+/(tags/list|manifests/|blobs/uploads|blobs/|referrers/))")
KINDS = {
    b"tags/list": "tags",
    b"manifests/": "manifest",
    b"blobs/uploads": "upload",
    b"blobs/": "blob",
    b"referrers/": "referrers",
}


def kind_of(target: bytes) -> str:
    """The request kind from its /v2 path: catalog, tags, manifest, blob, upload, referrers, other."""
    path = target.split(b"?", 1)[0]
    m = KIND.match(path)
    if not m:
        return "other"
    return KINDS[m.group(1)] if m.group(1) else "catalog"


def loopback(host: str) -> bool:
    """HOST or HOST:PORT names this machine's loopback interface."""
    name = urllib.parse.urlsplit("//" + host).hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class ProxyError(Exception):
    """The client or the upstream broke HTTP/1.1 or a bound: the connection is dropped."""


class _Upstream:
    """One keep-alive connection to the upstream, paired with one client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADERS)

    def close(self) -> None:
        self.writer.close()


async def _next(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(65536))


async def _read_body(conn: h11.Connection, reader: asyncio.StreamReader) -> bytes:
    """The body of the message whose head was the last event, whole."""
    parts: list[bytes] = []
    size = 0
    while True:
        event = await _next(conn, reader)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY:
                raise ProxyError("body too large")
            parts.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(parts)
        else:
            raise ProxyError(f"unexpected {type(event).__name__} in a message")


class LatencyProxy:
    def __init__(self, upstream: str, rtt_ms: float = 0.0, jitter_ms: float = 0.0, seed: int | None = None):
        if not loopback(upstream):
            raise ValueError(f"upstream {upstream!r} is not a loopback address")
        self.upstream = upstream
        self.rtt = rtt_ms / 1000
        self.jitter = jitter_ms / 1000
        self.rng = random.Random(seed)
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.errors = 0
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.handlers: set[asyncio.Task] = set()
        self.address = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if not loopback(host):
            raise ValueError(f"listen address {host!r} is not a loopback address")
        self.server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEADERS, backlog=512)
        self.address = "{}:{}".format(*self.server.sockets[0].getsockname()[:2])
        return self.address

    async def close(self) -> None:
        if self.server:
            self.server.close()
            for task in self.handlers:  # keep-alive connections would hold wait_closed() open
                task.cancel()
            await asyncio.gather(*self.handlers, return_exceptions=True)
            await self.server.wait_closed()

    def counts(self) -> dict:
        return {
            "rtt_ms": self.rtt * 1000,
            "jitter_ms": self.jitter * 1000,
            "requests": dict(sorted(self.requests.items())),
            "total": sum(self.requests.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "errors": self.errors,
            "cpu_s": time.process_time(),
        }

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections >= MAX_CONNECTIONS:
            writer.close()
            return
        self.connections += 1
        task = asyncio.current_task()
        if task:
            self.handlers.add(task)
        client = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        upstream: _Upstream | None = None
        try:
            while True:
                request = await _next(client, reader)
                if isinstance(request, h11.ConnectionClosed):
                    break
                if not isinstance(request, h11.Request):
                    raise ProxyError(f"expected a request, got {type(request).__name__}")
                if client.client_is_waiting_for_100_continue:
                    await _write(writer, client, h11.InformationalResponse(status_code=100, headers=[]))
                body = await _read_body(client, reader)
                if request.target == CONTROL.encode():
                    status, headers = 200, [(b"content-type", b"application/json")]
                    payload = json.dumps(self.counts()).encode()
                else:
                    self.requests[f"{request.method.decode()} {kind_of(request.target)}"] += 1
                    delay = self.rtt + (self.rng.uniform(0, self.jitter) if self.jitter else 0.0)
                    if delay > 0:
                        await asyncio.sleep(delay)
                    try:
                        upstream, status, headers, payload = await self._forward(upstream, request, body)
                    except (TimeoutError, OSError, ProxyError, h11.ProtocolError):
                        self.errors += 1  # _forward closed the connection; the next request opens one
                        upstream = None
                        status, headers, payload = 502, [(b"content-type", b"text/plain")], b"upstream failed"
                    self.statuses[str(status)] += 1
                await self._answer(writer, client, request, status, headers, payload)
                if client.our_state is h11.MUST_CLOSE:
                    break
                client.start_next_cycle()
        except (OSError, ProxyError, h11.ProtocolError):
            pass  # a broken client connection: drop it, as a network would
        except asyncio.CancelledError:
            pass  # close(): asyncio's stream callback of 3.11 reports a handler that ends cancelled
        finally:
            self.handlers.discard(task)  # type: ignore[arg-type]
            self.connections -= 1
            if upstream:
                upstream.close()
            writer.close()

    async def _forward(
        self, up: _Upstream | None, request: h11.Request, body: bytes
    ) -> tuple[_Upstream | None, int, list[tuple[bytes, bytes]], bytes]:
        if up is None or up.reader.at_eof():
            if up:
                up.close()
            host, port = self.upstream.rsplit(":", 1)
            up = _Upstream(*await asyncio.open_connection(host.strip("[]"), int(port), limit=MAX_HEADERS))
        try:
            return await self._exchange(up, request, body)
        except BaseException:
            up.close()
            raise

    async def _exchange(
        self, up: _Upstream, request: h11.Request, body: bytes
    ) -> tuple[_Upstream | None, int, list[tuple[bytes, bytes]], bytes]:
        raw = request.headers.raw_items()
        headers = [(k, v) for k, v in raw if k.lower() not in HOP]
        if body or any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in raw):
            headers.append((b"Content-Length", str(len(body)).encode()))
        head = h11.Request(method=request.method, target=request.target, headers=headers)
        await _write(up.writer, up.h11, head, h11.Data(data=body) if body else None, h11.EndOfMessage())
        async with asyncio.timeout(UPSTREAM_TIMEOUT):
            response = await _next(up.h11, up.reader)
            while isinstance(response, h11.InformationalResponse):
                response = await _next(up.h11, up.reader)
            if not isinstance(response, h11.Response):
                raise ProxyError(f"upstream answered {type(response).__name__}")
            payload = await _read_body(up.h11, up.reader)
        status, headers = response.status_code, self._rewrite(response.headers.raw_items())
        if up.h11.our_state is h11.DONE and up.h11.their_state is h11.DONE:
            up.h11.start_next_cycle()
            return up, status, headers, payload
        up.close()  # the upstream closes this one; the next request opens another
        return None, status, headers, payload

    def _rewrite(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        origin = f"http://{self.upstream}".encode()
        out = []
        for k, v in headers:
            if (
                k.lower() == b"location"
                and v.startswith(origin)
                and v[len(origin) :][:1] in (b"", b"/", b"?")
            ):
                v = f"http://{self.address}".encode() + v[len(origin) :]
            if k.lower() not in HOP or k.lower() == b"content-length":
                out.append((k, v))
        return out

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        client: h11.Connection,
        request: h11.Request,
        status: int,
        headers: list[tuple[bytes, bytes]],
        payload: bytes,
    ) -> None:
        bodiless = request.method == b"HEAD" or status in (204, 304) or 100 <= status < 200
        if not bodiless:  # the body is whole: frame it by length, whatever framing the upstream used
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"Content-Length", str(len(payload)).encode()))
        data = None if bodiless or not payload else h11.Data(data=payload)
        await _write(
            writer, client, h11.Response(status_code=status, headers=headers), data, h11.EndOfMessage()
        )


Outgoing = h11.Request | h11.InformationalResponse | h11.Response | h11.Data | h11.EndOfMessage


async def _write(writer: asyncio.StreamWriter, conn: h11.Connection, *events: Outgoing | None) -> None:
    """The events' bytes in one write (one segment where they fit)."""
    data = b"".join(conn.send(e) for e in events if e is not None)
    writer.write(data)
    await writer.drain()


async def main(args: argparse.Namespace) -> None:
    proxy = LatencyProxy(args.upstream, args.rtt, args.jitter, args.seed)
    address = await proxy.start(args.listen, args.port)
    print(
        f"latencyproxy {address} -> {args.upstream}, rtt {args.rtt} ms, jitter {args.jitter} ms", flush=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.close()
    if args.counts_file:
        args.counts_file.write_text(json.dumps(proxy.counts(), indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("upstream", help="HOST:PORT of the registry (loopback)")
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rtt", type=float, default=0.0, help="ms added to each request before forwarding it")
    ap.add_argument("--jitter", type=float, default=0.0, help="plus uniform 0..JITTER ms")
    ap.add_argument("--seed", type=int, help="for the jitter")
    ap.add_argument("--counts-file", type=Path, help="write the counts here on SIGTERM/SIGINT")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(ap.parse_args()))
