"""What users see in a terminal and in CI: --verbose, --quiet, CI summaries."""

from __future__ import annotations

import pytest

from tests.support.images import ts, unique

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(registry, pusher):
    p = pusher("basic")
    name = unique("out") + "/app"
    p.image(name, "v1", created=ts(5))
    p.image(name, "v2", created=ts(1))
    return name


def test_verbose_shows_each_request_without_credentials(registry, repo, remote_as):
    reg = registry("basic")
    r = remote_as(reg, "--repo", repo, "--keep-last", "1", "--dry-run", "-v")
    assert r.code == 0, r.err
    assert f"GET http://{reg['host']}/v2/ -> 200" in r.err
    assert f"GET http://{reg['host']}/v2/{repo}/tags/list?n=1000 -> 200" in r.err
    assert " ms)" in r.err
    assert reg["password"] not in r.out + r.err


def test_verbose_shows_engine_calls(engine, run):
    r = run("local", "--dangling", "--dry-run", "-v", "--filter", "label=nothing-has-this")
    assert r.code == 0, r.err
    assert "engine list images -> ok" in r.err and "engine disk usage -> ok" in r.err


def test_quiet_prints_nothing_on_success(registry, repo, remote_as):
    reg = registry("basic")
    r = remote_as(reg, "--repo", repo, "--keep-last", "1", "--yes", "-q")
    assert r.code == 0, r.err
    assert r.out == "" and r.err == ""


def test_github_step_summary_gets_a_markdown_plan_and_outcome(
    registry, repo, remote_as, tmp_path, monkeypatch
):
    reg = registry("basic")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r = remote_as(reg, "--repo", repo, "--keep-last", "1", "--yes")
    assert r.code == 0, r.err
    text = summary.read_text()
    assert text.startswith(f"## regcollect remote: {reg['host']} (applied)")
    assert f"| delete | {repo} |" in text and "| done |" in text
    assert "1 done, 0 failed" in text
