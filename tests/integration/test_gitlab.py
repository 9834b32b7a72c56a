"""`regcollect remote` against the GitLab emulator (tests/support/gitlab): GitLab's REST API lists
and deletes tags, /v2 serves manifests. The real CLI end to end, as a GitLab CI job would run it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.gitlab import DEV_PAT, JOB_TOKEN, PAT, GitLabEmulator, Seeded, seed_demo

pytestmark = pytest.mark.integration


@pytest.fixture
def emu() -> Iterator[tuple[GitLabEmulator, Seeded]]:
    with GitLabEmulator() as e:
        yield e, seed_demo(e)


def gitlab(run: Callable[..., object], e: GitLabEmulator, *args: str, token: str | None = PAT, **kw: object):  # type: ignore[no-untyped-def]
    base = ("remote", e.registry_host, "--api", "gitlab", "--api-url", e.api_url, *args)
    if token is None:
        return run(*base, **kw)
    return run(*base, "--password-stdin", input=token + "\n", **kw)


def complete(e: GitLabEmulator, repo: str, digest: str) -> bool:
    """The manifest, every manifest it names (any depth) and every blob they name are stored."""
    r = e.repo(repo)
    stack = [digest]
    while stack:
        d = stack.pop()
        if d not in r.manifests:
            return False
        doc = json.loads(e.store.content[d])
        stack.extend(m["digest"] for m in doc.get("manifests") or [])
        blobs = [doc.get("config") or {}, *(doc.get("layers") or [])]
        if any(b.get("digest") and b["digest"] not in r.blobs for b in blobs):
            return False
    return True


RELEASES = ("--repo", "acme/app", "--keep-last", "2", "--keep-tag", "v*", "--keep-tag", "latest")


def test_kept_multi_arch_releases_and_their_signatures_survive_gitlabs_garbage_collection(emu, run) -> None:
    e, s = emu
    r = gitlab(run, e, *RELEASES, "--yes")
    assert r.code == 0, r.out + r.err
    tags = e.tags("acme/app")
    for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
        assert tags[tag] == s.refs[f"app:{tag}"]
        sig = "sha256-" + s.refs[f"app:{tag}"][7:] + ".sig"
        assert tags[sig] == s.refs[f"app:{tag}.sig"], f"{tag} lost its signature tag"
    assert tags["latest"] == tags["v1.2"] == s.refs["app:v1.2.0"]
    assert "legacy-1.0" not in tags and "bundle-1" not in tags
    assert len([t for t in tags if t.startswith("nightly-")]) == 2
    e.gc()  # GitLab's GC: what regcollect untagged goes, what it kept must stay whole
    for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
        assert complete(e, "acme/app", s.refs[f"app:{tag}"]), f"{tag} is no longer pullable whole"
    assert s.refs["app:legacy-1.0"] not in e.repo("acme/app").manifests
    assert e.bulk_requests == []  # never the asynchronous bulk API
    assert "garbage collection" in r.err + r.out


def test_one_expiring_tag_of_a_shared_image_is_deleted_and_the_image_stays(emu, run) -> None:
    e, s = emu
    shared = s.refs["worker:dev-2"]  # tagged dev-2, stable and prod
    r = gitlab(
        run, e, "--repo", "acme/app/worker", "--older-than", "5d", "--keep-tag", "prod", "--yes", "-o", "json"
    )
    assert r.code == 0, r.out + r.err
    assert e.tags("acme/app/worker") == {"prod": shared}
    assert shared in e.repo("acme/app/worker").manifests
    assert "untag" in {a["action"] for a in r.json()["actions"] if a["digest"] == shared}


def test_unpulled_for_is_refused_at_plan_time_because_gitlab_reports_no_pulls(emu, run) -> None:
    e, _ = emu
    r = gitlab(run, e, "--repo", "octo/tool", "--unpulled-for", "30d", "--dry-run")
    assert r.code == 2, r.out + r.err
    assert "last-pull" in r.err + r.out
    assert len(e.tags("octo/tool")) == 3


def test_a_dry_run_changes_nothing(emu, run) -> None:
    e, _ = emu
    before = {p: e.tags(p) for p in ("acme/app", "acme/app/worker")}
    r = gitlab(run, e, "--repo", "acme/app", "--repo", "acme/app/worker", "--keep-last", "1", "--dry-run")
    assert r.code == 0, r.out + r.err
    assert "to delete" in r.out
    assert {p: e.tags(p) for p in before} == before
    assert not [x for x in e.rest_log if x.method == "DELETE"]


def test_a_project_where_the_token_may_not_delete_fails_with_gitlabs_reason_and_the_rest_proceeds(
    emu, run
) -> None:
    e, s = emu
    r = gitlab(
        run, e, "--repo", "acme/app/worker", "--repo", "octo/tool", "--keep-last", "1", "--yes", token=DEV_PAT
    )
    assert r.code == 1, r.out + r.err
    assert "GitLab refused" in r.out and "Developer role" in r.out
    assert DEV_PAT not in r.out + r.err
    assert len(e.tags("octo/tool")) == 3  # nothing went where the token is only a Reporter
    assert list(e.tags("acme/app/worker").values()) == [s.refs["worker:dev-4"]]


def test_deleted_tags_are_restored_from_the_journal_until_gitlabs_gc_runs(emu, run, tmp_path: Path) -> None:
    e, s = emu
    journal = tmp_path / "j.jsonl"
    r = gitlab(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes", "--journal", str(journal))
    assert r.code == 0, r.out + r.err
    assert list(e.tags("octo/tool")) == ["0.2"]
    intent = next(json.loads(x) for x in journal.read_text().splitlines() if '"intent"' in x)
    assert intent["api"] == "gitlab" and intent["api_url"] == e.api_url and intent["repository_id"]
    back = run("restore", str(journal), "--yes", "--password-stdin", input=PAT + "\n")
    assert back.code == 0, back.out + back.err
    assert e.tags("octo/tool") == {f"0.{n}": s.refs[f"tool:0.{n}"] for n in range(3)}
    again = run("restore", str(journal), "--yes", "--password-stdin", input=PAT + "\n")
    assert "0 to restore" in again.out


def test_after_gitlabs_gc_a_restore_says_what_cannot_come_back(emu, run, tmp_path: Path) -> None:
    e, _ = emu
    journal = tmp_path / "j.jsonl"
    assert (
        gitlab(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes", "--journal", str(journal)).code
        == 0
    )
    assert len(e.gc()) == 2
    back = run("restore", str(journal), "--yes", "--password-stdin", input=PAT + "\n")
    assert back.code == 1, back.out + back.err
    assert "cannot restore" in back.out and "GC has run" in back.out
    assert list(e.tags("octo/tool")) == ["0.2"]


def test_a_run_waits_for_gitlabs_rate_limit_window_instead_of_failing(run) -> None:
    with GitLabEmulator(rate_limit=8, rate_window=2.0) as e:
        seed_demo(e)
        r = gitlab(run, e, "--repo", "acme/app/worker", "--keep-last", "1", "--yes", "--max-wait", "30s")
        assert r.code == 0, r.out + r.err
        assert "pausing" in r.err or e.limits.refused
        assert len(e.tags("acme/app/worker")) == 1


def test_a_rate_limit_longer_than_max_wait_stops_cleanly(run) -> None:
    with GitLabEmulator(rate_limit=8, rate_window=120.0) as e:
        seed_demo(e)
        r = gitlab(run, e, "--repo", "acme/app/worker", "--keep-last", "1", "--yes", "--max-wait", "1s")
        assert r.code == 1, r.out + r.err
        assert "--max-wait" in r.out + r.err and "Traceback" not in r.out + r.err


def test_gitlab_token_from_the_environment(emu, run) -> None:
    e, s = emu
    r = gitlab(
        run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes", token=None, env={"GITLAB_TOKEN": PAT}
    )
    assert r.code == 0, r.out + r.err
    assert list(e.tags("octo/tool")) == ["0.2"]


def test_ci_job_token_inside_gitlab_ci_works_in_its_own_project(emu, run) -> None:
    e, s = emu
    r = gitlab(
        run,
        e,
        "--repo",
        "acme/app/worker",
        "--keep-last",
        "1",
        "--yes",
        token=None,
        env={"CI_JOB_TOKEN": JOB_TOKEN},
    )
    assert r.code == 0, r.out + r.err
    assert list(e.tags("acme/app/worker").values()) == [s.refs["worker:dev-4"]]
    assert JOB_TOKEN not in r.out + r.err


def test_a_job_token_on_stdin_with_the_gitlab_ci_token_user(emu, run) -> None:
    e, s = emu
    r = gitlab(
        run,
        e,
        "--repo",
        "acme/app/worker",
        "--keep-last",
        "1",
        "--dry-run",
        "-u",
        "gitlab-ci-token",
        token=JOB_TOKEN,
    )
    assert r.code == 0, r.out + r.err
    assert "to delete" in r.out


def test_no_token_at_all_is_a_usage_error_that_names_every_way_to_give_one(emu, run) -> None:
    e, _ = emu
    r = gitlab(run, e, "--repo", "octo/tool", "--keep-last", "1", "--dry-run", token=None)
    assert r.code == 2, r.out + r.err
    assert "GITLAB_TOKEN" in r.err and "CI_JOB_TOKEN" in r.err


def test_a_wrong_token_is_an_auth_error_without_the_token_in_output(emu, run) -> None:
    e, _ = emu
    bad = "glpat-wrong0000000000000000"
    r = gitlab(run, e, "--repo", "octo/tool", "--keep-last", "1", "--dry-run", token=bad)
    assert r.code not in (0, 1), r.out + r.err
    assert bad not in r.out + r.err and "Traceback" not in r.out + r.err


def test_a_listing_paged_only_by_x_next_page_is_read_whole(run) -> None:
    with GitLabEmulator(link_header=False) as e:
        seed_demo(e)
        r = gitlab(run, e, "--repo", "acme/platform/many", "--keep-last", "200", "--dry-run", "-o", "json")
        assert r.code == 0, r.out + r.err
        assert r.json()["summary"]["artifacts"] == 130


def test_a_warm_run_reads_no_tag_details_and_plans_the_same(emu, run) -> None:
    e, _ = emu
    cold = gitlab(run, e, *RELEASES, "--dry-run", "-o", "json")
    assert cold.code == 0, cold.err
    details = e.detail_requests()
    assert details == len(e.tags("acme/app"))  # one request per tag, once
    warm = gitlab(run, e, *RELEASES, "--dry-run", "-o", "json")
    assert e.detail_requests() == details
    assert warm.json()["summary"] == cold.json()["summary"]


def test_where_the_tag_list_carries_digests_no_detail_is_requested(run) -> None:
    with GitLabEmulator(list_details=True) as e:
        seed_demo(e)
        r = gitlab(run, e, *RELEASES, "--dry-run")
        assert r.code == 0, r.out + r.err
        assert e.detail_requests() == 0


def test_a_tag_gitlab_fails_to_delete_is_reported_and_the_others_go(run) -> None:
    with GitLabEmulator(fail_delete_after=1) as e:
        s = seed_demo(e)
        r = gitlab(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes")
        assert r.code == 1, r.out + r.err
        assert "500" in r.out and "1 failed" in r.out
        assert len(e.tags("octo/tool")) == 2 and e.tags("octo/tool")["0.2"] == s.refs["tool:0.2"]
