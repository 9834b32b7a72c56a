"""The Docker Hub client's own rules, at the HTTP seam (httpx.MockTransport): JWT renewal, the
listing guards, the one-GET-per-digest rule, how refusals read, and the host mapping."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from regcollect.errors import AuthError, RegistryError
from regcollect.registry.client import sha256_digest
from regcollect.registry.dockerhub import DockerHubApi, HubRegistryClient, registry_for
from regcollect.registry.dockerhub_rest import RENEW_AFTER, HubRest, IncompleteListing
from regcollect.registry.http import retry_after
from regcollect.registry.session import api_kind

BASE = "https://hub.example"


def rest(handler: Any, clock: Any = time.monotonic, secret: str | None = "dckr_pat_x") -> HubRest:
    return HubRest(BASE, "", "octo", secret, clock=clock, transport=httpx.MockTransport(handler))


def tag_page(names: list[str], count: int, nxt: str | None = None) -> dict[str, Any]:
    rows = [
        {"name": n, "digest": "sha256:" + f"{i:064x}", "tag_last_pulled": None} for i, n in enumerate(names)
    ]
    return {"count": count, "next": nxt, "results": rows}


def test_docker_io_names_mean_the_registry_1_host_and_select_the_hub_api() -> None:
    for name in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert api_kind(name, None) == "dockerhub"
        assert registry_for(name, insecure=False) == "registry-1.docker.io"
    assert registry_for("127.0.0.1:5000", insecure=False) == "127.0.0.1:5000"


def test_the_jwt_is_renewed_before_it_expires_and_after_a_401() -> None:
    now = [0.0]
    logins: list[str] = []
    revoked: set[str] = set()

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v2/auth/token":
            assert json.loads(req.content) == {"identifier": "octo", "secret": "dckr_pat_x"}
            logins.append(f"jwt{len(logins)}")
            return httpx.Response(200, json={"access_token": logins[-1]})
        token = req.headers["Authorization"].removeprefix("Bearer ")
        return httpx.Response(
            401 if token in revoked else 200, json={"count": 0, "next": None, "results": []}
        )

    async def go() -> None:
        r = rest(handler, clock=lambda: now[0])
        await r.call("GET", "/v2/x", "x")
        await r.call("GET", "/v2/x", "x")
        assert len(logins) == 1
        now[0] = RENEW_AFTER + 1
        await r.call("GET", "/v2/x", "x")
        assert len(logins) == 2
        revoked.add(logins[-1])  # expired early on the Hub's side
        await r.call("GET", "/v2/x", "x")
        assert len(logins) == 3
        await r.aclose()

    asyncio.run(go())


def test_a_refused_login_names_the_fix_and_not_the_secret() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": "Incorrect authentication credentials"})

    async def go() -> None:
        r = rest(handler, secret="dckr_pat_secret123")
        with pytest.raises(AuthError) as info:
            await r.call("GET", "/v2/x", "x")
        assert "dckr_pat_secret123" not in str(info.value) and "personal access token" in str(info.value)
        await r.aclose()

    asyncio.run(go())


def _api(handler: Any) -> DockerHubApi:
    client = HubRegistryClient("127.0.0.1:1", transport=httpx.MockTransport(handler))
    return DockerHubApi(client, rest(handler))


def test_fewer_tags_than_the_count_is_read_again_then_refused() -> None:
    reads = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v2/auth/token":
            return httpx.Response(200, json={"access_token": "j"})
        reads.append(1)
        return httpx.Response(200, json=tag_page(["a", "b"], count=3))

    async def go() -> None:
        api = _api(handler)
        with pytest.raises(IncompleteListing, match="counts 3"):
            await api.listing("acme/app")
        assert len(reads) == 2
        await api.aclose()

    asyncio.run(go())


def test_a_next_page_on_another_origin_is_not_followed() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v2/auth/token":
            return httpx.Response(200, json={"access_token": "j"})
        return httpx.Response(200, json=tag_page(["a"], count=2, nxt="https://evil.example/v2/x?page=2"))

    async def go() -> None:
        api = _api(handler)
        with pytest.raises(IncompleteListing, match="another origin"):
            await api.listing("acme/app")
        await api.aclose()

    asyncio.run(go())


def test_a_digest_is_read_once_however_many_ask() -> None:
    data = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
    ).encode()
    digest = sha256_digest(data)
    gets = []

    def handler(req: httpx.Request) -> httpx.Response:
        gets.append(req.url.path)
        return httpx.Response(
            200, content=data, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        )

    async def go() -> None:
        client = HubRegistryClient("127.0.0.1:1", transport=httpx.MockTransport(handler))
        got = await asyncio.gather(*(client.get_manifest("acme/app", digest) for _ in range(5)))
        await client.get_manifest("acme/other", digest)
        assert {m.digest for m in got} == {digest} and len(gets) == 1
        await client.aclose()

    asyncio.run(go())


def test_a_referenced_manifest_fails_that_item_and_a_missing_permission_stops_the_run() -> None:
    status = [403]

    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "DELETE" and "/manifests/" in req.url.path:
            return httpx.Response(status[0], json={"errors": [{"code": "DENIED", "message": "referenced"}]})
        return httpx.Response(200, json={"access_token": "j"})

    async def go() -> None:
        api = _api(handler)
        with pytest.raises(RegistryError, match="still tagged or referenced") as info:
            await api.delete("acme/app", "sha256:" + "1" * 64)
        assert not isinstance(info.value, AuthError)
        status[0] = 500
        with pytest.raises(RegistryError, match="run again"):
            await api.delete("acme/app", "sha256:" + "1" * 64)
        await api.aclose()

    asyncio.run(go())


def test_x_retry_after_is_a_unix_time() -> None:
    resp = httpx.Response(429, headers={"X-Retry-After": str(int(time.time()) + 40)})
    wait = retry_after(resp)
    assert wait is not None and 38 <= wait <= 41
