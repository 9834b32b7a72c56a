"""A lean HTTP/1.1 transport under httpx's AsyncClient, for plain-HTTP registries.

httpx's own transport (httpcore, h11, anyio) costs about twice the CPU per request. Where the
registry is near (loopback, a LAN) its CPU and ours share the machine, and that CPU is wall time:
a cold run on loopback took 57% longer over httpcore than over this transport, and 25% longer at
30 ms round trips (docs/performance.md). So plain `http://` registries get this transport under
httpx's AsyncClient, which keeps the auth flow, redirects, headers, timeouts and limits; HTTPS
(HTTP/2 by ALPN, TLS options) and any proxy from the environment stay with httpx's transport
(registry/http.py decides). It parses only what registries answer: a status line, headers, and
a body framed by Content-Length, chunked encoding, or the end of the connection; failures surface
as httpx's own exceptions, so the layers above treat them as before.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx

HEADER_LIMIT = 1 << 20  # bytes of a status line plus headers before the answer counts as malformed
NO_BODY_STATUS = {204, 304}


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """An idle connection the server closed meanwhile reads EOF: do not send on it."""
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class LeanTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, max_idle: int = 16):
        self.ssl_context = ssl_context
        self.max_idle = max_idle
        self.idle: dict[tuple[str, str, int], list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        origin = (request.url.scheme, request.url.host, request.url.port or _default_port(request))
        conn = await self._acquire(origin, request, timeouts.get("connect"))
        try:
            await _send(conn, request, timeouts.get("write"))
            status, reason, version, headers, body, keep = await _receive(
                conn.reader, request, timeouts.get("read")
            )
        except BaseException:
            conn.close()
            raise
        if keep and len(self.idle.setdefault(origin, [])) < self.max_idle:
            self.idle[origin].append(conn)
        else:
            conn.close()
        return httpx.Response(
            status,
            headers=headers,
            content=body,
            request=request,
            extensions={"http_version": version.encode("ascii"), "reason_phrase": reason.encode("latin-1")},
        )

    async def _acquire(
        self, origin: tuple[str, str, int], request: httpx.Request, timeout: float | None
    ) -> _Connection:
        pool = self.idle.get(origin)
        while pool:
            conn = pool.pop()
            if conn.usable():
                return conn
            conn.close()
        scheme, host, port = origin
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            tls = self.ssl_context or ssl.create_default_context()
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=HEADER_LIMIT
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out", request=request) from None
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"SSL: {exc}", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from None
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        for pool in self.idle.values():
            for conn in pool:
                conn.close()
        self.idle.clear()


def _default_port(request: httpx.Request) -> int:
    return 443 if request.url.scheme == "https" else 80


async def _send(conn: _Connection, request: httpx.Request, timeout: float | None) -> None:
    body = await request.aread()
    lines = [f"{request.method} {request.url.raw_path.decode('ascii')} HTTP/1.1"]
    for name, value in request.headers.multi_items():
        if name.lower() != "transfer-encoding":
            lines.append(f"{name}: {value}")
    if body and "content-length" not in request.headers:
        lines.append(f"Content-Length: {len(body)}")
    conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    try:
        async with asyncio.timeout(timeout):
            await conn.writer.drain()
    except TimeoutError:
        raise httpx.WriteTimeout("sending the request timed out", request=request) from None
    except OSError as exc:
        raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from None


async def _receive(
    reader: asyncio.StreamReader, request: httpx.Request, timeout: float | None
) -> tuple[int, str, str, list[tuple[str, str]], bytes, bool]:
    """(status, reason, version, headers, body, keep-alive) of one answer."""
    try:
        async with asyncio.timeout(timeout):
            return await _read_answer(reader, request)
    except TimeoutError:
        raise httpx.ReadTimeout("the registry did not answer in time", request=request) from None
    except asyncio.IncompleteReadError as exc:
        what = "without sending a response" if not exc.partial else "in the middle of a response"
        raise httpx.RemoteProtocolError(f"server disconnected {what}", request=request) from None
    except asyncio.LimitOverrunError:
        raise httpx.RemoteProtocolError("response headers too large", request=request) from None
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise httpx.RemoteProtocolError(f"malformed response: {exc}", request=request) from None
    except OSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from None


async def _read_answer(
    reader: asyncio.StreamReader, request: httpx.Request
) -> tuple[int, str, str, list[tuple[str, str]], bytes, bool]:
    while True:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, _, rest = head.partition("\r\n")
        version, code, reason = (status_line.split(" ", 2) + [""])[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3:
            raise ValueError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        status = int(code)
        if status >= 200 or status == 101:
            break  # 1xx interim answers (100 Continue) precede the real one
    headers: list[tuple[str, str]] = []
    length: int | None = None
    chunked = close = False
    for line in rest.split("\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"bad header line {line[:80]!r}")
        name, value = name.strip(), value.strip()
        low = name.lower()
        if low == "content-length":
            length = int(value)
        elif low == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif low == "connection":
            close = "close" in value.lower()
        headers.append((name, value))
    keep = not close and version != "HTTP/1.0"
    if request.method == "HEAD" or status in NO_BODY_STATUS or status < 200:
        body = b""
    elif chunked:
        body = await _read_chunked(reader)
    elif length is not None:
        body = await reader.readexactly(length)
    else:
        body = await reader.read()  # framed by the end of the connection
        keep = False
    if chunked:
        headers = [(n, v) for n, v in headers if n.lower() != "transfer-encoding"]
        headers.append(("Content-Length", str(len(body))))
    return status, reason, version, headers, body, keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
