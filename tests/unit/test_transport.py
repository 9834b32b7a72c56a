"""The lean HTTP/1.1 transport against a scripted loopback server: every framing a registry or a
proxy in front of it may use, and every way a connection can fail, must reach the client as the
same answer or the same httpx exception httpx's own transport gives (the retry logic keys on it).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest

from regcollect.registry.transport import LeanTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = 0
    for line in head.split("\r\n")[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return head, await reader.readexactly(length)


async def serve(handler: Handler, scenario: Callable[[str], Awaitable[None]]) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await scenario(f"http://127.0.0.1:{port}")
    finally:
        server.close()


def run(handler: Handler, scenario: Callable[[httpx.AsyncClient, str], Awaitable[None]]) -> None:
    async def main() -> None:
        async def with_client(base: str) -> None:
            async with httpx.AsyncClient(transport=LeanTransport(), timeout=2) as client:
                await scenario(client, base)

        await serve(handler, with_client)

    asyncio.run(main())


def test_content_length_chunked_and_close_framed_bodies_arrive_whole() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
    ]
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while answers:
            await read_request(reader)
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if answer.startswith(b"HTTP/1.0"):
                break
        writer.close()

    async def scenario(client: httpx.AsyncClient, base: str) -> None:
        assert (await client.get(base + "/a")).text == "hello"
        chunked = await client.get(base + "/b")
        assert chunked.content == b"abcde"
        created = await client.post(base + "/c", content=b"payload")
        assert (created.status_code, created.headers["location"]) == (201, "/x")
        assert (await client.get(base + "/d")).text == "until the end"

    run(handler, scenario)
    assert connections == 1  # keep-alive: four requests, one connection


def test_request_line_headers_and_body_reach_the_server_as_sent() -> None:
    seen: list[tuple[str, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(
            b"HTTP/1.1 202 Accepted\r\nDocker-Content-Digest: sha256:ab\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    async def scenario(client: httpx.AsyncClient, base: str) -> None:
        resp = await client.put(
            base + "/v2/a/b/manifests/v1?x=1", content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert resp.headers["docker-content-digest"] == "sha256:ab"

    run(handler, scenario)
    head, body = seen[0]
    assert head.startswith("PUT /v2/a/b/manifests/v1?x=1 HTTP/1.1\r\n")
    assert "content-type: application/json" in head.lower()
    assert body == b"{}"


def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # keep-alive was promised, then the server closed it while idle

    async def scenario(client: httpx.AsyncClient, base: str) -> None:
        assert (await client.get(base + "/1")).text == "ok"
        await asyncio.sleep(0.05)
        assert (await client.get(base + "/2")).text == "ok"

    run(handler, scenario)
    assert connections == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"", httpx.RemoteProtocolError),  # dropped before answering
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", httpx.RemoteProtocolError),
        (b"SSH-2.0-OpenSSH\r\n\r\n", httpx.RemoteProtocolError),  # not HTTP at all
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", httpx.RemoteProtocolError),
        (None, httpx.ReadTimeout),  # never answers
    ],
)
def test_broken_answers_raise_httpx_transport_errors(answer: bytes | None, error: type[Exception]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if answer is None:
            await asyncio.sleep(3)
        writer.write(answer or b"")
        await writer.drain()
        writer.close()

    async def scenario(client: httpx.AsyncClient, base: str) -> None:
        with pytest.raises(error):
            await client.get(base + "/x", timeout=0.5)

    run(handler, scenario)


def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused

    async def main() -> None:
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/v2/")

    asyncio.run(main())
