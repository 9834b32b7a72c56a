"""Issue 20 through the real CLI and distribution 2.8: what a nightly job sees when a repository
cannot be read, and what reproducible-build timestamps do (nothing)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support.flakyproxy import FlakyProxy
from tests.support.images import ts, unique

pytestmark = pytest.mark.integration

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def test_an_unreadable_repository_is_left_untouched_and_the_run_exits_1(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    mark = unique("unread")
    good, bad = f"{mark}/good", f"{mark}/bad"
    for repo in (good, bad):
        for i in range(3):
            p.image(repo, f"v{i}", created=ts(10 - i), labels={"repo": repo, "i": str(i)})

    def fail(method: str, path: str) -> int | None:
        return 500 if path.startswith(f"/v2/{bad}/tags/list") else None

    with FlakyProxy(host, failure_rate=0, fail_when=fail) as proxy:
        r = run("remote", proxy.host, "--repo", good, "--repo", bad, "--keep-last", "1", "--yes")
    assert r.code == 1, r.out + r.err
    assert f"repository {bad} left untouched" in r.out
    assert "could not be read" in r.out
    assert p.tags(good) == ["v2"]
    assert p.tags(bad) == ["v0", "v1", "v2"]

    dry = run("remote", host, "--repo", good, "--keep-last", "1", "--dry-run")
    assert dry.code == 0, dry.err  # nothing unread: a clean run still exits 0


def test_reproducible_build_timestamps_never_make_an_image_old(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("ko") + "/app"
    pushed = [p.image(repo, t, created=EPOCH, labels={"t": t}) for t in ("v9", "v10", "latest")]
    r = run("remote", host, "--repo", repo, "--older-than", "30d", "--yes", "-o", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["summary"]["delete"] == 0
    assert any("created time that says nothing" in w for w in doc["warnings"])
    assert {a["time_source"] for a in doc["actions"]} == {"first seen"}
    r = run("remote", host, "--repo", repo, "--keep-last", "1", "--yes", "-o", "json")
    assert r.json()["summary"]["delete"] == 0  # all first seen together: a tie, kept whole
    assert all(p.exists(repo, i.digest) for i in pushed)


def test_a_tls_registry_that_offers_http2_is_spoken_to_over_http2(registry, pusher, run):
    """Issue 19: many requests on one connection where the registry offers it (distribution over
    TLS negotiates h2 by ALPN)."""
    reg = registry("tls")
    r = run(
        "remote",
        reg["url"],
        "--ca-cert",
        reg["ca_cert"],
        "--repo",
        unique("h2") + "/app",
        "--keep-last",
        "1",
        "--dry-run",
        "-v",
    )
    assert r.code == 0, r.err
    assert "GET https://127.0.0.1" in r.err and "-> 200 HTTP/2" in r.err
