"""The Docker Hub emulator answers as hosted-registries.md section 2 says, switches included:
tests that rely on it test regcollect against the fact sheet, not against the emulator's whims."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.dockerhub import PASSWORD, PAT, HubEmulator, seed_demo
from tests.support.ghcr.demo import Seeded


@pytest.fixture(scope="module")
def hub() -> Iterator[tuple[HubEmulator, Seeded]]:
    with HubEmulator() as e:
        yield e, seed_demo(e)


def jwt(e: HubEmulator, user: str = "octo", secret: str = PAT) -> dict[str, str]:
    r = httpx.post(f"{e.api_url}/v2/auth/token", json={"identifier": user, "secret": secret})
    assert r.status_code == 200
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def registry_token(e: HubEmulator, scope: str, secret: str = PAT) -> dict[str, str]:
    basic = base64.b64encode(f"octo:{secret}".encode()).decode()
    r = httpx.get(
        f"{e.registry.url}/token", params={"scope": scope}, headers={"Authorization": f"Basic {basic}"}
    )
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_login_gives_a_jwt_and_wrong_secrets_and_2fa_passwords_are_refused(hub) -> None:
    e, _ = hub
    assert "Authorization" in jwt(e)
    bad = httpx.post(f"{e.api_url}/v2/auth/token", json={"identifier": "octo", "secret": "nope"})
    assert bad.status_code == 401
    e.store.accounts["octo"].two_factor = True
    try:
        legacy = httpx.post(f"{e.api_url}/v2/users/login", json={"username": "octo", "password": PASSWORD})
        assert legacy.status_code == 401 and legacy.json()["login_2fa_token"]
        assert httpx.post(f"{e.api_url}/v2/users/login", json={"username": "octo", "password": PAT}).json()[
            "token"
        ]
    finally:
        e.store.accounts["octo"].two_factor = False


def test_tags_page_by_next_up_to_100_with_digests_platforms_and_pull_times(hub) -> None:
    e, s = hub
    url: str | None = f"{e.api_url}/v2/namespaces/acme/repositories/many/tags?page_size=100"
    names, pages = [], 0
    while url:
        doc = httpx.get(url).json()
        pages += 1
        names += [t["name"] for t in doc["results"]]
        url = doc["next"]
        assert doc["count"] == 130
    assert pages == 2 and len(set(names)) == 130
    assert httpx.get(f"{e.api_url}/v2/repositories/acme/many/tags?page_size=101").status_code == 400
    latest = next(
        t
        for t in httpx.get(f"{e.api_url}/v2/repositories/acme/app/tags?page_size=100").json()["results"]
        if t["name"] == "latest"
    )
    assert (
        latest["digest"] == s.refs["app:v1.2.0"] and latest["tag_last_pulled"] and latest["tag_last_pushed"]
    )
    assert {i["architecture"] for i in latest["images"]} == {"amd64", "arm64"}


def test_private_repositories_need_a_jwt(hub) -> None:
    e, _ = hub
    assert httpx.get(f"{e.api_url}/v2/namespaces/octo/repositories/tool/tags").status_code == 404
    assert (
        httpx.get(f"{e.api_url}/v2/namespaces/octo/repositories/tool/tags", headers=jwt(e)).status_code == 200
    )


def test_an_expired_jwt_is_401(hub) -> None:
    e, _ = hub
    h = jwt(e)
    e.expire_jwts()
    assert httpx.get(f"{e.api_url}/v2/namespaces/octo/repositories/tool/tags", headers=h).status_code == 401


def test_manifest_delete_202_only_untagged_and_unreferenced_403_otherwise() -> None:
    with HubEmulator() as e:
        s = seed_demo(e)
        h = registry_token(e, "repository:acme/app:pull,delete")
        url = f"{e.registry.url}/v2/acme/app/manifests/"
        assert httpx.delete(url + s.refs["app:nightly-0"], headers=h).status_code == 403  # tagged
        child = s.refs["app:nightly-0/0"]
        assert httpx.delete(url + child, headers=h).status_code == 403  # its index names it
        r = httpx.delete(f"{e.api_url}/v2/repositories/acme/app/tags/nightly-0/", headers=jwt(e))
        assert r.status_code == 204 and s.refs["app:nightly-0"] in e.stored("acme/app")  # stays, untagged
        assert httpx.delete(url + s.refs["app:nightly-0"], headers=h).status_code == 202
        assert httpx.delete(url + child, headers=h).status_code == 202
        assert httpx.delete(url + child, headers=h).status_code == 404


def test_switches_405_and_untag_deleting_the_manifest() -> None:
    with HubEmulator(manifest_delete=405, untag_deletes_manifest=True) as e:
        s = seed_demo(e)
        h = registry_token(e, "repository:octo/tool:pull,delete")
        r = httpx.delete(f"{e.registry.url}/v2/octo/tool/manifests/{s.refs['tool:0.0']}", headers=h)
        assert r.status_code == 405 and r.json()["errors"][0]["code"] == "UNSUPPORTED"
        httpx.delete(f"{e.api_url}/v2/repositories/octo/tool/tags/0.0/", headers=jwt(e))
        assert s.refs["tool:0.0"] not in e.stored("octo/tool")


def test_a_manifest_get_is_a_pull_with_quota_headers_and_a_head_is_free(hub) -> None:
    e, s = hub
    h = registry_token(e, "repository:acme/app:pull")
    url = f"{e.registry.url}/v2/acme/app/manifests/{s.refs['app:v1.1.0']}"
    before = e.stored("acme/app")[s.refs["app:v1.1.0"]].pulls
    assert httpx.head(url, headers=h).status_code == 200
    r = httpx.get(url, headers=h)
    assert r.headers["ratelimit-limit"] == "200;w=21600"
    assert e.stored("acme/app")[s.refs["app:v1.1.0"]].pulls == before + 1


def test_the_hub_api_rate_limit_is_429_with_x_retry_after_as_a_unix_time(hub) -> None:
    e, _ = hub
    e.trip_after(0, retry_in=30)
    r = httpx.get(f"{e.api_url}/v2/repositories/acme/app/tags")
    assert r.status_code == 429
    assert abs(int(r.headers["X-Retry-After"]) - (time.time() + 30)) < 3
    ok = httpx.get(f"{e.api_url}/v2/repositories/acme/app/tags")
    assert ok.status_code == 200 and int(ok.headers["X-RateLimit-Remaining"]) < int(
        ok.headers["X-RateLimit-Limit"]
    )
