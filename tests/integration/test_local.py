"""`regcollect local` against the real Docker Engine started by scripts/services."""

from __future__ import annotations

import io
import os
import tarfile
from collections import Counter

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


def tags_of(engine, image_id: str) -> list[str]:
    return sorted(engine.images.get(image_id).tags)


@pytest.fixture
def runner_image(engine):
    """An image with a static busybox, so containers can really run (no network)."""
    name = unique("busy")
    img = load_image(
        engine, f"{name}/run:v1", created=ts(60), layers=[busybox_layer()], cmd=["/bin/sleep", "600"]
    )
    return img


def test_untag_versus_delete(engine, run):
    repo = unique("ut") + "/app"
    img = load_image(engine, [f"{repo}:v1", f"{repo}:v2"], created=ts(5))
    r = run("local", f"{repo}:v1", "--yes")
    assert r.code == 0, r.out + r.err
    assert tags_of(engine, img.id) == [f"{repo}:v2"]
    r = run("local", f"{repo}:v2", "--yes")
    assert r.code == 0, r.out + r.err
    assert not exists(engine, img.id)


def test_short_id_full_id_and_missing_target(engine, run):
    a = load_image(engine, unique("sid") + "/a:v1", created=ts(5))
    b = load_image(engine, unique("sid") + "/b:v1", created=ts(5))
    r = run("local", a.short, b.id, "no-such/image:v9", "--yes")
    assert r.code == 1, "a missing target is an error for that target only"
    assert "no-such/image:v9: no such image" in r.err
    assert not exists(engine, a.id) and not exists(engine, b.id)


def test_ambiguous_short_id_lists_candidates(engine, run):
    ids = [load_image(engine, unique("amb") + "/x:v1", created=ts(3)).id for _ in range(17)]
    first = Counter(i.split(":")[1][0] for i in ids).most_common(1)[0][0]  # 17 ids, 16 digits
    r = run("local", first, "--dry-run")
    assert r.code == 1
    assert "ambiguous image id prefix" in r.err
    assert all(exists(engine, i) for i in ids)


def test_name_at_digest(engine, run, registry):
    host = registry("open")["host"]
    repo = f"{host}/{unique('dig')}/app"
    img = load_image(engine, f"{repo}:v1", created=ts(5))
    engine.images.push(repo, tag="v1")
    digest = engine.images.get(img.id).attrs["RepoDigests"][0].split("@")[1]
    r = run("local", f"{repo}@{digest}", "--yes")
    assert r.code == 0, r.out + r.err
    assert not exists(engine, img.id)


def test_running_container_is_never_touched_even_with_force(engine, run, runner_image):
    c = engine.containers.run(runner_image.tags[0], detach=True, network_mode="none")
    try:
        for extra in ([], ["--force"]):
            r = run("local", runner_image.tags[0], "--yes", *extra)
            assert r.code == 0, r.out + r.err
            assert "used by running container" in r.out
            assert exists(engine, runner_image.tags[0])
        c.reload()
        assert c.status == "running"
    finally:
        c.remove(force=True)


def test_stopped_container_skipped_then_removed_with_remove_containers(engine, run, runner_image):
    c = engine.containers.create(runner_image.tags[0], network_mode="none")
    r = run("local", runner_image.tags[0], "--yes")
    assert r.code == 0
    assert "used by stopped container" in r.out and "--remove-containers" in r.out
    assert exists(engine, runner_image.id)
    r = run("local", runner_image.tags[0], "--yes", "--remove-containers")
    assert r.code == 0, r.out + r.err
    assert not exists(engine, runner_image.id)
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(c.id)


def test_force_on_stopped_container_warns_layers_stay(engine, run, runner_image):
    c = engine.containers.create(runner_image.tags[0], network_mode="none")
    try:
        r = run("local", runner_image.tags[0], "--yes", "--force")
        assert r.code == 0, r.out + r.err
        assert "layers stay on disk until" in r.out
        assert not exists(engine, runner_image.tags[0])
        engine.containers.get(c.id)  # the container was not removed
    finally:
        c.remove(force=True)


def test_multi_reference_by_id_needs_force(engine, run):
    one, two = unique("mr") + "/a", unique("mr") + "/b"
    img = load_image(engine, [f"{one}:v1", f"{two}:v1"], created=ts(3))
    r = run("local", img.short, "--yes")
    assert r.code == 1
    assert "referenced in multiple repositories" in r.err and "--force" in r.err
    assert exists(engine, img.id)
    r = run("local", img.short, "--yes", "--force")
    assert r.code == 0, r.out + r.err
    assert not exists(engine, img.id)


