"""`regcollect local --max-size/--min-free` (issue 18) against the real engine. The engine is shared
with other tests, so every run is scoped with --repo: the budget measures only that scope."""

from __future__ import annotations

import os

import docker
import pytest

from tests.support.dockertar import busybox_layer, layer_tar, load_image
from tests.support.images import ts, unique

pytestmark = pytest.mark.integration


def exists(engine, ref: str) -> bool:
    try:
        engine.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def scope_bytes(engine, ids) -> int:
    sizes = {i["Id"]: i["Size"] for i in engine.df()["Images"]}
    return sum(sizes[i] for i in ids)


def test_max_size_measures_only_the_repositories_in_scope(engine, run):
    """--repo R --max-size: only R's images count, so only as many go as R needs (not all of R)."""
    repo = unique("bscope") + "/app"
    imgs = [load_image(engine, f"{repo}:v{i}", created=ts(30 - i), size=200_000) for i in range(4)]
    other = load_image(engine, unique("bother") + "/x:v1", created=ts(90), size=200_000)
    total = scope_bytes(engine, [i.id for i in imgs])
    r = run("local", "--repo", repo, "--max-size", str(total - 250_000), "--yes")
    assert r.code == 0, r.out + r.err
    assert [exists(engine, i.id) for i in imgs] == [False, False, True, True]
    assert exists(engine, other.id)
    assert "repositories outside --repo, untouched" in r.out
    assert f"\n{other.tags[0].split(':')[0]}\n" not in r.out, "out-of-scope repositories are one line"


def test_an_image_whose_removal_frees_nothing_is_not_evicted(engine, run):
    """Its layers are held by a newer image that stays: deleting it would free 0 bytes."""
    repo = unique("bshared") + "/app"
    base = layer_tar(os.urandom(300_000))
    old = load_image(engine, f"{repo}:old", created=ts(40), layers=[base])
    mid = load_image(engine, f"{repo}:mid", created=ts(20), size=200_000)
    new = load_image(engine, f"{repo}:new", created=ts(1), layers=[base, layer_tar(os.urandom(2000))])
    total = scope_bytes(engine, [old.id, mid.id, new.id]) - 300_000  # the base counted once
    r = run("local", "--repo", repo, "--max-size", str(total - 100_000), "--yes", "-o", "json")
    assert r.code == 0, r.out + r.err
    assert exists(engine, old.id) and exists(engine, new.id)
    assert not exists(engine, mid.id)
    reason = next(a["reason"] for a in r.json()["actions"] if a["digest"] == old.id)
    assert "frees nothing" in reason


def test_max_size_combines_with_keep_tag_and_keep_label(engine, run):
    repo = unique("bkeep") + "/app"
    imgs = [load_image(engine, f"{repo}:v{i}", created=ts(30 - i), size=200_000) for i in range(4)]
    engine.images.get(imgs[1].id).tag(repo, "release-1")  # LastTagTime now: give it back its age
    labelled = load_image(engine, f"{repo}:pinned", created=ts(90), size=200_000, labels={"keep": "yes"})
    total = scope_bytes(engine, [i.id for i in imgs] + [labelled.id])
    r = run(
        "local", "--repo", repo, "--max-size", str(total - 250_000),
        "--keep-tag", "v0", "--keep-label", "keep=yes", "--min-age", "1h", "--yes", "-o", "json",
    )  # fmt: skip
    assert r.code == 0, r.out + r.err
    # v0 and the labelled one are protected, v1 was used just now (--min-age): v2 and v3 go.
    assert [exists(engine, i.id) for i in imgs] == [True, True, False, False]
    assert exists(engine, labelled.id)


def test_budget_unreachable_is_reported_and_exits_4(engine, run):
    repo = unique("bunreach") + "/app"
    busy = busybox_layer()
    running = load_image(engine, f"{repo}:running", created=ts(60), layers=[busy], cmd=["/bin/sleep", "600"])
    stopped = load_image(engine, f"{repo}:stopped", created=ts(50), layers=[busy, layer_tar(b"x" * 1000)])
    free = load_image(engine, f"{repo}:free", created=ts(40), size=100_000)
    c1 = engine.containers.run(running.id, detach=True, network_mode="none")
    c2 = engine.containers.create(stopped.id, ["/bin/true"], network_mode="none")
    try:
        r = run("local", "--repo", repo, "--max-size", "1KB", "--yes")
        assert r.code == 4, r.out + r.err
        line = next(x for x in r.out.splitlines() if "budget unreachable" in x)
        assert "still over after evicting 1 images" in line
        assert "1 kept by running containers" in line and "1 kept by stopped containers" in line
        assert not exists(engine, free.id)
        assert exists(engine, running.id) and exists(engine, stopped.id)
    finally:
        c1.remove(force=True)
        c2.remove(force=True)


def test_min_free_beyond_the_disk_is_unreachable(engine, run):
    repo = unique("bfree") + "/app"
    img = load_image(engine, f"{repo}:v1", created=ts(40), size=10_000)
    r = run("local", "--repo", repo, "--min-free", "1000TB", "--dry-run", "-o", "json")
    assert r.code == 4, r.out + r.err
    doc = r.json()
    assert doc["stats"]["budget"]["free_bytes"] > 0
    assert any(a["digest"] == img.id and a["action"] == "delete" for a in doc["actions"])
    assert any(w.startswith("budget unreachable") for w in doc["warnings"])


def test_dry_run_json_shows_last_use_and_its_source(engine, run):
    repo = unique("blast") + "/app"
    built = load_image(engine, f"{repo}:built", created=ts(40), size=1000)
    tagged = load_image(engine, f"{repo}:tagged", created=ts(40), size=1000)
    engine.images.get(tagged.id).tag(repo, "again")
    ran = load_image(engine, f"{repo}:ran", created=ts(40), layers=[busybox_layer()], cmd=["/bin/true"])
    c = engine.containers.run(ran.id, detach=True, network_mode="none")
    c.wait()
    try:
        r = run("local", "--repo", repo, "--dry-run", "--unused", "--min-age", "1h", "-o", "json")
        assert r.code == 0, r.out + r.err
        mine = [a for a in r.json()["actions"] if a["repository"] == repo]
        src = {a["digest"]: a["last_used_source"] for a in mine}
        assert src == {built.id: "created", tagged.id: "tagged", ran.id: "container"}
        assert all(a["last_used"] for a in mine)
    finally:
        c.remove(force=True)
