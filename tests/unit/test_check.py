"""check's findings over an in-process registry: each kind is found where it exists and nowhere else,
and the engine findings from the engine's own lists."""

from __future__ import annotations

import asyncio
import json

import httpx

from regcollect.check import local_findings
from regcollect.check_remote import RemoteCheck
from regcollect.registry.api import DistributionApi
from regcollect.registry.client import RegistryClient
from tests.support.fakeoci import OCI_MANIFEST, FakeRegistry, canonical, digest


def findings(reg: FakeRegistry, *, blobs: bool = False, journal: list[dict] | None = None):
    async def go():
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport()) as c:
            chk = RemoteCheck(DistributionApi(c), blobs=blobs, journal=journal or [])
            out = await chk.run(["team/app"])
            return out, chk

    return asyncio.run(go())


def kinds(found) -> list[tuple[str, str]]:
    return sorted((f.kind, f.digest) for f in found)


def test_a_healthy_repository_has_no_findings_and_no_layer_is_downloaded():
    reg = FakeRegistry()
    a, b = reg.image("team/app", salt="a"), reg.image("team/app", salt="b")
    reg.index("team/app", [a, b], "v1")
    reg.image("team/app", "v2", salt="c")
    found, chk = findings(reg, blobs=True)
    assert found == [] and chk.errors == []
    assert not [p for m, p in reg.log if m == "GET" and "/blobs/" in p]


def test_a_nested_index_missing_a_child_is_a_broken_index_at_its_own_level():
    reg = FakeRegistry()
    a, b = reg.image("team/app", salt="a"), reg.image("team/app", salt="b")
    inner = reg.index("team/app", [a, b])
    outer = reg.index("team/app", [inner], "v1")
    del reg.manifests[b]
    found, _ = findings(reg)
    assert kinds(found) == [("broken-index", inner)]
    assert b in found[0].detail and outer != inner


def test_an_oci_referrer_whose_subject_is_gone_is_an_orphan_and_fixable():
    reg = FakeRegistry()
    img = reg.image("team/app", "v1", salt="x")
    gone = reg.image("team/app", salt="gone")
    doc = json.loads(reg.manifests[img][0])
    sbom = dict(doc, subject={"mediaType": OCI_MANIFEST, "digest": gone, "size": 1}, artifactType="x/sbom")
    ref = reg.put("team/app", canonical(sbom), OCI_MANIFEST, "sbom")
    live = dict(doc, subject={"mediaType": OCI_MANIFEST, "digest": img, "size": 1}, artifactType="x/sbom")
    reg.put("team/app", canonical(live), OCI_MANIFEST, "sbom-live")
    del reg.manifests[gone]
    found, _ = findings(reg)
    assert kinds(found) == [("orphan-referrer", ref)]
    assert found[0].fixable and found[0].artifact is not None and found[0].artifact.tags == ("sbom",)


def test_bytes_that_do_not_match_their_digest_and_non_json_are_unreadable():
    reg = FakeRegistry()
    good = reg.image("team/app", "ok", salt="ok")
    bad = reg.image("team/app", "tampered", salt="t")
    reg.manifests[bad] = (reg.manifests[bad][0] + b" ", OCI_MANIFEST)
    junk = b"not json"
    reg.manifests[digest(junk)] = (junk, OCI_MANIFEST)
    reg.tags["team/app"]["junk"] = digest(junk)
    found, _ = findings(reg)
    assert kinds(found) == sorted([("unreadable", bad), ("unreadable", digest(junk))])
    assert all(not f.fixable for f in found) and good not in {f.digest for f in found}


def test_a_missing_blob_is_found_with_head_only_when_asked():
    reg = FakeRegistry()
    img = reg.image("team/app", "v1", salt="x")
    layer = json.loads(reg.manifests[img][0])["layers"][0]["digest"]
    del reg.blobs[layer]
    assert findings(reg)[0] == []
    found, _ = findings(reg, blobs=True)
    assert kinds(found) == [("missing-blob", img)] and layer in found[0].detail
    assert not [p for m, p in reg.log if m == "GET" and "/blobs/" in p]


def test_orphan_children_need_a_journal_and_a_deleted_index():
    reg = FakeRegistry()
    a, b = reg.image("team/app", salt="a"), reg.image("team/app", salt="b")
    idx = reg.index("team/app", [a, b], "old")
    reg.image("team/app", "new", salt="n")
    intent = {
        "type": "intent",
        "source": "remote",
        "registry": reg.host,
        "repository": "team/app",
        "digest": idx,
        "action": "delete",
        "children": [a, b],
    }
    assert findings(reg, journal=[intent])[0] == []  # the index is still there
    del reg.manifests[idx]
    del reg.tags["team/app"]["old"]
    assert findings(reg)[0] == []  # no journal: nothing says an index named them
    found, _ = findings(reg, journal=[intent, dict(intent, registry="elsewhere:5000")])
    assert kinds(found) == sorted([("orphan-child", a), ("orphan-child", b)])
    still_named = reg.index("team/app", [b], "other")
    found, _ = findings(reg, journal=[intent])
    assert kinds(found) == [("orphan-child", a)] and still_named


def test_a_repository_that_fails_is_an_error_not_a_finding():
    reg = FakeRegistry()
    reg.image("team/app", "v1")
    reg.override = lambda r: httpx.Response(500) if "/tags/list" in r.url.path else None
    found, chk = findings(reg)
    assert found == [] and chk.errors and "team/app could not be checked" in chk.errors[0]


def test_local_findings_from_the_engines_lists():
    images = [
        {"Id": "sha256:base", "RepoTags": ["app:1"], "ParentId": ""},
        {"Id": "sha256:child", "RepoTags": ["app:2"], "ParentId": "sha256:lost"},
        {"Id": "sha256:inter", "RepoTags": [], "ParentId": "sha256:base"},
        {"Id": "sha256:top", "RepoTags": ["app:3"], "ParentId": "sha256:inter"},
        {"Id": "sha256:dang", "RepoTags": ["<none>:<none>"], "ParentId": ""},
        {"Id": "sha256:used", "RepoTags": None, "ParentId": ""},
    ]
    containers = [
        {"Id": "c1", "Names": ["/web"], "Image": "app:0", "ImageID": "sha256:gone"},
        {"Id": "c2", "Names": ["/ok"], "Image": "x", "ImageID": "sha256:used"},
    ]
    df = {"Images": [{"Id": "sha256:dang", "Size": 5000, "SharedSize": 1000}]}
    found = local_findings(images, containers, df)
    assert sorted((f.kind, f.digest) for f in found) == [
        ("broken-parent", "sha256:child"),
        ("dangling", "sha256:dang"),
        ("missing-image", "sha256:gone"),
    ]
    assert next(f for f in found if f.kind == "dangling").bytes == 4000
    assert "container web" in next(f for f in found if f.kind == "missing-image").detail