def _build_child(engine, base_tag: str, child_tag: str) -> str:
    dockerfile = f"FROM {base_tag}\nCOPY f /f\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("f", os.urandom(2048))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    img, _ = engine.images.build(fileobj=buf, custom_context=True, tag=child_tag, rm=True)
    return img.id


def test_parent_kept_by_child_and_both_deleted_child_first(engine, run):
    base_tag = unique("par") + "/base:v1"
    base = load_image(engine, base_tag, created=ts(30))
    child_tag = unique("par") + "/child:v1"
    child = _build_child(engine, base_tag, child_tag)
    assert engine.images.get(child).attrs["Parent"] == base.id
    r = run("local", base_tag, "--yes", "-o", "json")
    assert r.code == 0, r.out + r.err
    actions = {a["digest"]: a for a in r.json()["actions"] if a["digest"] == base.id}
    assert "parent image of kept image" in actions[base.id]["reason"]
    assert exists(engine, base.id) and exists(engine, child)
    engine.images.get(base.id).tag(base_tag)
    r = run("local", base_tag, child_tag, "--yes")
    assert r.code == 0, r.out + r.err
    assert not exists(engine, child) and not exists(engine, base.id)


def test_dangling_preset_with_label_filter(engine, run):
    mark = unique("dg")
    loose = load_image(engine, None, created=ts(10), labels={"suite": mark})
    tagged = load_image(engine, f"{mark}/app:v1", created=ts(10), labels={"suite": mark})
    r = run("local", "--dangling", "--filter", f"label=suite={mark}", "--yes", "-o", "json")
    assert r.code == 0, r.out + r.err
    assert not exists(engine, loose.id)
    assert exists(engine, tagged.id)


def test_unused_with_until_label_and_label_not(engine, run):
    mark = unique("un")
    old = load_image(engine, f"{mark}/a:old", created=ts(40), labels={"suite": mark})
    new = load_image(engine, f"{mark}/a:new", created=ts(1), labels={"suite": mark})
    pinned = load_image(engine, f"{mark}/a:pin", created=ts(40), labels={"suite": mark, "keep": "yes"})
    r = run(
        "local",
        "--unused",
        "--filter",
        "until=240h",
        "--filter",
        f"label=suite={mark}",
        "--filter",
        "label!=keep=yes",
        "--yes",
        "-o",
        "json",
    )
    assert r.code == 0, r.out + r.err
    assert not exists(engine, old.id)
    assert exists(engine, new.id) and exists(engine, pinned.id)
    reasons = {a["digest"]: a["reason"] for a in r.json()["actions"]}
    assert reasons[new.id] == "kept: does not match --filter until=240h"
    assert reasons[pinned.id] == "kept: does not match --filter label!=keep=yes"


def test_keep_last_per_repository_with_keep_tag(engine, run):
    repo = unique("klp") + "/svc"
    imgs = [load_image(engine, f"{repo}:v{i}", created=ts(50 - i)) for i in range(5)]
    engine.images.get(imgs[0].id).tag(repo, "stable")
    r = run("local", "--repo", repo, "--keep-last", "2", "--keep-tag", "stable", "--yes")
    assert r.code == 0, r.out + r.err
    assert tags_of(engine, imgs[0].id) == [f"{repo}:stable"]
    assert [exists(engine, i.id) for i in imgs] == [True, False, False, True, True]


def test_max_size_evicts_least_recently_used(engine, run):
    mark = unique("lru")
    imgs = [
        load_image(engine, f"{mark}/x:v{i}", created=ts(30 - i), size=200_000, labels={"suite": mark})
        for i in range(4)
    ]
    # v0 is oldest by build time but was tagged just now: it counts as recently used.
    engine.images.get(imgs[0].id).tag(f"{mark}/x", "retag")
    total = engine.df()["LayersSize"]
    r = run(
        "local",
        "--max-size",
        str(total - 300_000),
        "--filter",
        f"label=suite={mark}",
        "--dry-run",
        "-o",
        "json",
    )
    assert r.code == 0, r.err
    deleted = {a["digest"] for a in r.json()["actions"] if a["action"] == "delete"}
    assert deleted == {imgs[1].id, imgs[2].id}


