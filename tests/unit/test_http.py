"""The HTTP path (httpx.AsyncClient under RegistryClient): what users rely on when a registry or
the network misbehaves. Credentials stay with the registry's origin, a silent server costs two
timeouts, an endless answer is cut off, and retries stay within their budget."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from regcollect.errors import ConnectError, RegistryError
from regcollect.registry import http as http_mod
from regcollect.registry.auth import Credentials, RegistryAuth
from regcollect.registry.client import RegistryClient
from regcollect.registry.http import ResponseTooLarge

DIGEST = "sha256:" + "ab" * 32
BLOB = b"blob bytes"
BLOB_DIGEST = "sha256:" + __import__("hashlib").sha256(BLOB).hexdigest()


def client(handler: Callable[[httpx.Request], httpx.Response], **kw) -> RegistryClient:  # type: ignore[no-untyped-def]
    return RegistryClient("https://reg.test", transport=httpx.MockTransport(handler), **kw)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_token_flow_then_a_redirect_to_storage_without_the_credentials() -> None:
    seen: list[tuple[httpx.URL, httpx.Headers]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url, request.headers.copy()))  # the flow re-sends the same object
        if request.url.host == "storage.test":
            return httpx.Response(200, content=BLOB)
        if request.url.path == "/token":
            return httpx.Response(200, json={"token": "T0K"})
        if request.headers.get("Authorization") != "Bearer T0K":
            challenge = 'Bearer realm="https://reg.test/token",service="svc",scope="repository:team/app:pull"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(307, headers={"Location": "https://storage.test/data/x"})

    async def main() -> bytes:
        auth = RegistryAuth(Credentials("alice", "s3cret"), base="https://reg.test")
        async with client(handler, auth=auth) as c:
            return await c.get_blob("team/app", BLOB_DIGEST)

    assert run(main()) == BLOB
    (_, first), (token_url, token), (_, retry), (fetched_url, fetched) = seen
    assert "Authorization" not in first
    assert token["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert token_url.params["scope"] == "repository:team/app:pull"
    assert retry["Authorization"] == "Bearer T0K"
    assert fetched_url.host == "storage.test"
    assert "Authorization" not in fetched  # the token stays with the registry


def test_a_redirect_loop_is_a_clear_error_not_a_hang() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "/v2/team/app/tags/list"})

    async def main() -> None:
        async with client(handler) as c:
            await c.tags("team/app")

    with pytest.raises(
        ConnectError, match=r"listing tags of team/app: https://reg\.test/v2/team/app/tags/list"
    ):
        run(main())


def test_a_silent_server_costs_two_timeouts_then_a_connect_error_naming_the_limit() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ReadTimeout("no answer", request=request)

    async def main() -> None:
        async with client(handler, timeout=5) as c:
            await c.ping()

    with pytest.raises(ConnectError, match=r"no answer within 5 s \(tried 2 times; --timeout"):
        run(main())
    assert len(calls) == 2


class Endless(httpx.AsyncByteStream):
    """A body that never ends; counts what was read from it."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.sent += 1 << 20
            yield b"[" * (1 << 20)


def test_an_endless_tag_page_is_cut_off_at_the_cap_as_an_error_for_that_repository() -> None:
    body = Endless()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=body, headers={"Content-Type": "application/json"})

    async def main() -> None:
        async with client(handler) as c:
            await c.tags("team/app")

    with pytest.raises(ResponseTooLarge, match="over the"):
        run(main())
    assert body.sent <= (32 << 20) + (1 << 20)  # stopped reading at the page cap


def test_a_manifest_whose_content_length_is_over_the_cap_is_not_read() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(5 << 20)}, content=b"x" * (5 << 20))

    async def main() -> None:
        async with client(handler) as c:
            await c.get_manifest("team/app", "v1")

    with pytest.raises(ResponseTooLarge, match=r"5242880 bytes is over the 4194304 byte limit"):
        run(main())


def test_retry_after_beyond_the_wait_budget_is_an_error_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(
            429, headers={"Retry-After": "3600"}, json={"errors": [{"code": "TOOMANYREQUESTS"}]}
        )

    async def main() -> None:
        async with client(handler) as c:
            await c.tags("team/app")

    with pytest.raises(RegistryError, match=r"429: rate limited, the server asks to wait 3600 s"):
        run(main())
    assert len(calls) == 1


