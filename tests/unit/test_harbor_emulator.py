"""The Harbor emulator behaves as hosted-registries.md section 4 says Harbor does.

regcollect's Harbor backend is tested against this emulator, so each test pins a fact the backend
relies on (or a refusal it must handle). Real loopback servers, plain httpx.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.ghcr.demo import Seeded
from tests.support.harbor import ADMIN, DEVELOPER, ROBOT, HarborEmulator, encode_repository, seed_demo

ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"


def start(**switches: Any) -> tuple[HarborEmulator, Seeded]:
    emu = HarborEmulator(**switches)
    emu.start()
    return emu, seed_demo(emu)


@pytest.fixture
def harbor() -> Iterator[tuple[HarborEmulator, Seeded]]:
    emu, seeded = start()
    yield emu, seeded
    emu.stop()


def api(emu: HarborEmulator, account: tuple[str, str] | None = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=emu.api_url, auth=account)


def artifacts(repo: str) -> str:
    project, _, name = repo.partition("/")
    return f"/projects/{project}/repositories/{encode_repository(name)}/artifacts"


def v2(emu: HarborEmulator, account: tuple[str, str] = ADMIN) -> httpx.Client:
    """Harbor's token flow: 401 challenge -> /service/token with Basic -> Bearer."""
    challenge = httpx.get(f"{emu.url}/v2/")
    assert challenge.status_code == 401
    assert 'realm="' + emu.url + '/service/token"' in challenge.headers["WWW-Authenticate"]
    token = httpx.get(f"{emu.url}/service/token", params={"service": "harbor-registry"}, auth=account).json()
    return httpx.Client(
        base_url=emu.url, headers={"Authorization": f"Bearer {token['token']}", "Accept": ACCEPT}
    )


def test_pages_of_at_most_100_with_total_count_and_a_link_that_keeps_the_encoding(harbor) -> None:
    emu, _ = harbor
    with api(emu) as c:
        first = c.get(artifacts("acme/many"), params={"page_size": 500})
        assert len(first.json()) == 100 and first.headers["X-Total-Count"] == "130"
        link = first.headers["Link"].split(";")[0].strip("<>")
        assert "page=2" in link and "page_size=100" in link
        assert len(c.get(link.removeprefix("/api/v2.0")).json()) == 30
        assert len(c.get(artifacts("acme/many")).json()) == 10  # default page size
        team = c.get(artifacts("acme/team/app"), params={"page_size": 2}).headers["Link"]
        assert "/repositories/team%252Fapp/artifacts?" in team


def test_a_repository_name_is_double_encoded_or_not_found(harbor) -> None:
    emu, _ = harbor
    with api(emu) as c:
        assert c.get("/projects/acme/repositories/team%252Fapp/artifacts").status_code == 200
        assert c.get("/projects/acme/repositories/team%2Fapp/artifacts").status_code == 404
    lax, _ = start(enforce_double_encoding=False)
    try:
        with api(lax) as c:
            assert c.get("/projects/acme/repositories/team%2Fapp/artifacts").status_code == 200
    finally:
        lax.stop()


def test_children_and_accessories_are_listed_inside_their_parent_not_as_rows(harbor) -> None:
    emu, s = harbor
    with api(emu) as c:
        rows = c.get(artifacts("acme/app"), params={"page_size": 100, "with_accessory": "true"}).json()
        plain = c.get(artifacts("acme/app"), params={"page_size": 100}).json()
    digests = {r["digest"] for r in rows}
    assert s.refs["app:v1.2.0/amd64"] not in digests and s.refs["app:v1.2.0.sig"] not in digests
    row = next(r for r in rows if r["digest"] == s.refs["app:v1.2.0"])
    assert {t["name"] for t in row["tags"]} == {"v1.2.0", "v1.2", "latest"}
    assert s.refs["app:v1.2.0/amd64"] in {x["child_digest"] for x in row["references"]}
    types = {a["digest"]: a["type"] for a in row["accessories"]}
    assert types[s.refs["app:v1.2.0.sig"]] == "signature.cosign"
    assert types[s.refs["app:v1.2.0/referrer"]] == "subject.accessory"
    assert all(r["accessories"] is None for r in plain)  # with_accessory defaults to false


def test_pull_time_is_the_zero_time_until_a_manifest_get_not_a_head(harbor) -> None:
    emu, s = harbor
    d = s.refs["app:v1.1.0"]
    with api(emu) as c:
        assert c.get(f"{artifacts('acme/app')}/{d}").json()["pull_time"] == "0001-01-01T00:00:00.000Z"
    with v2(emu) as r:
        assert r.head(f"/v2/acme/app/manifests/{d}").status_code == 200
        assert emu.artifact("acme/app", d).pull_time is None
        assert r.get(f"/v2/acme/app/manifests/{d}").status_code == 200
    assert emu.artifact("acme/app", d).pull_time is not None