def test_reclaimable_bytes_match_the_engine_within_five_percent(engine, run):
    mark = unique("rb")
    base = layer_tar(os.urandom(400_000))
    keep = load_image(engine, f"{mark}/k:v9", created=ts(1), layers=[base, layer_tar(os.urandom(100_000))])
    gone = [
        load_image(
            engine,
            f"{mark}/k:v{i}",
            created=ts(20 + i),
            layers=[base, layer_tar(os.urandom(150_000 + i * 10_000))],
        )
        for i in range(3)
    ]
    only = [
        load_image(engine, f"{mark}/o:v{i}", created=ts(20 + i), layers=[layer_tar(os.urandom(120_000))])
        for i in range(2)
    ]
    before = engine.df()["LayersSize"]
    r = run("local", "--repo", f"{mark}/*", "--keep-last", "1", "--yes", "-o", "json")
    assert r.code == 0, r.out + r.err
    after = engine.df()["LayersSize"]
    predicted = r.json()["summary"]["reclaimable_bytes"]
    assert exists(engine, keep.id)
    assert not any(exists(engine, g.id) for g in gone)
    assert len([o for o in only if exists(engine, o.id)]) == 1
    assert abs(predicted - (before - after)) <= 0.05 * (before - after), (predicted, before - after)


def test_min_age_protects_recently_used_images(engine, run):
    mark = unique("age")
    old = load_image(engine, f"{mark}/a:old", created=ts(90), labels={"suite": mark})
    used = load_image(engine, f"{mark}/a:used", created=ts(90), labels={"suite": mark})
    engine.images.get(used.id).tag(f"{mark}/a", "retagged-now")  # LastTagTime: now
    r = run("local", "--unused", "--min-age", "1d", "--filter", f"label=suite={mark}", "--yes", "-o", "json")
    assert r.code == 0, r.out + r.err
    assert not exists(engine, old.id)
    assert exists(engine, used.id)
    reason = next(a["reason"] for a in r.json()["actions"] if a["digest"] == used.id)
    assert "within --min-age 1d" in reason


def test_layer_lists_come_from_the_cache_and_give_the_same_bytes(engine, run):
    """An image's layer list is fixed by its id: a second run reads it from the cache instead of
    inspecting every image (most of a local run's time), and plans exactly the same bytes."""
    mark = unique("lc")
    base = layer_tar(os.urandom(300_000))
    ids = [
        load_image(
            engine, f"{mark}/s:v{i}", created=ts(20 + i), layers=[base, layer_tar(os.urandom(50_000 + i))]
        ).id
        for i in range(3)
    ]
    ids.append(
        load_image(engine, f"{mark}/alone:v1", created=ts(30), layers=[layer_tar(os.urandom(70_000))]).id
    )
    args = ("local", "--repo", f"{mark}/*", "--keep-last", "1", "--dry-run", "-o", "json", "-v")
    first, second = run(*args), run(*args)
    assert first.code == second.code == 0, first.err + second.err

    def inspected(r) -> list[str]:
        return [line for line in r.err.splitlines() if "engine inspect " in line]

    assert any(ids[0] in line for line in inspected(first))  # shares layers, so its chain is needed
    assert not any(ids[3] in line for line in inspected(first))  # shares nothing: no inspect at all
    assert inspected(second) == []
    one, two = first.json(), second.json()
    assert one["summary"]["reclaimable_bytes"] == two["summary"]["reclaimable_bytes"] >= 100_000
    assert sorted((a["digest"], a["action"], a["bytes"]) for a in one["actions"]) == sorted(
        (a["digest"], a["action"], a["bytes"]) for a in two["actions"]
    )
    assert run(*args[:-1], "--no-cache", "-v").err.count("engine inspect ") >= 1


def test_force_spares_an_image_tagged_in_another_repository_since_the_plan(
    engine, run, runner_image, tmp_path
):
    """A saved --force plan (`rmi -f ID`, a stopped container uses the image) must not remove a tag
    the plan never saw, in any repository: the image is skipped whole."""
    c = engine.containers.create(runner_image.tags[0], network_mode="none")
    try:
        r = run("local", runner_image.tags[0], "--force", "--dry-run", "-o", "json")
        assert r.code == 0, r.out + r.err
        assert [a["force"] for a in r.json()["actions"] if a["action"] == "delete"] == [True]
        plan = tmp_path / "plan.json"
        plan.write_text(r.out)
        newcomer = unique("ft") + "/later"
        engine.images.get(runner_image.id).tag(newcomer, "keep")
        r = run("apply", str(plan), "--yes")
        assert exists(engine, f"{newcomer}:keep"), r.out + r.err
        assert f"changed since plan: new tag {newcomer}:keep points at it" in r.out
        assert tags_of(engine, runner_image.id) == sorted([runner_image.tags[0], f"{newcomer}:keep"])
    finally:
        c.remove(force=True)
