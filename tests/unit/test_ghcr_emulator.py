"""The ghcr emulator behaves as hosted-registries.md section 1 says GitHub does.

regcollect's GitHub backend will be tested against this emulator, so each test here pins a fact
the backend relies on (or a refusal it must handle). Real loopback servers, plain httpx.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.ghcr import ACTIONS_TOKEN, PAT, READ_ONLY_PAT, GhcrEmulator, Seeded, seed_demo

VERSION_KEYS = {"id", "name", "url", "package_html_url", "html_url", "created_at", "updated_at", "metadata"}
ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def start(**switches: Any) -> tuple[GhcrEmulator, Seeded]:
    emu = GhcrEmulator(**switches)
    emu.start()
    return emu, seed_demo(emu)


@pytest.fixture
def ghcr() -> Iterator[tuple[GhcrEmulator, Seeded]]:
    emu, seeded = start()
    yield emu, seeded
    emu.stop()


def api(emu: GhcrEmulator, token: str | None = PAT, scheme: str = "Bearer") -> httpx.Client:
    headers = {"Accept": "application/vnd.github+json"}
    if token:
        headers["Authorization"] = f"{scheme} {token}"
    return httpx.Client(base_url=emu.api_url, headers=headers)


def registry_token(emu: GhcrEmulator, repo: str, actions: str = "pull", secret: str | None = PAT) -> str:
    """The exchange dataaxiom does: challenge -> GET realm with Basic ANY:PAT -> Bearer token."""
    challenge = httpx.get(f"{emu.registry_url}/v2/{repo}/tags/list")
    assert challenge.status_code == 401
    params = dict(
        p.split("=", 1) for p in challenge.headers["WWW-Authenticate"].removeprefix("Bearer ").split(",")
    )
    realm, service = params["realm"].strip('"'), params["service"].strip('"')
    auth = ("token", secret) if secret else None
    r = httpx.get(realm, params={"service": service, "scope": f"repository:{repo}:{actions}"}, auth=auth)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def v2(emu: GhcrEmulator, repo: str, actions: str = "pull", secret: str | None = PAT) -> httpx.Client:
    token = registry_token(emu, repo, actions, secret)
    return httpx.Client(
        base_url=emu.registry_url, headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT}
    )


def versions(emu: GhcrEmulator, path: str, **params: Any) -> list[dict[str, Any]]:
    with api(emu) as c:
        r = c.get(f"{path}/versions", params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


# -- REST: shapes, pagination, owner forms ---------------------------------------------------------


def test_version_json_has_the_sheets_shape_and_its_url_leads_back_to_it(ghcr):
    emu, seeded = ghcr
    listing = versions(emu, "/orgs/acme/packages/container/app", per_page=100)
    release = next(v for v in listing if "v1.2.0" in v["metadata"]["container"]["tags"])
    assert set(release) == VERSION_KEYS
    assert release["name"] == seeded.refs["app:v1.2.0"]
    assert sorted(release["metadata"]["container"]["tags"]) == ["latest", "v1.2", "v1.2.0"]
    assert release["metadata"]["package_type"] == "container"
    assert release["package_html_url"] == "https://github.com/orgs/acme/packages/container/package/app"
    assert release["html_url"] == f"https://github.com/orgs/acme/packages/container/app/{release['id']}"
    assert release["created_at"].endswith("Z") and len(release["created_at"]) == 20
    with api(emu) as c:
        assert c.get(release["url"]).json() == release
    child = next(v for v in listing if v["name"] == seeded.refs["app:v1.2.0/amd64"])
    assert child["metadata"]["container"]["tags"] == []  # per-platform children are untagged versions


def test_versions_paginate_with_link_headers_and_cap_per_page_at_100(ghcr):
    emu, _ = ghcr
    with api(emu) as c:
        first = c.get("/orgs/acme/packages/container/many/versions", params={"per_page": 500})
        assert len(first.json()) == 100
        assert first.links["next"]["url"].endswith("page=2") and first.links["last"]["url"].endswith("page=2")
        assert "prev" not in first.links
        second = c.get(first.links["next"]["url"])
        assert len(second.json()) == 30
        assert set(second.links) == {"prev", "first"}
        ids = [v["id"] for v in first.json() + second.json()]
        assert len(set(ids)) == 130
        default = c.get("/orgs/acme/packages/container/many/versions", params={"page": 2})
        assert len(default.json()) == 30
        assert set(default.links) == {"prev", "next", "last", "first"}
        assert default.links["last"]["url"].endswith("page=5")
        single = c.get("/users/octo/packages/container/tool/versions")
        assert "link" not in single.headers and len(single.json()) == 3
    created = [v["created_at"] for v in first.json()]
    assert created == sorted(created, reverse=True)  # newest first by default


def test_package_name_with_a_slash_is_one_percent_encoded_segment(ghcr):
    emu, _ = ghcr
    with api(emu) as c:
        assert c.get("/orgs/acme/packages/container/team%2Fapp/versions").status_code == 200
        assert c.get("/orgs/acme/packages/container/team/app/versions").status_code == 404
        pkg = c.get("/orgs/acme/packages/container/team%2Fapp").json()
        assert pkg["name"] == "team/app" and pkg["url"].endswith("/packages/container/team%2Fapp")


def test_owner_type_decides_the_path_form(ghcr):
    emu, _ = ghcr
    with api(emu) as c:
        assert c.get("/users/acme").json()["type"] == "Organization"
        assert c.get("/users/octo").json()["type"] == "User"
        assert c.get("/user").json()["login"] == "octo"
        assert c.get("/users/octo/packages/container/tool/versions").status_code == 200
        assert c.get("/user/packages/container/tool/versions").status_code == 200
        assert c.get("/orgs/octo/packages/container/tool/versions").status_code == 404
        names = [p["name"] for p in c.get("/orgs/acme/packages", params={"package_type": "container"}).json()]
        assert names == ["app", "many", "team/app"]
        mine = c.get("/user/packages", params={"package_type": "container"}).json()
        assert [p["name"] for p in mine] == ["tool"]


def test_ghes_style_prefix():
    emu = GhcrEmulator(api_prefix="/api/v3")
    with emu:
        seed_demo(emu)
        assert emu.api_url.endswith("/api/v3")
        listing = versions(emu, "/users/octo/packages/container/tool")
        assert listing[0]["url"].startswith(emu.api_url + "/users/octo/")


# -- REST: delete and restore ----------------------------------------------------------------------


def test_delete_hides_the_manifest_on_v2_and_restore_brings_it_back(ghcr):
    emu, seeded = ghcr
    digest = seeded.refs["app:v1.1.0"]
    vid = emu.version("acme/app", digest).id
    base = "/orgs/acme/packages/container/app/versions"
    reg = v2(emu, "acme/app")
    with api(emu) as c:
        r = c.delete(f"{base}/{vid}")
        assert r.status_code == 204 and r.content == b""
        assert reg.get("/v2/acme/app/manifests/" + digest).status_code == 404
        assert reg.head("/v2/acme/app/manifests/v1.1.0").status_code == 404
        assert "v1.1.0" not in reg.get("/v2/acme/app/tags/list").json()["tags"]
        assert c.get(f"{base}/{vid}").status_code == 404
        assert c.delete(f"{base}/{vid}").status_code == 404  # already gone
        deleted = c.get(base, params={"state": "deleted"}).json()
        assert [(v["id"], v["metadata"]["container"]["tags"]) for v in deleted] == [(vid, ["v1.1.0"])]
        assert "deleted_at" in deleted[0]
        assert vid not in [v["id"] for v in versions(emu, "/orgs/acme/packages/container/app", per_page=100)]
        assert c.post(f"{base}/{vid}/restore").status_code == 204
        assert c.post(f"{base}/{vid}/restore").status_code == 404  # not deleted any more
        assert c.delete(f"{base}/999").status_code == 404
    r = reg.get("/v2/acme/app/manifests/v1.1.0")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
    reg.close()


def test_restore_status_is_a_switch():
    emu, seeded = start(restore_status=200)
    with emu, api(emu) as c:
        vid = emu.version("acme/app", seeded.refs["app:orphan"]).id
        assert c.delete(f"/orgs/acme/packages/container/app/versions/{vid}").status_code == 204
        r = c.post(f"/orgs/acme/packages/container/app/versions/{vid}/restore")
        assert r.status_code == 200 and r.json()["id"] == vid


def test_public_versions_past_5000_downloads_refuse_delete(ghcr):
    emu, seeded = ghcr
    public = emu.version("acme/app", seeded.refs["app:orphan"])
    private = emu.version("acme/team/app", seeded.refs["team/app:dev-0"])
    public.downloads = private.downloads = 5001
    with api(emu) as c:
        r = c.delete(f"/orgs/acme/packages/container/app/versions/{public.id}")
        assert r.status_code == 400 and "5,000 downloads" in r.json()["message"]
        assert c.delete(f"/orgs/acme/packages/container/team%2Fapp/versions/{private.id}").status_code == 204
        emu.version("acme/app", seeded.refs["app:v1.0.0"]).downloads = 5000  # "more than" 5,000
        vid = emu.version("acme/app", seeded.refs["app:v1.0.0"]).id
        assert c.delete(f"/orgs/acme/packages/container/app/versions/{vid}").status_code == 204


# -- REST: auth, scopes, Actions tokens ------------------------------------------------------------


def test_tokens_and_scopes(ghcr):
    emu, seeded = ghcr
    path = "/orgs/acme/packages/container/app/versions"
    vid = emu.version("acme/app", seeded.refs["app:orphan"]).id
    with api(emu, None) as anonymous:
        assert anonymous.get(path).status_code == 401
        assert anonymous.get("/users/acme").status_code == 200
    with api(emu, "ghp_wrong") as wrong:
        r = wrong.get(path)
        assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
    with api(emu, READ_ONLY_PAT, scheme="token") as reader:
        r = reader.get(path)
        assert r.status_code == 200 and r.headers["X-OAuth-Scopes"] == "read:packages"
        r = reader.delete(f"{path}/{vid}")
        assert r.status_code == 403
        assert "delete:packages" in r.json()["message"] and r.json()["documentation_url"].startswith(
            "https://"
        )
        assert reader.post(f"{path}/{vid}/restore").status_code == 403
    with api(emu) as admin:
        assert "delete:packages" in admin.get(path).headers["X-OAuth-Scopes"]


def test_actions_token_cannot_list_packages_and_needs_admin_on_the_package(ghcr):
    emu, seeded = ghcr
    with api(emu, ACTIONS_TOKEN) as c:
        r = c.get("/orgs/acme/packages", params={"package_type": "container"})
        assert r.status_code == 403 and r.json()["message"]
        assert c.get("/user").status_code == 403
        assert c.get("/orgs/acme/packages/container/app/versions").status_code == 200
        assert c.get("/orgs/acme/packages/container/many/versions").status_code == 404  # private, no access
        team = emu.version("acme/team/app", seeded.refs["team/app:dev-1"]).id
        r = c.delete(f"/orgs/acme/packages/container/team%2Fapp/versions/{team}")
        assert r.status_code == 403 and "admin" in r.json()["message"]
        app = emu.version("acme/app", seeded.refs["app:orphan"]).id
        r = c.delete(f"/orgs/acme/packages/container/app/versions/{app}")
        assert r.status_code == 204 and "X-OAuth-Scopes" not in r.headers


# -- REST: rate limits -----------------------------------------------------------------------------


def test_rate_limit_headers_count_down_and_exhaustion_refuses():
    emu, _ = start(primary_status=429)
    with emu, api(emu) as c:
        seen = [c.get("/users/octo/packages/container/tool/versions") for _ in range(3)]
        remaining = [int(r.headers["x-ratelimit-remaining"]) for r in seen]
        assert remaining == [4999, 4998, 4997]
        assert [r.headers["x-ratelimit-used"] for r in seen] == ["1", "2", "3"]
        assert {r.headers["x-ratelimit-reset"] for r in seen} == {seen[0].headers["x-ratelimit-reset"]}
        assert seen[0].headers["x-ratelimit-resource"] == "core"
        assert int(c.get("/rate_limit").json()["resources"]["core"]["remaining"]) == 4997  # free
        emu.limits.exhaust("user octo", 5000)
        r = c.get("/users/octo/packages/container/tool/versions")
        assert r.status_code == 429 and r.headers["x-ratelimit-remaining"] == "0"
        assert "rate limit" in r.json()["message"]
        with api(emu, ACTIONS_TOKEN) as actions:
            r = actions.get("/orgs/acme/packages/container/app/versions")
            assert r.headers["x-ratelimit-limit"] == "1000"


def test_secondary_limit_charges_five_points_per_delete_and_answers_retry_after():
    clock = Clock()
    emu, seeded = start(clock=clock, secondary_points=10)
    base = "/orgs/acme/packages/container/app/versions"
    ids = [emu.version("acme/app", seeded.refs[k]).id for k in ("app:orphan", "app:v1.0.0", "app:v1.1.0")]
    with emu, api(emu) as c:
        assert [c.delete(f"{base}/{i}").status_code for i in ids[:2]] == [204, 204]
        clock.now += 20
        r = c.delete(f"{base}/{ids[2]}")
        assert r.status_code == 403 and r.headers["retry-after"] == "40"
        assert "secondary rate limit" in r.json()["message"]
        assert c.get(base).status_code == 200  # another endpoint has its own points
        clock.now += 40
        assert c.delete(f"{base}/{ids[2]}").status_code == 204


def test_secondary_limit_trips_after_n_requests_for_tests():
    clock = Clock()
    emu, _ = start(clock=clock, secondary_after=2, secondary_retry_after=3, secondary_status=429)
    with emu, api(emu) as c:
        codes = [c.get("/users/octo").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        clock.now += 1
        r = c.get("/users/octo")
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        clock.now += 2
        assert c.get("/users/octo").status_code == 200
        emu.limits.trip_after(0, retry_after=1)
        assert c.get("/users/octo").headers["retry-after"] == "1"


# -- /v2 -------------------------------------------------------------------------------------------


def test_token_exchange_and_registry_auth(ghcr):
    emu, _ = ghcr
    r = httpx.get(emu.registry_url + "/v2/")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith(
        f'Bearer realm="{emu.registry_url}/token",service="ghcr.io"'
    )
    with v2(emu, "acme/team/app") as reg:
        assert reg.get("/v2/").status_code == 200
        assert reg.get("/v2/acme/team/app/tags/list").json()["tags"][:2] == ["dev-0", "dev-1"]
        r = reg.put("/v2/acme/team/app/manifests/x", content=b"{}")
        assert (
            r.status_code == 401
            and 'scope="repository:acme/team/app:pull,push"' in r.headers["WWW-Authenticate"]
        )
    with v2(emu, "acme/team/app", "pull,push", READ_ONLY_PAT) as reader:
        r = reader.put("/v2/acme/team/app/manifests/x", content=b"{}")
        assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
    with v2(emu, "acme/team/app", secret=None) as anonymous:  # private: an anonymous token reads nothing
        assert anonymous.get("/v2/acme/team/app/tags/list").status_code == 403
    with v2(emu, "acme/app", secret=None) as anonymous:  # public
        assert anonymous.head("/v2/acme/app/manifests/latest").status_code == 200
    bad = httpx.get(
        emu.registry_url + "/token", params={"scope": "repository:acme/app:pull"}, auth=("x", "nope")
    )
    assert bad.status_code == 401
    shortcut = {"Authorization": "Bearer " + base64.b64encode(PAT.encode()).decode()}
    assert (
        httpx.head(emu.registry_url + "/v2/acme/many/manifests/build-000", headers=shortcut).status_code
        == 200
    )


def test_served_manifests_are_the_exact_bytes_of_their_digest(ghcr):
    emu, _ = ghcr
    listing = versions(emu, "/orgs/acme/packages/container/app", per_page=100)
    with v2(emu, "acme/app") as reg:
        for v in listing:
            r = reg.get("/v2/acme/app/manifests/" + v["name"])
            assert r.status_code == 200
            assert (
                "sha256:" + hashlib.sha256(r.content).hexdigest()
                == v["name"]
                == r.headers["Docker-Content-Digest"]
            )
            doc = json.loads(r.content)
            assert r.headers["Content-Type"] == doc["mediaType"]
            for blob in [doc["config"], *doc["layers"]] if "config" in doc else []:
                b = reg.get("/v2/acme/app/blobs/" + blob["digest"])
                assert "sha256:" + hashlib.sha256(b.content).hexdigest() == blob["digest"]
                assert len(b.content) == blob["size"]
        h = reg.head("/v2/acme/app/manifests/latest")
        assert h.content == b"" and int(h.headers["Content-Length"]) > 0


def test_seeded_content_has_every_shape_the_planner_must_protect(ghcr):
    emu, seeded = ghcr
    names = {v["name"]: v for v in versions(emu, "/orgs/acme/packages/container/app", per_page=100)}
    with v2(emu, "acme/app") as reg:

        def get(ref: str) -> dict[str, Any]:
            return dict(reg.get("/v2/acme/app/manifests/" + ref).json())

        index = get("v1.2.0")
        atts = [
            m for m in index["manifests"] if m["platform"] == {"architecture": "unknown", "os": "unknown"}
        ]
        assert len(atts) == 2
        assert all(m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest" for m in atts)
        assert get(atts[0]["digest"])["layers"][0]["mediaType"] == "application/vnd.in-toto+json"
        assert all(names[m["digest"]]["metadata"]["container"]["tags"] == [] for m in index["manifests"])
        sig = seeded.refs["app:v1.2.0"].replace(":", "-")
        tags = reg.get("/v2/acme/app/tags/list").json()["tags"]
        assert f"{sig}.sig" in tags and f"{sig}.att" in tags
        referrer = get(seeded.refs["app:v1.2.0/referrer"])
        assert referrer["subject"]["digest"] == seeded.refs["app:v1.2.0"]
        assert names[seeded.refs["app:v1.2.0/referrer"]]["metadata"]["container"]["tags"] == []
        outer = get("bundle-1")
        assert outer["manifests"][0]["mediaType"] == "application/vnd.oci.image.index.v1+json"
        assert get("legacy-1.0")["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
        image = get(seeded.refs["app:v1.0.0/amd64"])
        config = reg.get("/v2/acme/app/blobs/" + image["config"]["digest"]).json()
        assert config["created"] < names[seeded.refs["app:v1.0.0"]]["created_at"]
        assert names[seeded.refs["app:orphan"]]["metadata"]["container"]["tags"] == []


def test_manifest_get_counts_a_download_and_head_does_not(ghcr):
    emu, seeded = ghcr
    with v2(emu, "acme/app") as reg:
        reg.head("/v2/acme/app/manifests/latest")
        reg.head("/v2/acme/app/manifests/" + seeded.refs["app:v1.2.0"])
        assert emu.downloads("acme/app", "latest") == 0
        reg.get("/v2/acme/app/manifests/latest")
        reg.get("/v2/acme/app/manifests/" + seeded.refs["app:v1.2.0"])
        reg.get(
            "/v2/acme/app/blobs/" + reg.get("/v2/acme/app/manifests/v1.0.0").json()["manifests"][0]["digest"]
        )
    assert emu.downloads("acme/app", seeded.refs["app:v1.2.0"]) == 2
    assert emu.downloads("acme/app", "v1.0.0") == 1
    assert emu.manifest_gets() == 3
    assert [(r.method, r.status) for r in emu.registry_log if "/manifests/" in r.path][:2] == [
        ("HEAD", 200)
    ] * 2


def test_head_download_counting_is_a_switch():
    emu, _ = start(head_counts_download=True)
    with emu, v2(emu, "acme/app") as reg:
        reg.head("/v2/acme/app/manifests/latest")
        assert emu.downloads("acme/app", "latest") == 1


def test_v2_delete_is_unsupported_and_there_is_no_referrers_api(ghcr):
    emu, seeded = ghcr
    with v2(emu, "acme/app") as reg:
        r = reg.delete("/v2/acme/app/manifests/" + seeded.refs["app:orphan"])
        assert r.status_code == 405
        assert r.json() == {"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}
        assert reg.get("/v2/acme/app/referrers/" + seeded.refs["app:v1.2.0"]).status_code == 404
        assert reg.head("/v2/acme/app/manifests/" + seeded.refs["app:orphan"]).status_code == 200


def test_put_by_tag_moves_the_tag_onto_a_new_version(ghcr):
    """The untag recipe: a throwaway manifest under the expiring tag, then delete that version by id."""
    emu, seeded = ghcr
    shared = seeded.refs["team/app:dev-2"]  # tags dev-2, stable, prod
    with v2(emu, "acme/team/app", "pull,push") as reg:
        original = json.loads(reg.get("/v2/acme/team/app/manifests/" + shared).content)
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        )
        up = reg.post("/v2/acme/team/app/blobs/uploads/")
        assert up.status_code == 202
        digest = "sha256:" + hashlib.sha256(config.encode()).hexdigest()
        assert reg.put(up.headers["Location"], params={"digest": digest}, content=config).status_code == 201
        throwaway = dict(
            original, layers=[], config=dict(original["config"], digest=digest, size=len(config))
        )
        body = json.dumps(throwaway).encode()
        r = reg.put(
            "/v2/acme/team/app/manifests/stable",
            content=body,
            headers={"Content-Type": original["mediaType"]},
        )
        assert r.status_code == 201
        new = r.headers["Docker-Content-Digest"]
        assert new == "sha256:" + hashlib.sha256(body).hexdigest()
        assert reg.head("/v2/acme/team/app/manifests/stable").headers["Docker-Content-Digest"] == new
    listing = {v["name"]: v for v in versions(emu, "/orgs/acme/packages/container/team%2Fapp")}
    assert listing[new]["metadata"]["container"]["tags"] == ["stable"]
    assert sorted(listing[shared]["metadata"]["container"]["tags"]) == ["dev-2", "prod"]
    with api(emu) as c:
        assert (
            c.delete(f"/orgs/acme/packages/container/team%2Fapp/versions/{listing[new]['id']}").status_code
            == 204
        )
    with v2(emu, "acme/team/app") as reg:
        assert reg.head("/v2/acme/team/app/manifests/stable").status_code == 404
        assert reg.head("/v2/acme/team/app/manifests/prod").headers["Docker-Content-Digest"] == shared


def test_put_refuses_manifests_whose_blobs_or_children_are_missing(ghcr):
    emu, seeded = ghcr
    with v2(emu, "acme/app", "pull,push") as reg:
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:" + "0" * 64,
                    "size": 2,
                }
            ],
        }
        r = reg.put("/v2/acme/app/manifests/broken", json=index, headers={"Content-Type": index["mediaType"]})
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
        r = reg.put(
            "/v2/acme/app/manifests/" + seeded.refs["app:orphan"],
            content=b"{}",
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 400


def test_tags_list_paginates_with_n_and_last(ghcr):
    emu, _ = ghcr
    with v2(emu, "acme/many") as reg:
        r = reg.get("/v2/acme/many/tags/list", params={"n": 2})
        assert r.json()["tags"] == ["build-000", "build-001"]
        assert r.links["next"]["url"] == "/v2/acme/many/tags/list?n=2&last=build-001"
        r = reg.get("/v2/acme/many/tags/list", params={"n": 100, "last": "build-120"})
        assert r.json()["tags"] == [f"build-{n}" for n in range(121, 130)] and "link" not in r.headers


def test_request_logs_record_method_path_and_status(ghcr):
    emu, _ = ghcr
    with api(emu) as c:
        c.get("/orgs/acme/packages/container/team%2Fapp/versions", params={"per_page": 3})
    assert emu.rest_log[-1].method == "GET"
    assert emu.rest_log[-1].path == "/orgs/acme/packages/container/team%2Fapp/versions"
    assert emu.rest_log[-1].query == "per_page=3" and emu.rest_log[-1].status == 200
