"""Requests over the lean path (LeanSender on LeanTransport), against scripted loopback servers:
the token flow and redirects must behave as they did under httpx.AsyncClient, and credentials
must never follow a redirect to another origin (blob GETs are sent on to storage elsewhere)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import httpx
import pytest

from regcollect.errors import ConnectError
from regcollect.registry.auth import Credentials, RegistryAuth
from regcollect.registry.client import RegistryClient
from regcollect.registry.sender import LeanSender
from tests.unit.test_transport import read_request

DIGEST = "sha256:" + "ab" * 32


def header(head: str, name: str) -> str | None:
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


async def start(respond: Callable[[str], bytes]) -> tuple[asyncio.Server, str]:
    """A keep-alive server answering each request head with respond(head)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                head, _ = await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            writer.write(respond(head))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


def answer(status: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_token_flow_then_a_redirect_to_storage_without_the_credentials() -> None:
    seen: dict[str, list[str]] = {"registry": [], "storage": []}

    async def main() -> bytes:
        def storage(head: str) -> bytes:
            seen["storage"].append(head)
            return answer("200 OK", body=b"blob bytes")

        store_server, store = await start(storage)

        def registry(head: str) -> bytes:
            seen["registry"].append(head)
            if head.startswith("GET /token?"):
                return answer("200 OK", body=b'{"token": "T0K"}')
            if header(head, "Authorization") != "Bearer T0K":
                realm = f"http://{reg}/token"
                challenge = f'Bearer realm="{realm}",service="svc",scope="repository:team/app:pull"'
                return answer("401 Unauthorized", {"WWW-Authenticate": challenge})
            return answer("307 Temporary Redirect", {"Location": f"http://{store}/data/x"})

        reg_server, reg = await start(registry)
        try:
            auth = RegistryAuth(Credentials("alice", "s3cret"), base=f"http://{reg}")
            async with RegistryClient(reg, auth=auth) as client:
                assert isinstance(client.http, LeanSender)
                return await client.get_blob("team/app", DIGEST)
        finally:
            reg_server.close()
            store_server.close()

    assert asyncio.run(main()) == b"blob bytes"
    first, token, retry = seen["registry"]
    assert header(first, "Authorization") is None
    basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert token.startswith("GET /token?") and header(token, "Authorization") == basic
    assert "scope=repository%3Ateam%2Fapp%3Apull" in token.split("\r\n")[0]
    assert header(retry, "Authorization") == "Bearer T0K"
    (fetched,) = seen["storage"]
    assert fetched.startswith("GET /data/x HTTP/1.1")
    assert header(fetched, "Authorization") is None  # the token stays with the registry


def test_a_redirect_loop_is_a_clear_error_not_a_hang() -> None:
    async def main() -> None:
        def loop(head: str) -> bytes:
            return answer("302 Found", {"Location": "/v2/team/app/tags/list"})

        server, reg = await start(loop)
        try:
            async with RegistryClient(reg) as client:
                await client.tags("team/app")
        finally:
            server.close()

    with pytest.raises(
        ConnectError, match=r"listing tags of team/app: http://127\.0\.0\.1:\d+/v2/team/app/tags/list"
    ):
        asyncio.run(main())


@pytest.mark.parametrize(
    ("env", "lean"),
    [
        ({}, True),
        ({"REGCOLLECT_HTTP_TRANSPORT": "httpx"}, False),
        ({"HTTPS_PROXY": "http://127.0.0.1:9"}, False),
        ({"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "registry.example"}, True),
    ],
)
def test_a_proxy_in_the_environment_gets_httpx_whole(monkeypatch: pytest.MonkeyPatch, env, lean) -> None:
    for name in (
        "REGCOLLECT_HTTP_TRANSPORT",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = RegistryClient("registry.example")
    assert isinstance(client.http, LeanSender) is lean
    assert isinstance(client.http, httpx.AsyncClient) is not lean
