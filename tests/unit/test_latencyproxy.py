"""The benchmark's latency proxy (scripts/latencyproxy.py) against a scripted loopback upstream.

The benchmark's figures at an RTT are only as good as the proxy: a request must reach the
registry as the client sent it and come back as the registry answered, each must wait at least
the round trip, its counts must name the right kinds, and an upload's Location must lead back
through the proxy (or the client would bypass the delay and the count).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import httpx

from scripts.latencyproxy import LatencyProxy, kind_of

DIGEST = "sha256:" + "ab" * 32


class Upstream:
    """Answers every request with a JSON echo of what it received, on keep-alive connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.address = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                method, target, _ = head.split("\r\n")[0].split(" ")
                headers = dict(
                    (k.strip().lower(), v.strip())
                    for k, v in (line.split(":", 1) for line in head.split("\r\n")[1:] if line)
                )
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if target.startswith("/v2/drop"):  # the registry went away mid-request
                    writer.close()
                    return
                writer.write(self.answer(method, target, headers, body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        echo = json.dumps(
            {"method": method, "target": target, "headers": headers, "body": body.decode()}
        ).encode()
        if target.startswith("/v2/chunked"):  # distribution frames larger answers in chunks
            half = len(echo) // 2
            chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, echo[:half], len(echo) - half, echo[half:])
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kind: chunked\r\n\r\n" + chunks
        if method == "HEAD":
            return (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nDocker-Content-Digest: %s\r\n\r\n"
                % DIGEST.encode()
            )
        if method == "POST":
            location = f"http://{self.address}/v2/a/blobs/uploads/u1?_state=s"
            return (
                b"HTTP/1.1 202 Accepted\r\nLocation: %s\r\nRange: 0-0\r\nContent-Length: 0\r\n\r\n"
                % location.encode()
            )
        if target.startswith("/v2/elsewhere"):
            return b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://storage.invalid/x\r\nContent-Length: 0\r\n\r\n"
        return b"HTTP/1.1 201 Created\r\nX-Echo: yes\r\nContent-Length: %d\r\n\r\n%s" % (len(echo), echo)


def run(
    scenario: Callable[[httpx.AsyncClient, LatencyProxy, Upstream], Awaitable[None]], rtt_ms: float = 0
) -> None:
    async def main() -> None:
        upstream = Upstream()
        server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
        upstream.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        proxy = LatencyProxy(upstream.address, rtt_ms=rtt_ms)
        address = await proxy.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://{address}", timeout=5) as client:
                await scenario(client, proxy, upstream)
        finally:
            await proxy.close()
            server.close()

    asyncio.run(main())


def test_request_and_answer_pass_through_unchanged() -> None:
    async def scenario(client: httpx.AsyncClient, proxy: LatencyProxy, upstream: Upstream) -> None:
        r = await client.put(
            "/v2/a/b/manifests/t1?x=1",
            content=b'{"schemaVersion":2}',
            headers={"Authorization": "Bearer tok", "Content-Type": "application/vnd.test+json"},
        )
        assert (r.status_code, r.headers["x-echo"]) == (201, "yes")
        echo = r.json()
        assert (echo["method"], echo["target"], echo["body"]) == (
            "PUT",
            "/v2/a/b/manifests/t1?x=1",
            '{"schemaVersion":2}',
        )
        assert echo["headers"]["authorization"] == "Bearer tok"
        assert echo["headers"]["content-type"] == "application/vnd.test+json"
        assert (
            echo["headers"]["host"] == client.base_url.netloc.decode()
        )  # the registry builds URLs from Host

        head = await client.head(f"/v2/a/manifests/{DIGEST}")  # no body, but the GET's length and digest
        assert (head.headers["content-length"], head.headers["docker-content-digest"]) == ("1234", DIGEST)

        chunked = await client.get("/v2/chunked/tags/list")  # re-framed by length, same bytes
        assert (chunked.headers["x-kind"], chunked.json()["target"]) == ("chunked", "/v2/chunked/tags/list")

        assert upstream.connections == 1  # keep-alive on both sides: one client connection, one upstream

    run(scenario)


def test_each_request_waits_at_least_the_round_trip() -> None:
    async def scenario(client: httpx.AsyncClient, proxy: LatencyProxy, upstream: Upstream) -> None:
        for _ in range(3):
            t0 = time.monotonic()
            assert (await client.get("/v2/a/tags/list")).status_code == 201
            assert time.monotonic() - t0 >= 0.08

    run(scenario, rtt_ms=80)


def test_upload_location_leads_back_through_the_proxy_and_others_are_left_alone() -> None:
    async def scenario(client: httpx.AsyncClient, proxy: LatencyProxy, upstream: Upstream) -> None:
        started = await client.post("/v2/a/blobs/uploads/")
        assert started.headers["location"] == f"http://{proxy.address}/v2/a/blobs/uploads/u1?_state=s"
        assert started.headers["range"] == "0-0"
        done = await client.put(started.headers["location"] + f"&digest={DIGEST}", content=b"layer")
        assert done.json()["target"] == f"/v2/a/blobs/uploads/u1?_state=s&digest={DIGEST}"
        away = await client.get("/v2/elsewhere/blobs/" + DIGEST)
        assert away.headers["location"] == "http://storage.invalid/x"

    run(scenario)


def test_counts_requests_by_method_and_kind() -> None:
    async def scenario(client: httpx.AsyncClient, proxy: LatencyProxy, upstream: Upstream) -> None:
        for method, path in [
            ("GET", "/v2/"),
            ("GET", "/v2/_catalog?n=100"),
            ("GET", "/v2/team/app/tags/list"),
            ("GET", "/v2/team/app/tags/list?last=t1&n=50"),
            ("HEAD", "/v2/team/app/manifests/latest"),
            ("GET", f"/v2/team/app/manifests/{DIGEST}"),
            ("DELETE", f"/v2/team/app/manifests/{DIGEST}"),
            ("GET", f"/v2/team/app/blobs/{DIGEST}"),
            ("POST", "/v2/team/app/blobs/uploads/"),
            ("GET", f"/v2/team/app/referrers/{DIGEST}"),
            ("GET", "/v2/team/tags/manifests/list"),  # repository "team/tags", tag "list": a manifest
            ("GET", "/v2/team/manifests/tags/list"),  # repository "team/manifests": its tag list
        ]:
            await client.request(method, path)
        counts = (await client.get("/_latencyproxy/counts")).json()
        assert counts["requests"] == {
            "GET other": 1,
            "GET catalog": 1,
            "GET tags": 3,
            "HEAD manifest": 1,
            "GET manifest": 2,
            "DELETE manifest": 1,
            "GET blob": 1,
            "POST upload": 1,
            "GET referrers": 1,
        }
        assert counts["total"] == 12  # the control request itself is not counted
        assert counts["statuses"] == {"200": 1, "201": 10, "202": 1}

    run(scenario)


def test_a_lost_upstream_connection_is_a_502_and_the_next_request_gets_a_fresh_one() -> None:
    async def scenario(client: httpx.AsyncClient, proxy: LatencyProxy, upstream: Upstream) -> None:
        assert (await client.get("/v2/a/tags/list")).status_code == 201
        assert (await client.get("/v2/drop/tags/list")).status_code == 502
        assert (await client.get("/v2/a/tags/list")).status_code == 201
        counts = (await client.get("/_latencyproxy/counts")).json()
        assert (counts["errors"], counts["requests"]) == (1, {"GET tags": 3})  # the bench row shows both
        assert upstream.connections == 2

    run(scenario)


def test_kind_of_paths_outside_the_api() -> None:
    assert kind_of(b"/") == "other"
    assert kind_of(b"/v2/_catalog") == "catalog"
    assert kind_of(b"/v2/a/blobs/uploads/u1?digest=sha256:00") == "upload"
    assert kind_of(b"/v2/a/manifests") == "other"