def test_deleting_an_index_takes_its_children_and_accessories_unless_switched_off(harbor) -> None:
    emu, s = harbor
    idx = s.refs["app:v1.1.0"]
    with api(emu) as c:
        child = c.delete(f"{artifacts('acme/app')}/{s.refs['app:v1.1.0/amd64']}")
        assert child.status_code == 412 and child.json()["errors"][0]["code"] == "PRECONDITION"
        assert c.delete(f"{artifacts('acme/app')}/{idx}").status_code == 200
    left = emu.digests("acme/app")
    assert not {idx, s.refs["app:v1.1.0/amd64"], s.refs["app:v1.1.0.sig"]} & set(left)
    keep, k = start(accessories_follow_subject=False, children_follow_index=False)
    try:
        with api(keep) as c:
            assert c.delete(f"{artifacts('acme/app')}/{k.refs['app:v1.1.0']}").status_code == 200
        assert {k.refs["app:v1.1.0/amd64"], k.refs["app:v1.1.0.sig"]} <= set(keep.digests("acme/app"))
    finally:
        keep.stop()


def test_the_tag_endpoint_removes_one_tag_and_immutability_refuses_with_412(harbor) -> None:
    emu, s = harbor
    d = s.refs["app:v1.2.0"]
    emu.immutable["acme"] = ["latest"]
    with api(emu) as c:
        assert c.delete(f"{artifacts('acme/app')}/{d}/tags/v1.2").status_code == 200
        assert c.delete(f"{artifacts('acme/app')}/{d}/tags/latest").status_code == 412
        assert c.delete(f"{artifacts('acme/app')}/{d}").status_code == 412
        assert c.delete(f"{artifacts('acme/app')}/{d}/tags/v1.2").status_code == 404
    assert emu.digests("acme/app")[d] == ["latest", "v1.2.0"]


def test_v2_deletes_by_digest_only(harbor) -> None:
    emu, s = harbor
    with v2(emu) as r:
        by_tag = r.delete("/v2/pub/tool/manifests/0.0")
        assert by_tag.status_code == 400 and by_tag.json()["errors"][0]["code"] == "UNSUPPORTED"
        assert r.delete(f"/v2/pub/tool/manifests/{s.refs['tool:0.0']}").status_code == 202
    assert s.refs["tool:0.0"] not in emu.digests("pub/tool")


def test_permissions_follow_roles_and_robot_accounts(harbor) -> None:
    emu, s = harbor
    with api(emu, None) as anon:
        assert anon.get(artifacts("acme/app")).status_code == 401
        assert anon.get(artifacts("pub/tool")).status_code == 200  # a public project
    with api(emu, DEVELOPER) as dev:
        assert dev.get(artifacts("acme/app")).status_code == 200
        assert dev.delete(f"{artifacts('acme/app')}/{s.refs['app:orphan']}").status_code == 403
    with api(emu, ROBOT) as robot:  # robot$acme+ci: the $ travels inside Basic auth
        assert robot.delete(f"{artifacts('acme/app')}/sha256:{'0' * 64}").status_code == 404
        assert robot.get(artifacts("pub/tool")).status_code == 200
    with api(emu, (ROBOT[0], "wrong")) as bad:
        assert bad.get(artifacts("pub/tool")).status_code == 401


def test_a_tripped_rate_limit_answers_429_with_retry_after_once(harbor) -> None:
    emu, _ = harbor
    emu.trip_after(1, retry_after=7)
    with api(emu) as c:
        assert c.get("/projects").status_code == 200
        refused = c.get("/projects")
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "7"
        assert c.get("/projects").status_code == 200


def test_referrers_api_lists_subject_accessories_unless_switched_off(harbor) -> None:
    emu, s = harbor
    with v2(emu) as r:
        found = r.get(f"/v2/acme/app/referrers/{s.refs['app:v1.2.0']}").json()
    assert [m["digest"] for m in found["manifests"]] == [s.refs["app:v1.2.0/referrer"]]
    old, o = start(referrers_api=False)
    try:
        with v2(old) as r:
            assert r.get(f"/v2/acme/app/referrers/{o.refs['app:v1.2.0']}").status_code == 404
    finally:
        old.stop()


def test_a_pushed_back_index_and_signature_become_parent_and_accessory_again(harbor) -> None:
    emu, s = harbor
    idx, sig = s.refs["app:v1.1.0"], s.refs["app:v1.1.0.sig"]
    saved = {d: emu.store.content[d] for d in (idx, sig, s.refs["app:v1.1.0/amd64"])}
    saved_children = [d for d, _ in emu.store.children(emu.repo("acme/app"), emu.artifact("acme/app", idx))]
    saved.update({d: emu.store.content[d] for d in saved_children})
    media = {d: emu.artifact("acme/app", d).media_type for d in saved}
    with api(emu) as c:
        assert c.delete(f"{artifacts('acme/app')}/{idx}").status_code == 200
    with v2(emu) as r:
        for d in saved_children:
            assert (
                r.put(
                    f"/v2/acme/app/manifests/{d}", content=saved[d], headers={"Content-Type": media[d]}
                ).status_code
                == 201
            )
        put = r.put("/v2/acme/app/manifests/v1.1.0", content=saved[idx], headers={"Content-Type": media[idx]})
        assert put.status_code == 201
        sig_tag = idx.replace(":", "-") + ".sig"
        assert (
            r.put(
                f"/v2/acme/app/manifests/{sig_tag}", content=saved[sig], headers={"Content-Type": media[sig]}
            ).status_code
            == 201
        )
    with api(emu) as c:
        rows = c.get(artifacts("acme/app"), params={"page_size": 100, "with_accessory": "true"}).json()
    row = next(r for r in rows if r["digest"] == idx)
    assert {x["child_digest"] for x in row["references"]} == set(saved_children)
    assert [a["digest"] for a in row["accessories"]] == [sig]
