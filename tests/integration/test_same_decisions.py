"""One policy file decides the same for the same images, local (engine) and remote (registry)."""

from __future__ import annotations

import pytest

from tests.support.dockertar import load_image
from tests.support.images import ts, unique

pytestmark = pytest.mark.integration


def decisions(doc):
    return {
        (a["repository"], tuple(a["tags"])): (a["action"], tuple(a["remove_tags"]), a["reason"])
        for a in doc["actions"]
        if a["tags"]
    }


def test_same_images_same_policy_same_decisions(engine, registry, pusher, run, tmp_path):
    prefix = unique("same")
    images = {  # repo -> [(tags, days old, labels)]
        f"{prefix}/app": [(["v1", "stable"], 60, {}), (["v2"], 40, {}), (["v3"], 20, {}), (["v4"], 2, {})],
        f"{prefix}/web": [(["a"], 90, {"keep": "yes"}), (["b"], 80, {}), (["c"], 10, {})],
        f"{prefix}/tools": [(["old"], 100, {})],
    }
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f"""
[[rules]]
repositories = ["{prefix}/app"]
keep_last = 2
keep_tags = ["stable"]

[[rules]]
repositories = ["{prefix}/web"]
keep_last = 1
older_than = "30d"
keep_labels = ["keep=yes"]
"""
    )
    p = pusher("open")
    for repo, entries in images.items():
        for tags, days, labels in entries:
            created = ts(days)
            load_image(engine, [f"{repo}:{t}" for t in tags], created=created, labels=labels)
            p.image(repo, tags, created=created, labels=labels)
    host = registry("open")["host"]
    remote = run("remote", host, "--policy", str(policy), "--repo", f"{prefix}/*", "--dry-run", "-o", "json")
    local = run("local", "--policy", str(policy), "--repo", f"{prefix}/*", "--dry-run", "-o", "json")
    assert remote.code == 0, remote.err
    assert local.code == 0, local.err
    remote_d = decisions(remote.json())
    local_d = {k: v for k, v in decisions(local.json()).items() if k[0].startswith(prefix)}
    assert remote_d == local_d
    assert remote_d[(f"{prefix}/app", ("stable", "v1"))][:2] == ("untag", ("v1",))
    assert remote_d[(f"{prefix}/web", ("a",))][0] == "keep"
    assert remote_d[(f"{prefix}/web", ("b",))][0] == "delete"
    assert remote_d[(f"{prefix}/tools", ("old",))][2] == "kept: no policy rule matches this repository"
