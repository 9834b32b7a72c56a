"""`regcollect remote` against the Docker Hub emulator (tests/support/dockerhub): the Hub API lists
tags with digests and pull times and deletes tags, /v2 serves and deletes manifests. The real CLI
end to end, as a CI job would run it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.dockerhub import OAT, PASSWORD, PAT, READ_PAT, HubEmulator, seed_demo
from tests.support.ghcr.demo import Seeded

pytestmark = pytest.mark.integration


@pytest.fixture
def hub() -> Iterator[tuple[HubEmulator, Seeded]]:
    with HubEmulator() as e:
        yield e, seed_demo(e)


def remote(run: Callable[..., object], e: HubEmulator, *args: str, user: str = "octo", secret: str = PAT):  # type: ignore[no-untyped-def]
    return run(
        "remote",
        e.registry_host,
        "--api",
        "dockerhub",
        "--api-url",
        e.api_url,
        *args,
        "-u",
        user,
        "--password-stdin",
        input=secret + "\n",
    )


def reaches(e: HubEmulator, digest: str) -> set[str]:
    out, stack = set(), [digest]
    while stack:
        doc = json.loads(e.store.content[stack.pop()])
        for m in doc.get("manifests") or []:
            if m["digest"] not in out:
                out.add(m["digest"])
                stack.append(m["digest"])
    return out


KEEP = ("--repo", "acme/app", "--keep-last", "2", "--keep-tag", "v*", "--keep-tag", "latest")


def test_keep_last_deletes_tags_then_manifests_and_kept_images_pull_whole(hub, run) -> None:
    e, s = hub
    r = remote(run, e, *KEEP, "--yes", "-o", "json")
    assert r.code == 0, r.out + r.err
    tags, stored = e.tags("acme/app"), e.stored("acme/app")
    for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
        index = s.refs[f"app:{tag}"]
        assert tags[tag] == index
        assert reaches(e, index) <= set(stored), f"{tag} lost a platform or attestation"
        assert s.refs[f"app:{tag}.sig"] in stored
    for n in range(4):  # nightly-4 and -5 are the two most recent
        gone = s.refs[f"app:nightly-{n}"]
        assert f"nightly-{n}" not in tags and gone not in stored
        assert not reaches(e, gone) & set(stored), "an old nightly's platform manifests stayed"
    assert {f"nightly-{n}" for n in (4, 5)} <= set(tags)
    # tags went through the Hub API, manifests through the Registry API
    assert any(x.method == "DELETE" and "/tags/nightly-0/" in x.path for x in e.rest_log)
    assert any(x.method == "DELETE" and x.status == 202 for x in e.registry_log)


def test_a_cold_run_reads_each_manifest_once_and_a_warm_run_none(hub, run) -> None:
    e, _ = hub
    cold = remote(run, e, *KEEP, "--dry-run", "-o", "json")
    assert cold.code == 0, cold.err
    pulls = {d: m.pulls for d, m in e.stored("acme/app").items()}
    assert max(pulls.values()) == 1, "a manifest was pulled twice in one run"
    assert not any(
        x.method == "GET" and "/manifests/" in x.path and "sha256:" not in x.path for x in e.registry_log
    )
    before = e.manifest_gets()
    warm = remote(run, e, *KEEP, "--dry-run", "-o", "json")
    assert warm.json()["stats"]["manifest_gets"] == 0 and e.manifest_gets() == before
    assert warm.json()["summary"] == cold.json()["summary"]


def test_dry_run_changes_nothing(hub, run) -> None:
    e, _ = hub
    tags, stored = e.tags("acme/app"), set(e.stored("acme/app"))
    r = remote(run, e, *KEEP, "--dry-run")
    assert r.code == 0, r.err
    assert "Dry run: nothing was changed" in r.out
    assert e.tags("acme/app") == tags and set(e.stored("acme/app")) == stored
    assert not [
        x
        for x in e.rest_log + e.registry_log
        if x.method in ("DELETE", "PUT", "POST") and x.path != "/v2/auth/token"
    ]


def test_one_expiring_tag_of_a_shared_digest_is_untagged_and_the_digest_stays(hub, run) -> None:
    e, s = hub
    release = s.refs["app:v1.2.0"]  # v1.2.0, v1.2 and latest
    r = remote(
        run, e, "--repo", "acme/app", "--older-than", "5d", "--keep-tag", "latest", "--keep-tag", "v1.[01].*",
        "--keep-tag", "nightly-*", "--keep-tag", "legacy-*", "--keep-tag", "sha256-*", "--yes", "-o", "json",
    )  # fmt: skip
    assert r.code == 0, r.out + r.err
    tags = e.tags("acme/app")
    assert tags["latest"] == release and "v1.2.0" not in tags and "v1.2" not in tags
    assert release in e.stored("acme/app") and reaches(e, release) <= set(e.stored("acme/app"))
    assert {a["action"] for a in r.json()["actions"] if a["digest"] == release} == {"untag"}
    assert not [x for x in e.registry_log if x.method == "PUT"], "untag pushed a throwaway"


def test_unpulled_for_keeps_what_is_still_pulled_and_shows_the_last_pull(hub, run) -> None:
    e, s = hub
    r = remote(
        run, e, "--repo", "acme/app", "--older-than", "30d", "--unpulled-for", "30d",
        "--keep-tag", "sha256-*", "--dry-run", "-o", "json",
    )  # fmt: skip
    assert r.code == 0, r.out + r.err
    actions = {a["digest"]: a for a in r.json()["actions"]}
    assert s.refs["app:v1.0.0"] not in actions or actions[s.refs["app:v1.0.0"]]["action"] == "keep"
    assert actions[s.refs["app:v1.1.0"]]["action"] == "delete"  # last pulled 45 days ago
    text = remote(
        run, e, "--repo", "acme/app", "--older-than", "30d", "--unpulled-for", "30d",
        "--keep-tag", "sha256-*", "--dry-run",
    )  # fmt: skip
    assert "last pull" in text.out and "pulled" in text.out


def test_a_hub_that_refuses_manifest_delete_loses_the_tags_and_says_what_stayed(run) -> None:
    with HubEmulator(manifest_delete=405) as e:
        s = seed_demo(e)
        r = remote(
            run,
            e,
            "--repo",
            "acme/app",
            "--keep-last",
            "5",
            "--keep-tag",
            "v*",
            "--keep-tag",
            "latest",
            "--yes",
        )
        assert r.code == 1, r.out + r.err
        assert "nightly-0" not in e.tags("acme/app")
        assert s.refs["app:nightly-0"] in e.stored("acme/app")  # stays, untagged
        assert (
            "refused the Registry API's DELETE" in r.out + r.err and "stay stored untagged" in r.out + r.err
        )
        assert "Traceback" not in r.out + r.err


def test_deleted_tags_are_restored_from_the_journal_while_the_layers_exist(hub, run, tmp_path: Path) -> None:
    e, s = hub
    journal = tmp_path / "j.jsonl"
    r = remote(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes", "--journal", str(journal))
    assert r.code == 0, r.out + r.err
    assert set(e.tags("octo/tool")) == {"0.2"}
    back = run("restore", str(journal), "--yes", "-u", "octo", "--password-stdin", input=PAT + "\n")
    assert back.code == 0, back.out + back.err
    assert e.tags("octo/tool") == {f"0.{n}": s.refs[f"tool:0.{n}"] for n in range(3)}
    again = run("restore", str(journal), "--yes", "-u", "octo", "--password-stdin", input=PAT + "\n")
    assert "0 to restore" in again.out


def test_what_the_hub_purged_cannot_come_back_and_restore_says_so(hub, run, tmp_path: Path) -> None:
    e, _ = hub
    journal = tmp_path / "j.jsonl"
    assert (
        remote(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes", "--journal", str(journal)).code
        == 0
    )
    assert e.store.purge() > 0
    back = run("restore", str(journal), "--yes", "-u", "octo", "--password-stdin", input=PAT + "\n")
    assert back.code == 1 and "cannot restore" in back.out and "gone" in back.out


def test_a_rate_limited_hub_api_is_waited_out(hub, run) -> None:
    e, _ = hub
    e.trip_after(2, retry_in=1)
    r = remote(run, e, "--repo", "acme/many", "--keep-last", "100", "--yes")
    assert r.code == 0, r.out + r.err
    assert any(x.status == 429 for x in e.rest_log)
    assert len(e.tags("acme/many")) == 100  # two pages of tags read, 30 deleted


def test_a_jwt_that_expires_mid_run_is_renewed(hub, run) -> None:
    e, _ = hub
    e.expire_jwts_after(3)
    r = remote(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes")
    assert r.code == 0, r.out + r.err
    assert any(x.status == 401 for x in e.rest_log)
    assert sum(1 for x in e.rest_log if x.path == "/v2/auth/token") >= 2
    assert set(e.tags("octo/tool")) == {"0.2"}


@pytest.mark.parametrize(
    ("user", "secret"),
    [("octo", PASSWORD), ("octo", PAT), ("acme", OAT)],
    ids=["password", "pat", "org-token"],
)
def test_each_credential_form_lists_and_deletes_and_never_shows_the_secret(hub, run, user, secret) -> None:
    e, _ = hub
    r = remote(run, e, "--repo", "acme/many", "--keep-last", "120", "--yes", "-v", user=user, secret=secret)
    assert r.code == 0, r.out + r.err
    assert len(e.tags("acme/many")) == 120
    assert secret not in r.out + r.err


def test_credentials_from_the_docker_config(hub, run, tmp_path: Path) -> None:
    e, _ = hub
    import base64

    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    auth = base64.b64encode(f"octo:{PAT}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {e.registry_host: {"auth": auth}}}))
    r = run("remote", e.registry_host, "--api", "dockerhub", "--api-url", e.api_url, "--repo", "octo/tool",
            "--keep-last", "2", "--yes")  # fmt: skip
    assert r.code == 0, r.out + r.err
    assert set(e.tags("octo/tool")) == {"0.1", "0.2"}


def test_a_read_only_token_stops_the_run_with_the_fix_and_nothing_goes(hub, run) -> None:
    e, _ = hub
    r = remote(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes", secret=READ_PAT)
    assert r.code == 3, r.out + r.err
    assert "Read, Write, Delete" in r.out + r.err and READ_PAT not in r.out + r.err
    assert len(e.tags("octo/tool")) == 3


def test_a_wrong_secret_is_refused_at_login_without_echoing_it(hub, run) -> None:
    e, _ = hub
    r = remote(run, e, "--repo", "octo/tool", "--keep-last", "1", "--dry-run", secret="dckr_pat_wrong000000")
    assert r.code == 3, r.out + r.err
    assert "dckr_pat_wrong000000" not in r.out + r.err
    assert "refused user 'octo'" in r.err


def test_a_hub_that_drops_the_manifest_with_its_last_tag_counts_the_image_deleted(run) -> None:
    with HubEmulator(untag_deletes_manifest=True) as e:
        s = seed_demo(e)
        r = remote(run, e, "--repo", "octo/tool", "--keep-last", "1", "--yes", "-o", "json")
        assert r.code == 0, r.out + r.err
        assert set(e.stored("octo/tool")) == {s.refs["tool:0.2"]}
        assert r.json()["outcome"]["done"] == 2 and r.json()["outcome"]["failed"] == 0
