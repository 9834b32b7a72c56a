"""Credentials as docker finds them, against the real htpasswd registry; secrets never printed."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from tests.support.images import ts, unique

pytestmark = pytest.mark.integration


@pytest.fixture
def seeded(registry, pusher):
    reg = registry("basic")
    p = pusher("basic")
    repo = unique("cred") + "/app"
    p.image(repo, "v1", created=ts(5))
    p.image(repo, "v2", created=ts(1))
    return reg, repo


def test_credential_helper_from_config(seeded, run, tmp_path, monkeypatch):
    reg, repo = seeded
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-rctest"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        f'printf \'{{"ServerURL":"%s","Username":"{reg["username"]}","Secret":"{reg["password"]}"}}\' "$server"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    cfg = tmp_path / "docker-config"
    cfg.mkdir(exist_ok=True)
    (cfg / "config.json").write_text(json.dumps({"credHelpers": {reg["host"]: "rctest"}}))
    r = run("remote", reg["host"], "--repo", repo, "--keep-last", "1", "--dry-run", "-o", "json")
    assert r.code == 0, r.err
    assert r.json()["summary"]["delete"] == 1
    assert reg["password"] not in r.out + r.err


def test_docker_auth_config_env_wins(seeded, run, tmp_path, monkeypatch):
    reg, repo = seeded
    cfg = tmp_path / "docker-config"
    cfg.mkdir(exist_ok=True)
    bad = base64.b64encode(b"basicuser:wrong").decode()
    (cfg / "config.json").write_text(json.dumps({"auths": {reg["host"]: {"auth": bad}}}))
    good = base64.b64encode(f"{reg['username']}:{reg['password']}".encode()).decode()
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", json.dumps({"auths": {reg["host"]: {"auth": good}}}))
    r = run("remote", reg["host"], "--repo", repo, "--keep-last", "1", "--dry-run")
    assert r.code == 0, r.err
    monkeypatch.delenv("DOCKER_AUTH_CONFIG")
    r = run("remote", reg["host"], "--repo", repo, "--keep-last", "1", "--dry-run")
    assert r.code == 3 and "401" in r.err
    assert bad not in r.err and "wrong" not in r.err
