"""The survivors of issue 21 where only the real registry, token server or engine can tell: a glob
--keep-tag, a tags listing of several pages, a 500 on one DELETE, a container created between a
reviewed plan and `apply`, and one credential allowed to delete in one repository only."""

from __future__ import annotations

import re

import pytest

from tests.support.flakyproxy import FlakyProxy
from tests.support.images import ts, unique
from tests.support.rewriteproxy import RewriteProxy

pytestmark = pytest.mark.integration


def test_a_glob_keep_tag_protects_every_matching_release(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("glob") + "/app"
    r1 = p.image(repo, "release-1.0", created=ts(40))
    r2 = p.image(repo, ["release-2.0", "build-17"], created=ts(30))
    dev = p.image(repo, "dev-5", created=ts(20))
    p.image(repo, "main", created=ts(1))
    r = run(
        "remote", host, "--repo", repo, "--keep-last", "1", "--keep-tag", "release-*", "--yes", "-o", "json"
    )
    assert r.code == 0, r.out + r.err
    assert p.tags(repo) == ["main", "release-1.0", "release-2.0"]
    assert p.exists(repo, r1.digest) and p.exists(repo, r2.digest)
    assert not p.exists(repo, dev.digest)


def test_a_keep_tag_on_the_last_page_of_tags_keeps_its_digest(registry, pusher, run):
    """Tags served two a page (distribution 2.8 does not page tags/list; the proxy pages the real
    registry's list as later registries do): the kept tag is on page three."""
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("page") + "/app"
    old = p.image(repo, ["a-1", "a-2", "a-3", "a-4", "zz-stable"], created=ts(40))
    p.image(repo, "b-new", created=ts(1))

    with RewriteProxy(host, tag_page=2) as proxy:
        r = run(
            "remote",
            proxy.host,
            "--repo",
            repo,
            "--keep-last",
            "1",
            "--keep-tag",
            "zz-stable",
            "--yes",
            "-o",
            "json",
        )
        pages = proxy.seen[("GET", f"/v2/{repo}/tags/list")]
    assert r.code == 0, r.out + r.err
    assert pages >= 3, f"the registry did not page the listing ({pages} requests)"
    assert p.exists(repo, old.digest)
    assert p.tags(repo) == ["b-new", "zz-stable"]


def test_a_500_on_one_delete_is_failed_frees_nothing_and_exits_1(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("d500") + "/app"
    broken = p.image(repo, "v1", created=ts(30))
    fine = p.image(repo, "v2", created=ts(20))
    p.image(repo, "v3", created=ts(1))

    def fail(method: str, path: str) -> int | None:
        return 500 if method == "DELETE" and path.endswith(f"/manifests/{broken.digest}") else None

    with FlakyProxy(host, failure_rate=0.0, fail_when=fail) as proxy:
        dry = run("remote", proxy.host, "--repo", repo, "--keep-last", "1", "--dry-run", "-o", "json")
        sizes = {a["digest"]: a["bytes"] for a in dry.json()["actions"]}
        r = run("remote", proxy.host, "--repo", repo, "--keep-last", "1", "--yes", "-o", "json")
    assert r.code == 1, r.out + r.err
    doc = r.json()
    got = {x["digest"]: (x["status"], x["detail"]) for x in doc["results"]}
    assert got[broken.digest][0] == "failed" and "500" in got[broken.digest][1]
    assert "already gone" not in got[broken.digest][1]
    assert got[fine.digest][0] == "done"
    assert doc["outcome"]["reclaimed_bytes"] == sizes[fine.digest]
    assert p.exists(repo, broken.digest) and not p.exists(repo, fine.digest)


def test_one_credential_may_delete_in_one_repository_and_not_in_another(registry, pusher, run, services):
    """The token server grants `delete` everywhere but in the `denied` repository (the proxy drops
    it from the scope asked for there): the real registry refuses that DELETE, and the run stops."""
    host = registry("token")["host"]
    p = pusher("token")
    base = unique("scope")
    denied, allowed = f"{base}/a-denied", f"{base}/b-allowed"
    for repo in (denied, allowed):
        p.image(repo, "old", created=ts(30))
        p.image(repo, "new", created=ts(1))
    old = {repo: p.resolve(repo, "old") for repo in (denied, allowed)}

    def no_delete_in_denied(method: str, path: str) -> str:
        if path.startswith("/__token"):
            return re.sub(rf"(repository%3A{re.escape(denied.replace('/', '%2F'))}%3A)[^&]*", r"\1pull", path)
        return path

    admin = services["token_users"]["admin"]["password"]
    with RewriteProxy(host, rewrite=no_delete_in_denied, token=services["token_server"]) as proxy:
        r = run(
            "remote",
            proxy.host,
            "--repo",
            denied,
            "--repo",
            allowed,
            "--keep-last",
            "1",
            "--yes",
            "--username",
            "admin",
            "--password-stdin",
            "-o",
            "json",
            input=admin + "\n",
        )
    assert r.code != 0, r.out + r.err
    assert admin not in r.out + r.err
    doc = r.json()
    assert f"may not delete in repository {denied}" in doc["outcome"]["fatal"]
    assert p.exists(denied, old[denied])
    statuses = {x["repository"]: x["status"] for x in doc["results"]}
    assert statuses[denied] == "failed"
    # Allowed there, but after a fatal refusal nothing more is attempted.
    if statuses[allowed] != "done":
        assert p.exists(allowed, old[allowed])


def test_a_container_created_after_the_plan_saves_an_image_deleted_by_id(engine, run, tmp_path):
    """An untagged image goes by id (`docker rmi ID` after its planned containers): one created from
    it after the user reviewed the plan was never agreed to, and the engine would not object."""
    from tests.support.dockertar import busybox_layer, load_image

    name = unique("late") + "/run:v1"
    old = load_image(engine, name, created=ts(60), layers=[busybox_layer()], cmd=["/bin/sleep", "600"])
    new = load_image(engine, name, created=ts(1), layers=[busybox_layer()], cmd=["/bin/true"])
    assert engine.images.get(old.id).tags == []  # the tag moved on: `old` is dangling
    r = run("local", old.id, "--dry-run", "-o", "json")
    assert r.code == 0, r.out + r.err
    assert [a["action"] for a in r.json()["actions"] if a["digest"] == old.id] == ["delete"]
    plan = tmp_path / "plan.json"
    plan.write_text(r.out)
    c = engine.containers.create(old.id, network_mode="none", name=unique("latecomer"))
    try:
        r = run("apply", str(plan), "--yes")
        assert f"changed since plan: container {c.name} was created from it since the plan" in r.out, (
            r.out + r.err
        )
        assert engine.images.get(old.id).id == old.id
    finally:
        c.remove(force=True)
        for image in (old, new):
            engine.images.remove(image.id, force=True)
