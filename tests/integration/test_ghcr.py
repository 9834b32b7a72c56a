"""`regcollect remote` against the ghcr.io emulator (tests/support/ghcr): GitHub's REST API lists
and deletes, /v2 serves manifests. The real CLI end to end, as a CI job would run it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.ghcr.demo import ACTIONS_TOKEN, PAT, Seeded, seed_demo
from tests.support.ghcr.server import GhcrEmulator

pytestmark = pytest.mark.integration


@pytest.fixture
def emu() -> Iterator[tuple[GhcrEmulator, Seeded]]:
    with GhcrEmulator() as e:
        yield e, seed_demo(e)


def ghcr(run: Callable[..., object], e: GhcrEmulator, *args: str, token: str = PAT):  # type: ignore[no-untyped-def]
    return run(
        "remote",
        e.registry_host,
        "--api",
        "github",
        "--api-url",
        e.api_url,
        *args,
        "--password-stdin",
        input=token + "\n",
    )


def active(e: GhcrEmulator, repo: str) -> dict[str, list[str]]:
    return {v.digest: sorted(v.tags) for v in e.package(repo).active()}


def reaches(e: GhcrEmulator, digest: str, content: dict[str, bytes]) -> set[str]:
    """Every manifest digest a manifest names (children at any depth)."""
    out, stack = set(), [digest]
    while stack:
        d = stack.pop()
        doc = json.loads(content[d])
        for m in doc.get("manifests") or []:
            if m["digest"] not in out:
                out.add(m["digest"])
                stack.append(m["digest"])
    return out


KEEP_RELEASES = (
    "--repo",
    "acme/app",
    "--keep-last",
    "2",
    "--keep-tag",
    "v*",
    "--keep-tag",
    "latest",
    "--untagged",
)


def test_a_kept_multi_arch_image_still_pulls_whole_with_attestations_and_signatures(emu, run) -> None:
    e, s = emu
    r = ghcr(run, e, *KEEP_RELEASES, "--yes", "-o", "json")
    assert r.code == 0, r.err
    left = active(e, "acme/app")
    content = e.store.content
    for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
        index = s.refs[f"app:{tag}"]
        assert index in left
        assert reaches(e, index, content) <= set(left), f"{tag} lost a child or attestation"
        assert s.refs[f"app:{tag}.sig"] in left
    assert s.refs["app:v1.2.0.att"] in left and s.refs["app:v1.2.0/referrer"] in left
    # what no kept tag reaches went: the orphan, old nightlies with their children
    assert s.refs["app:orphan"] not in left
    assert s.refs["app:nightly-00"] not in left
    doc = r.json()
    by_digest = {a["digest"]: a for a in doc["actions"]}
    assert by_digest[s.refs["app:orphan"]]["version_id"] == str(
        e.version("acme/app", s.refs["app:orphan"]).id
    )


def test_one_expiring_tag_of_a_shared_version_is_moved_off_and_the_version_stays(emu, run) -> None:
    e, s = emu
    release = s.refs["app:v1.2.0"]  # tagged v1.2.0, v1.2 and latest
    r = ghcr(
        run,
        e,
        "--repo",
        "acme/app",
        "--older-than",
        "5d",
        "--keep-tag",
        "latest",
        "--keep-tag",
        "v1.[01].*",
        "--keep-tag",
        "nightly-*",
        "--keep-tag",
        "bundle-*",
        "--keep-tag",
        "legacy-*",
        "--keep-tag",
        "sha256-*",
        "--yes",
        "-o",
        "json",
    )
    assert r.code == 0, r.err
    v = e.version("acme/app", release)
    assert v.state == "active" and v.tags == ["latest"]
    assert "untag" in {a["action"] for a in r.json()["actions"] if a["digest"] == release}
    # the throwaway versions that carried the moved tags are gone again
    throwaways = [
        x for x in e.package("acme/app").active() if b"dev.regcollect.untag" in e.store.content[x.digest]
    ]
    assert throwaways == []


def test_a_deletion_is_restored_from_the_journal_alone(emu, run, tmp_path: Path) -> None:
    e, s = emu
    journal = tmp_path / "j.jsonl"
    r = ghcr(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes", "--journal", str(journal))
    assert r.code == 0, r.err
    gone = s.refs["tool:0.0"]
    assert gone not in active(e, "octo/tool")
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    intent = next(x for x in records if x["type"] == "intent" and x["digest"] == gone)
    assert intent["api"] == "github" and intent["version_id"] and intent["api_url"] == e.api_url
    back = run("restore", str(journal), "--yes", "--password-stdin", input=PAT + "\n")
    assert back.code == 0, back.out + back.err
    assert active(e, "octo/tool")[gone] == ["0.0"]
    again = run("restore", str(journal), "--yes", "--password-stdin", input=PAT + "\n")
    assert "0 to restore" in again.out


def test_a_version_github_refuses_is_reported_with_the_fix_and_the_rest_proceeds(emu, run) -> None:
    e, s = emu
    e.version("octo/tool", s.refs["tool:0.0"]).downloads = 6000  # public: past the 5,000 rule
    r = ghcr(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes")
    assert r.code == 1, r.out + r.err
    assert "5,000" in r.out and "GitHub Support" in r.out
    left = active(e, "octo/tool")
    assert s.refs["tool:0.0"] in left and s.refs["tool:0.1"] not in left


def test_a_secondary_rate_limit_is_waited_out(emu, run) -> None:
    e, s = emu
    e.limits.trip_after(3, retry_after=1)
    r = ghcr(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes")
    assert r.code == 0, r.out + r.err
    assert any(x.status == 403 for x in e.rest_log)
    assert list(active(e, "octo/tool")) == [s.refs["tool:0.2"]]


def test_the_primary_quota_running_out_pauses_or_stops_cleanly(emu, run) -> None:
    e, s = emu
    e.limits.exhaust("user octo", 5000, leave=3)
    r = ghcr(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes", "--max-wait", "1s")
    assert r.code == 1, r.out + r.err
    assert "quota" in r.out + r.err and "--max-wait" in r.out + r.err
    assert "Traceback" not in r.out + r.err


def test_a_warm_run_makes_no_manifest_gets(emu, run) -> None:
    e, s = emu
    cold = ghcr(run, e, *KEEP_RELEASES, "--dry-run", "-o", "json")
    assert cold.code == 0, cold.err
    assert cold.json()["stats"]["manifest_gets"] > 0
    before = e.manifest_gets()
    warm = ghcr(run, e, *KEEP_RELEASES, "--dry-run", "-o", "json")
    assert warm.json()["stats"]["manifest_gets"] == 0
    assert e.manifest_gets() == before
    assert warm.json()["summary"] == cold.json()["summary"]


def test_an_actions_token_cannot_list_packages_and_is_told_what_to_do(emu, run) -> None:
    e, _ = emu
    r = ghcr(run, e, "--repo", "acme/*", "--keep-last", "1", "--dry-run", token=ACTIONS_TOKEN)
    assert r.code == 2, r.out + r.err
    assert "name each package exactly" in r.err and ACTIONS_TOKEN not in r.out + r.err


def test_an_actions_token_without_admin_on_a_package_gets_githubs_reason(emu, run) -> None:
    e, s = emu
    r = ghcr(run, e, "--repo", "acme/team/app", "--keep-last", "1", "--yes", token=ACTIONS_TOKEN)
    assert r.code == 1, r.out + r.err
    assert "admin role on the package" in r.out
    assert len(active(e, "acme/team/app")) == 5  # nothing went
