"""HttpClient (registry/http.py) over httpx.MockTransport: what a user sees when a server pages,
refuses, throttles, drops or floods; the retry budget; and the quota slowing requests down
(issue 21: mutation survivors in the HTTP layer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from regcollect.errors import AuthError, ConnectError, RegistryError
from regcollect.registry import http as http_mod
from regcollect.registry.http import POOL_SIZE, USER_AGENT, HttpClient, IncompleteListing, ResponseTooLarge

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **kw: Any) -> HttpClient:
    return HttpClient("https://reg.test", transport=httpx.MockTransport(handler), **kw)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    monkeypatch.setattr(http_mod.asyncio, "sleep", sleep)
    return slept


def names(doc: Any, url: str) -> list[str]:
    return list(doc["tags"])


def paged(handler: Handler) -> list[str]:
    return run(client(handler).paged("/v2/a/tags/list?n=2", "listing tags of a", names, key=str))


def test_pages_are_followed_by_relative_absolute_and_unquoted_links() -> None:
    pages = {
        "/v2/a/tags/list?n=2": (["a", "b"], '</v2/a/tags/list?n=2&last=b>; rel="next"'),
        "/v2/a/tags/list?n=2&last=b": (["c"], "<https://REG.test:443/v2/a/tags/list?last=c>; rel=next"),
        "/v2/a/tags/list?last=c": (["d"], '<https://reg.test/x>; rel="prev"'),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        tags, link = pages[request.url.raw_path.decode()]
        return httpx.Response(200, json={"tags": tags}, headers={"Link": link})

    assert paged(handler) == ["a", "b", "c", "d"]


def test_a_repeated_link_a_foreign_link_and_an_empty_page_end_as_incomplete_listings() -> None:
    def loop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"tags": ["a"]}, headers={"Link": '</v2/a/tags/list?n=2>; rel="next"'}
        )

    with pytest.raises(IncompleteListing) as err:
        paged(loop)
    assert str(err.value) == "listing tags of a: the next-page link repeats (/v2/a/tags/list?n=2)"

    def foreign(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"tags": ["a"]}, headers={"Link": '<https://evil.test/p>; rel="next"'}
        )

    with pytest.raises(IncompleteListing) as err:
        paged(foreign)
    assert str(err.value) == (
        "listing tags of a: the next page is on another origin (https://evil.test/p), not "
        "https://reg.test; not followed, so the listing is incomplete"
    )

    def stuck(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("p", "0"))
        return httpx.Response(
            200, json={"tags": ["a"]}, headers={"Link": f'</v2/a/tags/list?p={n + 1}>; rel="next"'}
        )

    with pytest.raises(IncompleteListing) as err:
        paged(stuck)
    assert str(err.value) == "listing tags of a: page 2 added nothing new but links to another"


def test_a_listing_longer_than_max_pages_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_mod, "MAX_PAGES", 3)

    def endless(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("p", "0"))
        return httpx.Response(
            200, json={"tags": [str(n)]}, headers={"Link": f'</v2/a/tags/list?p={n + 1}>; rel="next"'}
        )

    with pytest.raises(IncompleteListing) as err:
        paged(endless)
    assert str(err.value) == "listing tags of a: more than 3 pages; giving up"


def test_a_body_that_is_not_json_names_the_status() -> None:
    with pytest.raises(RegistryError) as err:
        paged(lambda r: httpx.Response(200, text="<html>"))
    assert (
        str(err.value)
        == "listing tags of a: https://reg.test/v2/a/tags/list?n=2: 200 but the body is not JSON"
    )
    assert err.value.status == 200


def test_an_answer_over_its_cap_is_refused_by_length_or_while_reading_but_head_is_not() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = b"" if request.method == "HEAD" else b"x" * 10  # a HEAD names the length, sends nothing
        return httpx.Response(200, content=body, headers={"Content-Length": "10"})

    big = client(handler)
    with pytest.raises(ResponseTooLarge) as err:
        run(big.request("GET", "/v2/", cap=9))
    assert (
        str(err.value)
        == "GET https://reg.test/v2/: answer of 10 bytes is over the 9 byte limit for this kind of request"
    )
    assert run(big.request("GET", "/v2/", cap=10)).content == b"x" * 10
    assert run(big.request("HEAD", "/v2/", cap=1)).status_code == 200

    async def stream() -> Any:
        yield b"x" * 6
        yield b"x" * 6

    chunked = client(lambda r: httpx.Response(200, content=stream()))
    with pytest.raises(ResponseTooLarge) as err:
        run(chunked.request("GET", "/v2/", cap=11))
    assert (
        str(err.value)
        == "GET https://reg.test/v2/: answer is over the 11 byte limit for this kind of request"
    )
    assert (
        run(client(lambda r: httpx.Response(200, content=stream())).request("GET", "/v2/", cap=12)).content
        == b"x" * 12
    )


def test_retries_wait_the_servers_retry_after_and_tell_a_person_watching(no_sleep: list[float]) -> None:
    answers = iter(
        [httpx.Response(503, headers={"Retry-After": "2"}), httpx.Response(429), httpx.Response(200)]
    )
    told: list[str] = []
    c = client(lambda r: next(answers), notice=told.append)
    assert run(c.call("GET", "/v2/x", "reading")).status_code == 200
    assert no_sleep[0] == 2.0 and 0.05 <= no_sleep[1] <= 0.2
    assert told == ["waiting 2 s before retrying GET https://reg.test/v2/x"]
    assert c.requests == 3


def test_retries_stop_at_the_attempt_budget_and_report_the_last_answer(no_sleep: list[float]) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(502)

    with pytest.raises(RegistryError) as err:
        run(client(handler, attempts=3).call("GET", "/v2/x", "reading"))
    assert len(calls) == 3 and err.value.status == 502 and len(no_sleep) == 2
    calls.clear()
    with pytest.raises(RegistryError):
        run(client(handler, attempts=0).call("GET", "/v2/x", "reading"))
    assert len(calls) == 1  # at least one attempt


def test_a_403_rate_limit_is_retried_a_plain_403_is_not(no_sleep: list[float]) -> None:
    answers = iter(
        [
            httpx.Response(403, headers={"X-RateLimit-Remaining": "0", "X-Retry-After": "1"}),
            httpx.Response(200),
        ]
    )
    assert run(client(lambda r: next(answers)).call("GET", "/v2/x", "reading")).status_code == 200
    calls: list[int] = []

    def plain(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(403)

    with pytest.raises(AuthError):
        run(client(plain).call("GET", "/v2/x", "reading"))
    assert len(calls) == 1


def test_a_retry_after_beyond_the_budget_is_named(no_sleep: list[float]) -> None:
    c = client(lambda r: httpx.Response(429, headers={"Retry-After": "120"}), max_wait=30)
    with pytest.raises(RegistryError) as err:
        run(c.call("GET", "/v2/x", "reading"))
    assert str(err.value) == (
        "reading: https://reg.test/v2/x: 429: rate limited, the server asks to wait 120 s, more than the 30 s allowed"
    )
    assert no_sleep == []


def test_the_wait_budget_caps_back_off_over_many_attempts(no_sleep: list[float]) -> None:
    c = client(lambda r: httpx.Response(503), attempts=50, max_wait=1.0)
    with pytest.raises(RegistryError):
        run(c.call("GET", "/v2/x", "reading"))
    assert sum(no_sleep) <= 1.0 and len(no_sleep) >= 3


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def test_transport_failures_become_one_line_connect_errors(no_sleep: list[float]) -> None:
    with pytest.raises(ConnectError) as err:
        run(client(raising(httpx.ConnectError("refused")), attempts=2).call("GET", "/v2/", "contacting"))
    assert str(err.value) == "contacting: cannot connect to https://reg.test/v2/: refused"
    assert len(no_sleep) == 1
    with pytest.raises(ConnectError) as err:
        run(
            client(raising(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] x"))).call(
                "GET", "/v2/", "contacting"
            )
        )
    assert str(err.value) == (
        "contacting: TLS failed for https://reg.test/v2/: [SSL: CERTIFICATE_VERIFY_FAILED] x "
        "(use --ca-cert FILE, or --insecure for a registry without valid TLS)"
    )
    assert len(no_sleep) == 1  # a certificate is not retried
    with pytest.raises(ConnectError) as err:
        run(client(raising(httpx.ReadError("reset")), attempts=1).call("GET", "/v2/", "contacting"))
    assert str(err.value) == "contacting: https://reg.test/v2/: ReadError: reset"


def test_a_timeout_is_retried_once_then_named_with_the_limit(no_sleep: list[float]) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("slow")

    with pytest.raises(ConnectError) as err:
        run(client(handler, timeout=7).call("GET", "/v2/", "contacting"))
    assert str(err.value) == (
        "contacting: https://reg.test/v2/: no answer within 7 s (tried 2 times; --timeout sets the limit)"
    )
    assert len(calls) == 2


def test_the_log_names_each_request_and_failure() -> None:
    lines: list[str] = []
    c = client(lambda r: httpx.Response(204), log=lines.append)
    run(c.request("DELETE", "/v2/a/manifests/x"))
    assert lines[0].startswith("DELETE https://reg.test/v2/a/manifests/x -> 204 HTTP/1.1 (") and lines[
        0
    ].endswith(" ms)")
    lines.clear()
    with pytest.raises(ConnectError):
        run(client(raising(httpx.ConnectError("x")), log=lines.append, attempts=1).call("GET", "/v2/", "w"))
    assert lines == ["GET https://reg.test/v2/ -> ConnectError"]


def test_a_quota_running_out_lowers_the_requests_in_flight() -> None:
    c = client(
        lambda r: httpx.Response(200, headers={"X-RateLimit-Remaining": "6"}), concurrency=32, fixed=True
    )
    assert c.limiter.limit == 32
    run(c.request("GET", "/v2/"))
    assert c.limiter.limit == 3.0
    c = client(
        lambda r: httpx.Response(200, headers={"X-RateLimit-Remaining": "1"}), concurrency=32, fixed=True
    )
    run(c.request("GET", "/v2/"))
    assert c.limiter.limit == 1.0


def test_the_client_spreads_connections_over_small_pools_and_names_itself() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    c = client(handler, concurrency=POOL_SIZE * 2 + 1, headers={"X-Extra": "1"})
    assert len(c.pools) == 3 and c.http is c.pools[0]
    assert client(handler, concurrency=POOL_SIZE).pools.__len__() == 1
    assert len(client(handler, concurrency=0).pools) == 1
    run(c.request("GET", "/v2/"))
    assert seen[0].headers["User-Agent"] == USER_AGENT and seen[0].headers["X-Extra"] == "1"
    assert seen[0].headers["Accept"] == "*/*"
    assert (c.host, c.base, c.timeout, c.attempts, c.max_wait, c.requests) == (
        "reg.test",
        "https://reg.test",
        30.0,
        5,
        60.0,
        1,
    )
    assert c.rate.remaining is None and c.pace is None


def test_a_pace_hook_runs_before_each_attempt(no_sleep: list[float]) -> None:
    answers = iter([httpx.Response(503), httpx.Response(200)])
    c = client(lambda r: next(answers))
    paced: list[str] = []

    async def pace(method: str) -> None:
        paced.append(method)

    c.pace = pace
    run(c.request("GET", "/v2/"))
    assert paced == ["GET", "GET"]


def test_content_encoding_is_not_passed_on_with_the_decoded_body() -> None:
    import gzip

    body = gzip.compress(b'{"a":1}')
    c = client(lambda r: httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"}))
    resp = run(c.request("GET", "/v2/"))
    assert resp.json() == {"a": 1} and "content-encoding" not in resp.headers
