"""Issue 17 against distribution 2.8: `check` finds what careless cleanups leave, `--fix` removes only
the orphans, and a remote apply re-checks what it kept."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.images import ts, unique

pytestmark = pytest.mark.integration


def api_delete(host: str, repo: str, digest: str) -> None:
    """Delete through the registry API, as another tool or a person would."""
    r = httpx.delete(f"http://{host}/v2/{repo}/manifests/{digest}")
    assert r.status_code == 202, r.text


def test_a_broken_index_is_reported_with_the_fix_and_never_deleted(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("chk") + "/app"
    amd, arm = p.image(repo, created=ts(2), arch="amd64"), p.image(repo, created=ts(2), arch="arm64")
    idx = p.index(repo, "v1", [amd, arm])
    clean = run("check", "remote", host, "--repo", repo)
    assert clean.code == 0, clean.out + clean.err
    assert clean.out == ""
    api_delete(host, repo, arm.digest)

    r = run("check", "remote", host, "--repo", repo, "-o", "json")
    assert r.code == 4, r.out + r.err
    (f,) = r.json()["findings"]
    assert (f["kind"], f["repository"], f["digest"], f["tags"]) == ("broken-index", repo, idx.digest, ["v1"])
    assert arm.digest in f["detail"] and not f["fixable"]
    assert "pulls fail" in f["why"]

    fixed = run("check", "remote", host, "--repo", repo, "--fix", "--yes")
    assert fixed.code == 4, fixed.out + fixed.err  # still broken: report only
    assert "broken-index" in fixed.out and "re-push" in fixed.out
    assert p.resolve(repo, "v1") == idx.digest and p.exists(repo, amd.digest)


def test_an_orphan_signature_is_found_and_removed_by_fix(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("chk") + "/signed"
    keep = p.image(repo, "v2", created=ts(1))
    keep_sig = p.cosign_signature(repo, keep)
    gone = p.image(repo, "v1", created=ts(3))
    sig = p.cosign_signature(repo, gone)
    api_delete(host, repo, gone.digest)  # the subject goes, its signature tag stays

    r = run("check", "remote", host, "--repo", repo)
    assert r.code == 4, r.out + r.err
    lines = r.out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("orphan-referrer")
    assert sig.digest in lines[0] and gone.digest in lines[0]

    dry = run("check", "remote", host, "--repo", repo, "--fix", "--dry-run", "-o", "json")
    assert dry.code == 4
    doc = dry.json()
    assert [a["digest"] for a in doc["fix"]["actions"]] == [sig.digest]
    assert doc["fix"]["actions"][0]["reason"].startswith("deleted: orphan-referrer: subject ")
    assert p.exists(repo, sig.digest)

    fixed = run("check", "remote", host, "--repo", repo, "--fix", "--yes", "--journal", "j.jsonl")
    assert fixed.code == 0, fixed.out + fixed.err
    assert not p.exists(repo, sig.digest)
    assert p.tags(repo) == sorted(["v2", keep_sig.tags[0]])
    assert run("check", "remote", host, "--repo", repo).code == 0


def test_a_missing_blob_is_found_with_blobs(registry, pusher, run):
    reg = registry("open")
    host = reg["host"]
    p = pusher("open")
    repo = unique("chk") + "/blobs"
    img = p.image(repo, "v1", created=ts(1))
    layer = img.layers[0]
    data = Path(reg["storage"]) / "docker/registry/v2/blobs/sha256" / layer[7:9] / layer[7:] / "data"
    assert data.exists()
    data.unlink()
    assert run("check", "remote", host, "--repo", repo).code == 0  # without --blobs: not looked at
    r = run("check", "remote", host, "--repo", repo, "--blobs", "-o", "json")
    assert r.code == 4, r.out + r.err
    (f,) = r.json()["findings"]
    assert (f["kind"], f["digest"], f["tags"]) == ("missing-blob", img.digest, ["v1"])
    assert layer in f["detail"]


def test_orphan_children_of_an_interrupted_index_delete_are_found_from_the_journal(
    registry, pusher, run, tmp_path
):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("chk") + "/multi"
    kids = [p.image(repo, created=ts(5), arch=a) for a in ("amd64", "arm64")]
    idx = p.index(repo, "old", kids)
    p.image(repo, "new", created=ts(1))
    journal = tmp_path / "interrupted.jsonl"
    record = {
        "type": "intent",
        "source": "remote",
        "registry": host,
        "repository": repo,
        "digest": idx.digest,
        "action": "delete",
        "kind": "index",
        "tags": ["old"],
        "children": [k.digest for k in kids],
    }
    journal.write_text(json.dumps(record) + "\n")
    api_delete(host, repo, idx.digest)  # the run died here: the children were never deleted

    r = run("check", "remote", host, "--repo", repo, "--read-journal", str(journal), "-o", "json")
    assert r.code == 4, r.out + r.err
    assert sorted((f["kind"], f["digest"]) for f in r.json()["findings"]) == sorted(
        ("orphan-child", k.digest) for k in kids
    )
    assert run("check", "remote", host, "--repo", repo).code == 0  # no journal: no evidence

    fixed = run("check", "remote", host, "--repo", repo, "--read-journal", str(journal), "--fix", "--yes")
    assert fixed.code == 0, fixed.out + fixed.err
    assert not any(p.exists(repo, k.digest) for k in kids)
    assert p.tags(repo) == ["new"]


def test_referrers_go_before_their_subjects_so_a_run_leaves_no_orphans(registry, pusher, run, tmp_path):
    """The issue's last item: holders first, so the journal shows each signature deleted before its
    image, and check finds nothing afterwards."""
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("chk") + "/order"
    old = p.image(repo, "v1", created=ts(9))
    sig = p.cosign_signature(repo, old)
    p.image(repo, "v2", created=ts(1))
    journal = tmp_path / "j.jsonl"
    r = run("remote", host, "--repo", repo, "--keep-last", "1", "--yes", "--journal", str(journal))
    assert r.code == 0, r.out + r.err
    order = [
        json.loads(line)["digest"]
        for line in journal.read_text().splitlines()
        if json.loads(line).get("type") == "intent"
    ]
    assert order.index(sig.digest) < order.index(old.digest)
    assert run("check", "remote", host, "--repo", repo).code == 0


def test_apply_rechecks_a_kept_index_whose_child_vanished_after_the_plan(registry, pusher, run, tmp_path):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("chk") + "/recheck"
    p.image(repo, "old", created=ts(9))
    kids = [p.image(repo, created=ts(1), arch=a) for a in ("amd64", "arm64")]
    idx = p.index(repo, "current", kids)
    plan = run("remote", host, "--repo", repo, "--keep-last", "1", "--dry-run", "-o", "json")
    assert plan.code == 0, plan.err
    (tmp_path / "plan.json").write_text(plan.out)
    api_delete(host, repo, kids[1].digest)

    r = run("apply", str(tmp_path / "plan.json"), "--yes", "-o", "json")
    assert r.code == 4, r.out + r.err
    doc = r.json()
    assert doc["summary"]["delete"] == 1
    assert any(kids[1].digest in e and "current" in e for e in doc["errors"]), doc["errors"]
    assert p.resolve(repo, "current") == idx.digest

    # and an apply that leaves everything whole exits 0
    ok = unique("chk") + "/recheck-ok"
    p.image(ok, "old", created=ts(9))
    p.index(ok, "current", [p.image(ok, created=ts(1), arch="amd64")])
    assert run("remote", host, "--repo", ok, "--keep-last", "1", "--yes").code == 0


def test_check_local_finds_a_container_whose_image_is_gone_and_a_dangling_image(engine, run):
    from tests.support.dockertar import busybox_layer, load_image

    name = unique("chkl")
    img = load_image(engine, f"{name}/run:v1", created=ts(5), layers=[busybox_layer()], cmd=["/bin/true"])
    loose = load_image(engine, None, created=ts(5), labels={"suite": name})
    c = engine.containers.create(img.id, network_mode="none", name=name)
    try:
        engine.images.remove(img.id, force=True)  # docker rmi -f: the stopped container stays
        r = run("check", "local", "-o", "json")
        assert r.code == 4, r.out + r.err
        found = {(f["kind"], f["digest"]): f for f in r.json()["findings"]}
        assert f"container {name}" in found[("missing-image", img.id)]["detail"]
        assert found[("dangling", loose.id)]["bytes"] > 0
    finally:
        c.remove(force=True)
        engine.images.remove(loose.id, force=True)


def test_check_works_through_the_github_api_and_fix_deletes_by_version_id(run):
    """The same findings through another RegistryApi: GitHub lists untagged versions (the OCI
    referrer of the release is one) and deletes by version id."""
    from tests.support.ghcr.demo import PAT, seed_demo
    from tests.support.ghcr.server import GhcrEmulator

    with GhcrEmulator() as e:
        s = seed_demo(e)

        def check(*args: str):
            return run(
                "check",
                "remote",
                e.registry_host,
                "--api",
                "github",
                "--api-url",
                e.api_url,
                "--repo",
                "acme/app",
                *args,
                "--password-stdin",
                input=PAT + "\n",
            )

        clean = check("-o", "json")
        assert clean.code == 0, clean.out + clean.err
        release = e.version("acme/app", s.refs["app:v1.2.0"])
        e.store.delete_version(release, e.now())
        r = check("-o", "json")
        assert r.code == 4, r.out + r.err
        orphans = {f["digest"] for f in r.json()["findings"] if f["kind"] == "orphan-referrer"}
        expected = {s.refs[k] for k in ("app:v1.2.0.sig", "app:v1.2.0.att", "app:v1.2.0/referrer")}
        assert orphans == expected
        fixed = check("--fix", "--yes")
        assert fixed.code == 0, fixed.out + fixed.err
        assert all(e.version("acme/app", d).state != "active" for d in expected)
        assert e.version("acme/app", s.refs["app:v1.1.0"]).state == "active"