def test_503_is_retried_within_the_attempts_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_mod, "_backoff", lambda attempt: 0.0)
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503)

    async def main() -> None:
        async with client(handler) as c:
            await c.tags("team/app")

    with pytest.raises(RegistryError, match="503"):
        run(main())
    assert len(calls) == http_mod.ATTEMPTS


def test_a_blob_whose_bytes_do_not_match_its_digest_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"other bytes")

    async def main() -> None:
        async with client(handler) as c:
            await c.get_blob("team/app", BLOB_DIGEST)

    with pytest.raises(RegistryError, match="does not match its digest"):
        run(main())


def test_a_manifest_served_for_a_tag_must_match_the_digest_the_registry_names() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{}", headers={"Docker-Content-Digest": DIGEST})

    async def main() -> None:
        async with client(handler) as c:
            await c.get_manifest("team/app", "v1")

    with pytest.raises(RegistryError, match="does not match its digest"):
        run(main())


@pytest.mark.parametrize("ref", ["../../../other/manifests/latest", "v1\x1b[31m", "a/b"])
def test_names_that_fail_the_grammar_never_reach_a_url(ref: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"sent {request.url}")

    async def main() -> None:
        async with client(handler) as c:
            await c.head_manifest("team/app", ref)

    with pytest.raises(RegistryError, match="invalid reference"):
        run(main())


def test_a_transient_referrers_failure_raises_instead_of_meaning_no_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_mod, "_backoff", lambda attempt: 0.0)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    async def main() -> object:
        async with client(handler) as c:
            return await c.referrers("team/app", DIGEST)

    with pytest.raises(RegistryError, match="503"):
        run(main())

    def no_api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="404 page not found")

    async def main2() -> object:
        async with client(no_api) as c:
            return await c.referrers("team/app", DIGEST)

    assert run(main2()) is None


def test_a_presigned_storage_url_is_printed_without_its_signature() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "storage.test":
            return httpx.Response(403, text="expired")
        return httpx.Response(
            307, headers={"Location": "https://storage.test/b?X-Amz-Signature=abc123&X-Amz-Credential=k"}
        )

    async def main() -> None:
        async with client(handler) as c:
            await c.get_blob("team/app", BLOB_DIGEST)

    with pytest.raises(Exception) as err:
        run(main())
    assert "storage.test/b" in str(err.value) and "abc123" not in str(err.value)


def test_a_person_watching_is_told_when_an_answer_is_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_mod, "SLOW_NOTICE", 0.05)
    told: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.3)
        return httpx.Response(200, json={})

    async def main() -> None:
        async with client(handler, notice=told.append) as c:
            await c.ping()

    run(main())
    assert told == ["still waiting for reg.test to answer GET /v2/ ..."]


def test_retry_after_reads_seconds_dates_and_unix_times() -> None:
    import time as _time

    def resp(**h: str) -> httpx.Response:
        return httpx.Response(429, headers=h, request=httpx.Request("GET", "https://reg.test/"))

    assert http_mod.retry_after(resp(**{"Retry-After": "7"})) == 7
    assert http_mod.retry_after(resp(**{"X-Retry-After": "12"})) == 12  # seconds, not 1970
    later = http_mod.retry_after(resp(**{"X-Retry-After": str(int(_time.time()) + 30)}))
    assert later is not None and 25 <= later <= 31
    assert http_mod.retry_after(resp()) is None


@pytest.mark.parametrize(
    ("url", "env", "lean"),
    [
        ("http://127.0.0.1:5000", {}, True),
        ("http://127.0.0.1:5000", {"HTTP_PROXY": "http://127.0.0.1:9"}, False),
        (
            "http://registry.example",
            {"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "registry.example"},
            True,
        ),
        ("https://registry.example", {}, False),  # HTTP/2 by ALPN and TLS options: httpx's own
    ],
)
def test_plain_http_gets_the_lean_transport_unless_a_proxy_applies(monkeypatch, url, env, lean) -> None:  # type: ignore[no-untyped-def]
    from regcollect.registry.transport import LeanTransport

    for name in (
        "HTTP_PROXY",
        "http_proxy",
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
    c = RegistryClient(url)
    assert all(isinstance(p._transport, LeanTransport) is lean for p in c.pools)
    run(c.aclose())
