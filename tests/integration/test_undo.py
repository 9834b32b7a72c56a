"""Undo window and reviewed plans against the real registry and engine: journal, restore, apply."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from regcollect.journal import read
from tests.support.images import ts, unique

pytestmark = pytest.mark.integration


def test_delete_then_restore_brings_every_tag_and_index_back(registry, pusher, run, tmp_path):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("undo") + "/app"
    old = p.image(repo, ["v1", "also-v1"], created=ts(30))
    kids = [p.image(repo, None, created=ts(30), arch=a) for a in ("amd64", "arm64")]
    idx = p.index(repo, "multi-1", kids, oci=True)
    sig = p.cosign_signature(repo, old)
    p.image(repo, "v2", created=ts(1))
    shared = p.image(repo, ["old-2", "stable"], created=ts(40))
    before = {t: p.resolve(repo, t) for t in p.tags(repo)}
    journal = tmp_path / "j.jsonl"
    r = run(
        "remote",
        host,
        "--repo",
        repo,
        "--keep-last",
        "1",
        "--keep-tag",
        "stable",
        "--yes",
        "--journal",
        str(journal),
    )
    assert r.code == 0, r.out + r.err
    assert sorted(p.tags(repo)) == ["stable", "v2"]
    assert not p.exists(repo, idx.digest) and not p.exists(repo, kids[0].digest)

    first = run("restore", str(journal), "--yes")
    assert first.code == 0, first.out + first.err
    assert {t: p.resolve(repo, t) for t in p.tags(repo)} == before
    assert all(p.exists(repo, d.digest) for d in (idx, *kids, sig, shared))

    second = run("restore", str(journal), "--yes")
    assert second.code == 0
    assert "0 to restore" in second.out
    assert {t: p.resolve(repo, t) for t in p.tags(repo)} == before


def test_restore_names_what_cannot_come_back(registry, pusher, run, tmp_path):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("gc") + "/app"
    p.image(repo, "v1", created=ts(10))
    p.image(repo, "v2", created=ts(1))
    journal = tmp_path / "j.jsonl"
    assert (
        run("remote", host, "--repo", repo, "--keep-last", "1", "--yes", "--journal", str(journal)).code == 0
    )
    # Simulate the registry's GC: point the journal's manifest at a layer that never existed.
    recs = [json.loads(x) for x in journal.read_text().splitlines()]
    import base64

    for rec in recs:
        if rec["type"] == "intent":
            doc = json.loads(base64.b64decode(rec["manifest"]))
            doc["layers"][0]["digest"] = "sha256:" + "f" * 64
            rec["manifest"] = base64.b64encode(json.dumps(doc).encode()).decode()
    journal.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    r = run("restore", str(journal), "--yes")
    assert r.code == 1
    assert "cannot restore" in r.out and "sha256:" + "f" * 64 in r.out


def test_reviewed_plan_skips_what_changed_and_applies_the_rest(registry, pusher, run, tmp_path):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("plan") + "/app"
    imgs = [p.image(repo, f"v{i}", created=ts(10 - i)) for i in range(4)]
    dry = run("remote", host, "--repo", repo, "--keep-last", "1", "--dry-run", "-o", "json")
    plan = tmp_path / "plan.json"
    plan.write_text(dry.out)
    moved = p.image(repo, "v1", created=ts(0))  # re-pushed to new content after the review
    p.manifest(repo, "v3", imgs[2].data, imgs[2].media_type)
    # v3 (kept) now points at v2's digest, which the plan deletes: a rollback during the review
    r = run("apply", str(plan), "--yes")
    assert r.code == 0, r.out + r.err
    assert "changed since plan: tag v3 now points at it" in r.out
    assert p.exists(repo, imgs[2].digest) and p.resolve(repo, "v3") == imgs[2].digest
    # v1 moved to new content: deleting its old digest cannot touch it (default --verify repository)
    assert p.resolve(repo, "v1") == moved.digest and not p.exists(repo, imgs[1].digest)
    assert not p.exists(repo, imgs[0].digest)
    assert p.exists(repo, imgs[3].digest)


def test_reviewed_plan_with_verify_item_also_skips_a_digest_whose_own_tag_moved(
    registry, pusher, run, tmp_path
):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("plani") + "/app"
    imgs = [p.image(repo, f"v{i}", created=ts(10 - i)) for i in range(3)]
    dry = run("remote", host, "--repo", repo, "--keep-last", "1", "--dry-run", "-o", "json")
    plan = tmp_path / "plan.json"
    plan.write_text(dry.out)
    moved = p.image(repo, "v1", created=ts(0))
    r = run("apply", str(plan), "--yes", "--verify", "item")
    assert r.code == 0, r.out + r.err
    assert "changed since plan: tag v1 now points at" in r.out
    assert p.resolve(repo, "v1") == moved.digest and p.exists(repo, imgs[1].digest)
    assert not p.exists(repo, imgs[0].digest)


def test_reviewed_local_plan(engine, run, tmp_path):
    from tests.support.dockertar import load_image

    repo = unique("lplan") + "/app"
    imgs = [load_image(engine, f"{repo}:v{i}", created=ts(10 - i)) for i in range(3)]
    dry = run("local", "--repo", repo, "--keep-last", "1", "--dry-run", "-o", "json")
    plan = tmp_path / "plan.json"
    plan.write_text(dry.out)
    engine.images.get(imgs[0].id).tag(repo, "new-tag")  # changed since the review
    r = run("apply", str(plan), "--yes")
    assert r.code == 0, r.out + r.err
    assert "changed since plan: new tag" in r.out
    assert {t for i in engine.images.list(name=repo) for t in i.tags} == {
        f"{repo}:v0",
        f"{repo}:new-tag",
        f"{repo}:v2",
    }


def test_sigkill_mid_apply_then_rerun_finishes_and_journal_restores(registry, pusher, tmp_path, services):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("kill") + "/app"
    imgs = [p.image(repo, f"v{i:02d}", created=ts(100 - i)) for i in range(40)]
    journal = tmp_path / "j.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "regcollect",
        "remote",
        host,
        "--repo",
        repo,
        "--keep-last",
        "5",
        "--yes",
        "--journal",
        str(journal),
        "--concurrency",
        "1",
    ]
    env = dict(os.environ)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_bytes().count(b'"type":"intent"') >= 8:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    remaining = sum(p.exists(repo, i.digest) for i in imgs)
    assert 5 < remaining < 40, "the kill should land mid-way"
    with open(journal, "ab") as fh:
        fh.write(b'{"type":"intent","torn')  # a torn last line, as a kill mid-write leaves
    again = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [p.exists(repo, i.digest) for i in imgs] == [False] * 35 + [True] * 5
    records = list(read(journal))
    assert sum(r["type"] == "intent" for r in records) >= 35
    restore = subprocess.run(
        [sys.executable, "-m", "regcollect", "restore", str(journal), "--yes"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
    )
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert all(p.exists(repo, i.digest) for i in imgs)
    assert p.tags(repo) == [f"v{i:02d}" for i in range(40)]


def test_rollback_of_a_kept_tag_onto_a_doomed_digest_skips_that_delete(registry, pusher, run, tmp_path):
    """Pain point 9: a cleanup racing a push. `latest` is rolled back onto v0 after the review."""
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("rollback") + "/app"
    imgs = [p.image(repo, f"v{i}", created=ts(10 - i)) for i in range(3)]
    p.manifest(repo, "latest", imgs[2].data, imgs[2].media_type)
    plan = tmp_path / "plan.json"
    plan.write_text(run("remote", host, "--repo", repo, "--keep-last", "1", "--dry-run", "-o", "json").out)
    p.manifest(repo, "latest", imgs[0].data, imgs[0].media_type)  # rollback
    for verify in ("repository", "item"):
        r = run("apply", str(plan), "--yes", "--verify", verify)
        assert r.code == 0, r.out + r.err
        assert p.resolve(repo, "latest") == imgs[0].digest
        assert p.exists(repo, imgs[0].digest)
        assert "changed since plan: tag latest now points at it" in r.out
    assert not p.exists(repo, imgs[1].digest)


def test_verify_repository_deletes_a_digest_whose_doomed_tag_moved_away(registry, pusher, run, tmp_path):
    """--verify repository skips the per-item check: a doomed tag re-pushed elsewhere is harmless
    to the old digest's delete, which proceeds; the tag keeps its new content."""
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("vrepo") + "/app"
    imgs = [p.image(repo, f"v{i}", created=ts(10 - i)) for i in range(3)]
    plan = tmp_path / "plan.json"
    plan.write_text(run("remote", host, "--repo", repo, "--keep-last", "1", "--dry-run", "-o", "json").out)
    moved = p.image(repo, "v0", created=ts(0))
    r = run("apply", str(plan), "--yes", "--verify", "repository")
    assert r.code == 0, r.out + r.err
    assert "changed since plan" not in r.out
    assert not p.exists(repo, imgs[0].digest)
    assert p.resolve(repo, "v0") == moved.digest
