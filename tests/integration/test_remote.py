"""`regcollect remote` against the real distribution registries started by scripts/services."""

from __future__ import annotations

import base64
import json
import os

import pytest

from tests.support.flakyproxy import FlakyProxy
from tests.support.images import ts, unique

pytestmark = pytest.mark.integration


def test_keep_last_deletes_exactly_what_the_dry_run_json_named(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("kl") + "/app"
    imgs = [p.image(repo, f"v{i}", created=ts(20 - i)) for i in range(6)]
    dry = run("remote", host, "--repo", repo, "--keep-last", "2", "--dry-run", "-o", "json")
    assert dry.code == 0, dry.err
    doc = dry.json()
    assert doc["dry_run"] is True
    planned = {a["digest"] for a in doc["actions"] if a["action"] == "delete"}
    assert planned == {i.digest for i in imgs[:4]}
    assert all(p.exists(repo, i.digest) for i in imgs), "a dry run must change nothing"

    applied = run("remote", host, "--repo", repo, "--keep-last", "2", "--yes", "-o", "json")
    assert applied.code == 0, applied.err
    results = applied.json()["results"]
    assert {r["digest"] for r in results if r["status"] == "done"} == planned
    assert p.tags(repo) == ["v4", "v5"]
    assert [p.exists(repo, i.digest) for i in imgs] == [False] * 4 + [True] * 2


def test_keep_tag_on_a_shared_digest_untags_and_keeps_the_digest(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("kt") + "/app"
    old = p.image(repo, ["old-build", "stable"], created=ts(30))
    p.image(repo, "new", created=ts(1))
    r = run("remote", host, "--repo", repo, "--keep-last", "1", "--keep-tag", "stable", "--yes")
    assert r.code == 0, r.out + r.err
    assert p.tags(repo) == ["new", "stable"]
    assert p.resolve(repo, "stable") == old.digest
    assert p.exists(repo, old.digest)
    assert "untag" in r.out and "keeps stable" in r.out


def test_multi_arch_kept_index_keeps_children_and_deleted_index_takes_only_its_own(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("ma") + "/app"
    shared = p.image(repo, None, created=ts(40), arch="amd64")
    old_arm = p.image(repo, None, created=ts(40), arch="arm64")
    new_arm = p.image(repo, None, created=ts(2), arch="arm64")
    old_idx = p.index(repo, "1.0", [shared, old_arm])
    new_idx = p.index(repo, "2.0", [shared, new_arm], oci=True)
    r = run("remote", host, "--repo", repo, "--keep-last", "1", "--untagged", "--yes", "-o", "json")
    assert r.code == 0, r.err
    assert not p.exists(repo, old_idx.digest)
    assert not p.exists(repo, old_arm.digest)
    for kept in (new_idx, shared, new_arm):
        assert p.exists(repo, kept.digest)
    reasons = {a["digest"]: a["reason"] for a in r.json()["actions"]}
    assert reasons[shared.digest] == f"kept: child of kept index {repo}:2.0"


def test_signatures_follow_their_subject_and_never_count(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("sig") + "/app"
    old = p.image(repo, "old", created=ts(10))
    new = p.image(repo, "new", created=ts(5))
    sig_old = p.cosign_signature(repo, old)
    sig_new = p.cosign_signature(repo, new)
    att_old = p.cosign_signature(repo, old, "att")
    sbom = p.image(repo, None, subject=old)  # an OCI referrer by digest, no tag
    r = run("remote", host, "--repo", repo, "--keep-last", "1", "--yes")
    assert r.code == 0, r.out + r.err
    assert p.exists(repo, new.digest) and p.exists(repo, sig_new.digest)
    for gone in (old, sig_old, att_old):
        assert not p.exists(repo, gone.digest)
    assert p.tags(repo) == sorted(["new", sig_new.tags[0]])
    # The untagged referrer can only be found through the referrers fallback; 2.8 has no API,
    # so it is left alone rather than guessed at.
    assert p.exists(repo, sbom.digest)


def test_many_repositories_and_many_tags(registry, pusher, run):
    host = registry("open")["host"]
    p = pusher("open")
    prefix = unique("many")
    layer = os.urandom(16)
    for i in range(105):
        p.image(f"{prefix}/r{i:03d}", "only", created=ts(5), layers=[layer])
    big = f"{prefix}/big"
    for i in range(260):
        p.image(big, f"t{i:03d}", created=ts(300 - i), layers=[layer])
    r = run("remote", host, "--repo", f"{prefix}/*", "--keep-last", "250", "--dry-run", "-o", "json")
    assert r.code == 0, r.err
    doc = r.json()
    repos = {a["repository"] for a in doc["actions"]}
    assert len(repos) == 106
    deleted = sorted(t for a in doc["actions"] if a["action"] == "delete" for t in a["tags"])
    assert deleted == [f"t{i:03d}" for i in range(10)]


def test_basic_auth_with_credentials_from_docker_config(registry, pusher, run, tmp_path):
    reg = registry("basic")
    p = pusher("basic")
    repo = unique("basic") + "/app"
    for i in range(3):
        p.image(repo, f"v{i}", created=ts(10 - i))
    anon = run("remote", reg["host"], "--repo", repo, "--keep-last", "1", "--dry-run")
    assert anon.code == 3
    assert "401" in anon.err
    cfg = tmp_path / "docker-config"
    cfg.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{reg['username']}:{reg['password']}".encode()).decode()
    (cfg / "config.json").write_text(json.dumps({"auths": {reg["host"]: {"auth": auth}}}))
    r = run("remote", reg["host"], "--repo", repo, "--keep-last", "1", "--yes", "-o", "json")
    assert r.code == 0, r.err
    assert p.tags(repo) == ["v2"]
    assert reg["password"] not in r.out + r.err and auth not in r.out + r.err


def test_basic_auth_bad_password_is_exit_3_without_the_secret(registry, remote_as):
    reg = registry("basic")
    r = remote_as(reg, "--repo", "x/y", "--keep-last", "1", "--dry-run", password="wrong-secret-value")
    assert r.code == 3
    assert "wrong-secret-value" not in r.out + r.err
    assert r.err.count("\n") == 1 and r.err.startswith("Error: ")


@pytest.mark.parametrize("http_stack", ["lean", "httpx"])
def test_token_auth_admin_deletes_and_pull_only_user_gets_a_clear_refusal(
    services, registry, pusher, remote_as, monkeypatch, http_stack
):
    # Both HTTP paths: ours, and httpx's AsyncClient, which a proxy in the environment selects.
    monkeypatch.setenv("REGCOLLECT_HTTP_TRANSPORT", http_stack)
    reg = registry("token")
    p = pusher("token")
    repo = unique("tok") + "/app"
    imgs = [p.image(repo, f"v{i}", created=ts(10 - i)) for i in range(3)]
    puller = services["token_users"]["puller"]["password"]
    refused = remote_as(reg, "--repo", repo, "--keep-last", "1", "--yes", user="puller", password=puller)
    assert refused.code == 3, refused.out + refused.err
    assert f"may not delete in repository {repo}" in refused.err
    assert "'delete'" in refused.err
    assert puller not in refused.out + refused.err
    assert all(p.exists(repo, i.digest) for i in imgs), "a refusal deletes nothing"

    admin = services["token_users"]["admin"]["password"]
    ok = remote_as(reg, "--repo", repo, "--keep-last", "1", "--yes", user="admin", password=admin)
    assert ok.code == 0, ok.out + ok.err
    assert p.tags(repo) == ["v2"]


def test_token_auth_anonymous_can_plan_but_not_list_the_catalog(registry, pusher, run):
    reg = registry("token")
    p = pusher("token")
    repo = unique("anon") + "/app"
    p.image(repo, "v1", created=ts(3))
    r = run("remote", reg["host"], "--repo", repo, "--keep-last", "0", "--dry-run", "-o", "json")
    assert r.code == 0, r.err
    assert r.json()["summary"]["delete"] == 1
    wild = run("remote", reg["host"], "--repo", f"{repo.split('/')[0]}/*", "--keep-last", "0", "--dry-run")
    assert wild.code == 3
    assert "_catalog" in wild.err


def test_registry_with_deletes_disabled_says_so_and_deletes_nothing(registry, pusher, run):
    reg = registry("nodelete")
    p = pusher("nodelete")
    repo = unique("nd") + "/app"
    imgs = [p.image(repo, f"v{i}", created=ts(10 - i)) for i in range(3)]
    p.manifest(repo, "stable", imgs[0].data, imgs[0].media_type)
    r = run("remote", reg["host"], "--repo", repo, "--keep-last", "1", "--keep-tag", "stable", "--yes")
    assert r.code == 1, r.out + r.err
    assert "deletion disabled" in r.out
    assert "storage.delete.enabled" in r.out
    assert p.tags(repo) == ["stable", "v0", "v1", "v2"]


def test_unreachable_registry_is_exit_3_with_the_url(run):
    r = run("remote", "127.0.0.1:9", "--repo", "a/b", "--keep-last", "1", "--dry-run")
    assert r.code == 3
    assert "http://127.0.0.1:9/v2/" in r.err
    assert "Traceback" not in r.err


def test_not_a_registry_is_exit_3(services, run):
    host = services["token_server"].removeprefix("http://")
    r = run("remote", host, "--repo", "a/b", "--keep-last", "1", "--dry-run")
    assert r.code == 3
    assert host in r.err


def test_apply_without_tty_or_yes_is_refused_before_contacting_anything(run):
    r = run("remote", "127.0.0.1:9", "--repo", "a/b", "--keep-last", "1")
    assert r.code == 2
    assert "nothing was deleted" in r.err


def test_flaky_proxy_every_intended_deletion_done_and_nothing_else(registry, pusher, run):
    reg = registry("open")
    p = pusher("open")
    repo = unique("flaky") + "/app"
    imgs = [p.image(repo, f"v{i}", created=ts(30 - i)) for i in range(12)]
    p.manifest(repo, "stable", imgs[0].data, imgs[0].media_type)
    child = p.image(repo, None, created=ts(40))
    p.index(repo, "multi", [child])
    sig = p.cosign_signature(repo, imgs[1])
    with FlakyProxy(reg["host"], failure_rate=0.2, seed=11) as proxy:
        r = run(
            "remote",
            proxy.host,
            "--repo",
            repo,
            "--keep-last",
            "3",
            "--keep-tag",
            "stable",
            "--yes",
            "-o",
            "json",
            "--concurrency",
            "4",
        )
        assert proxy.stats["failed_before"] > 3 and proxy.stats["failed_after"] > 3
    assert r.code == 0, r.out + r.err
    assert p.tags(repo) == ["stable", "v10", "v11", "v9"]
    assert p.resolve(repo, "stable") == imgs[0].digest
    for i, img in enumerate(imgs):
        assert p.exists(repo, img.digest) == (i == 0 or i >= 9), i
    assert not p.exists(repo, child.digest) and not p.exists(repo, sig.digest)


def test_tls_registry_needs_its_ca_and_works_with_ca_cert(registry, run):
    reg = registry("tls")
    refused = run("remote", reg["url"], "--repo", "a/b", "--keep-last", "1", "--dry-run")
    assert refused.code == 3
    assert "TLS failed" in refused.err and "--ca-cert" in refused.err
    ok = run(
        "remote", reg["url"], "--repo", "a/b", "--keep-last", "1", "--dry-run", "--ca-cert", reg["ca_cert"]
    )
    assert ok.code == 0, ok.err
    insecure = run("remote", reg["url"], "--repo", "a/b", "--keep-last", "1", "--dry-run", "--insecure")
    assert insecure.code == 0, insecure.err
