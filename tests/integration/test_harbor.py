"""`regcollect remote` against the Harbor emulator (tests/support/harbor): Harbor's REST API lists
and deletes, /v2 serves manifests. The real CLI end to end, as a CI job would run it."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.ghcr.demo import Seeded
from tests.support.harbor import ADMIN, DEVELOPER, ROBOT, SYSTEM_ROBOT, HarborEmulator, seed_demo

pytestmark = pytest.mark.integration


@pytest.fixture
def emu() -> Iterator[tuple[HarborEmulator, Seeded]]:
    with HarborEmulator() as e:
        yield e, seed_demo(e)


def harbor(run: Callable[..., object], e: HarborEmulator, *args: str, account: tuple[str, str] = ROBOT):  # type: ignore[no-untyped-def]
    """No --api-url: the REST base defaults to <registry>/api/v2.0."""
    user, secret = account
    return run(
        "remote", e.host, "--api", "harbor", *args, "-u", user, "--password-stdin", input=secret + "\n"
    )


def reaches(e: HarborEmulator, digest: str) -> set[str]:
    out, stack = set(), [digest]
    while stack:
        for m in json.loads(e.store.content[stack.pop()]).get("manifests") or []:
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


def test_kept_multi_arch_images_stay_whole_with_signatures_and_the_rest_goes(emu, run) -> None:
    e, s = emu
    r = harbor(run, e, *KEEP_RELEASES, "--yes")
    assert r.code == 0, r.out + r.err
    left = e.digests("acme/app")
    for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
        index = s.refs[f"app:{tag}"]
        assert index in left and reaches(e, index) <= set(left), f"{tag} lost a child"
        assert s.refs[f"app:{tag}.sig"] in left, f"{tag} lost its signature"
    assert s.refs["app:v1.2.0/referrer"] in left
    assert s.refs["app:orphan"] not in left and s.refs["app:nightly-00"] not in left
    assert not e.requests("PUT", "/manifests/"), "nothing is pushed: Harbor deletes and untags by API"
    assert "garbage collection" in r.out + r.err


def test_one_expiring_tag_of_a_shared_artifact_is_deleted_with_the_tag_endpoint(emu, run) -> None:
    e, s = emu
    shared = s.refs["team/app:dev-2"]  # tagged dev-2, stable and prod
    r = harbor(
        run, e, "--repo", "acme/team/app", "--older-than", "1d", "--keep-tag", "prod", "--yes", "-o", "json"
    )
    assert r.code == 0, r.out + r.err
    assert e.digests("acme/team/app") == {shared: ["prod"]}
    assert "untag" in {a["action"] for a in r.json()["actions"] if a["digest"] == shared}
    tag_deletes = e.requests("DELETE", "/tags/")
    assert len(tag_deletes) == 2 and all("/repositories/team%252Fapp/" in x.path for x in tag_deletes)
    assert not e.requests("PUT", "/manifests/"), "a real untag: no throwaway manifest"


def test_unpulled_for_keeps_what_harbor_saw_pulled_and_shows_the_pull_time(emu, run) -> None:
    e, s = emu
    r = harbor(
        run,
        e,
        "--repo",
        "acme/app",
        "--older-than",
        "45d",
        "--unpulled-for",
        "30d",
        "--dry-run",
        "-o",
        "json",
    )
    assert r.code == 0, r.out + r.err
    by = {a["digest"]: a for a in r.json()["actions"]}
    assert by[s.refs["app:v1.1.0"]]["action"] == "delete"  # 60 days old, never pulled
    assert "never pulled" in by[s.refs["app:v1.1.0"]]["reason"]
    assert by[s.refs["app:v1.0.0"]]["action"] == "keep"  # 90 days old, pulled 2 days ago
    assert "pulled" in by[s.refs["app:v1.0.0"]]["reason"]


def test_a_dry_run_changes_nothing(emu, run) -> None:
    e, _ = emu
    before = {r: e.digests(r) for r in ("acme/app", "acme/team/app", "acme/many")}
    r = harbor(run, e, "--repo", "acme/*", "--keep-last", "1", "--untagged", "--dry-run")
    assert r.code == 0, r.out + r.err
    assert {r: e.digests(r) for r in before} == before
    assert not [x for x in e.log if x.method in ("DELETE", "PUT", "POST", "PATCH")]


def test_an_immutable_tag_fails_its_item_with_harbors_reason_and_the_rest_proceeds(emu, run) -> None:
    e, s = emu
    e.immutable["pub"] = ["0.0"]
    r = harbor(run, e, "--repo", "pub/tool", "--keep-last", "1", "--yes", account=SYSTEM_ROBOT)
    assert r.code == 1, r.out + r.err
    assert "immutable" in r.out and "tag immutability rule" in r.out
    assert set(e.digests("pub/tool")) == {s.refs["tool:0.0"], s.refs["tool:0.2"]}


def test_an_account_without_delete_permission_stops_before_deleting_with_the_fix(emu, run) -> None:
    e, _ = emu
    r = harbor(run, e, "--repo", "acme/team/app", "--keep-last", "1", "--yes", account=DEVELOPER)
    assert r.code != 0, r.out + r.err
    assert "delete permission" in r.out + r.err and DEVELOPER[1] not in r.out + r.err
    assert len(e.digests("acme/team/app")) == 5


def restore(run: Callable[..., object], journal: Path):  # type: ignore[no-untyped-def]
    return run("restore", str(journal), "--yes", "-u", ROBOT[0], "--password-stdin", input=ROBOT[1] + "\n")


def test_a_deletion_is_restored_from_the_journal_by_pushing_it_back(emu, run, tmp_path: Path) -> None:
    e, s = emu
    journal = tmp_path / "j.jsonl"
    r = harbor(run, e, *KEEP_RELEASES, "--keep-tag", "bundle-*", "--yes", "--journal", str(journal))
    assert r.code == 0, r.out + r.err
    gone = s.refs["app:nightly-00"]
    children = reaches(e, gone)
    assert gone not in e.digests("acme/app") and not children & set(e.digests("acme/app"))
    intent = next(json.loads(x) for x in journal.read_text().splitlines() if gone in x and '"intent"' in x)
    assert intent["api"] == "harbor" and intent["api_url"] == e.api_url
    back = restore(run, journal)
    assert back.code == 0, back.out + back.err
    left = e.digests("acme/app")
    assert gone in left and children <= set(left)
    assert e.artifact("acme/app", gone).tags  # its nightly tag is back
    assert "0 to restore" in restore(run, journal).out


def test_a_nested_index_is_restored_after_the_index_it_names(run, tmp_path: Path) -> None:
    with HarborEmulator() as e:
        for hours in range(48):  # content whose outer index sorts first, so the order matters
            e.store.projects.clear()
            s = seed_demo(e, e.now() - dt.timedelta(hours=hours))
            if s.refs["app:bundle-1"] < s.refs["app:bundle-1/inner"]:
                break
        journal = tmp_path / "j.jsonl"
        keep = ("--keep-tag", "v*", "--keep-tag", "latest", "--keep-tag", "nightly-*", "--keep-last", "0")
        r = harbor(run, e, "--repo", "acme/app", *keep, "--untagged", "--yes", "--journal", str(journal))
        assert r.code == 0, r.out + r.err
        assert s.refs["app:bundle-1"] not in e.digests("acme/app")
        back = restore(run, journal)
        assert back.code == 0, back.out + back.err


def test_a_rate_limited_request_is_waited_out(emu, run) -> None:
    e, s = emu
    e.trip_after(2, retry_after=1)
    r = harbor(run, e, "--repo", "pub/tool", "--keep-last", "1", "--yes", account=SYSTEM_ROBOT)
    assert r.code == 0, r.out + r.err
    assert e.refusals == 1 and any(x.status == 429 for x in e.log)
    assert list(e.digests("pub/tool")) == [s.refs["tool:0.2"]]


def test_a_robot_account_from_the_docker_config_keeps_its_dollar_sign(emu, run, tmp_path: Path) -> None:
    e, s = emu
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{ROBOT[0]}:{ROBOT[1]}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {e.host: {"auth": auth}}}))
    r = run("remote", e.host, "--api", "harbor", "--repo", "acme/team/app", "--keep-last", "4", "--yes")
    assert r.code == 0, r.out + r.err
    assert s.refs["team/app:dev-0"] not in e.digests("acme/team/app")
    assert ROBOT[1] not in r.out + r.err


def test_a_robot_name_whose_dollar_the_shell_expanded_is_named_in_the_error(emu, run) -> None:
    e, _ = emu
    r = harbor(run, e, "--repo", "acme/app", "--keep-last", "1", "--dry-run", account=("robot+ci", ROBOT[1]))
    assert r.code != 0
    assert "quote the name" in r.out + r.err and ROBOT[1] not in r.out + r.err
    assert "Traceback" not in r.out + r.err


def test_an_admin_user_lists_projects_by_pattern(emu, run) -> None:
    e, _ = emu
    r = harbor(run, e, "--repo", "*/tool", "--keep-last", "5", "--dry-run", "-o", "json", account=ADMIN)
    assert r.code == 0, r.out + r.err
    assert {a["repository"] for a in r.json()["actions"]} == {"pub/tool"}
