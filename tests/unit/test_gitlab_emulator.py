"""The GitLab emulator answers as hosted-registries.md section 3 says GitLab does, and each
"unconfirmed" switch changes what it answers: the backend's tests are only as good as this."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.gitlab import DEV_PAT, JOB_TOKEN, PAT, READ_PAT, GitLabEmulator, Seeded, seed_demo


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[GitLabEmulator, Seeded]]:
    """Read-only tests share one seeded emulator."""
    with GitLabEmulator() as e:
        yield e, seed_demo(e)


def fresh(**switches: Any) -> GitLabEmulator:
    e = GitLabEmulator(**switches)
    e.__enter__()
    seed_demo(e)
    return e


def get(e: GitLabEmulator, path: str, token: str | None = PAT, **kw: Any) -> httpx.Response:
    headers = {"PRIVATE-TOKEN": token} if token else {}
    return httpx.get(e.api_url + path, headers=headers, **kw)


def ids(e: GitLabEmulator, repo: str) -> tuple[int, int]:
    r = e.repo(repo)
    return r.project.id, r.id


def test_tags_page_by_20_with_x_next_page_and_link_and_at_most_100(shared) -> None:
    e, _ = shared
    pid, rid = ids(e, "acme/platform/many")
    first = get(e, f"/projects/{pid}/registry/repositories/{rid}/tags")
    assert len(first.json()) == 20 and first.headers["X-Next-Page"] == "2"
    assert first.headers["X-Total"] == "130" and 'rel="next"' in first.headers["Link"]
    big = get(e, f"/projects/{pid}/registry/repositories/{rid}/tags", params={"per_page": 500, "page": 2})
    assert (
        len(big.json()) == 30 and big.headers["X-Next-Page"] == "" and 'rel="next"' not in big.headers["Link"]
    )
    assert set(first.json()[0]) == {"name", "path", "location"}  # no digest, no time in the list


def test_tag_details_give_digest_time_and_size_one_tag_per_request(shared) -> None:
    e, s = shared
    pid, rid = ids(e, "acme/app/worker")
    doc = get(e, f"/projects/{pid}/registry/repositories/{rid}/tags/prod").json()
    assert doc["digest"] == s.refs["worker:dev-2"] and doc["created_at"] and doc["total_size"] > 0
    assert len(doc["revision"]) == 64 and doc["short_revision"] == doc["revision"][:9]


def test_projects_by_encoded_path_or_id_and_groups_with_their_subgroups(shared) -> None:
    e, _ = shared
    by_path = get(e, "/projects/acme%2Fapp/registry/repositories").json()
    assert [r["path"] for r in by_path] == ["acme/app", "acme/app/worker"]
    assert by_path[1]["name"] == "worker" and by_path[0]["name"] == ""
    assert get(e, f"/projects/{by_path[0]['project_id']}/registry/repositories").json() == by_path
    group = [r["path"] for r in get(e, "/groups/acme/registry/repositories").json()]
    assert group == ["acme/app", "acme/app/worker", "acme/platform/many"]
    assert get(e, "/projects/acme%2Fnope/registry/repositories").status_code == 404


def test_tokens_and_roles_401_unknown_404_unreadable_403_not_allowed_to_delete(shared) -> None:
    e, _ = shared
    assert get(e, "/projects/acme%2Fapp/registry/repositories", token="nope").status_code == 401
    assert get(e, "/projects/acme%2Fapp/registry/repositories", token=None).status_code == 404
    assert get(e, "/projects/octo%2Ftool/registry/repositories", token=None).status_code == 200  # public
    assert get(e, "/projects/acme%2Fapp/registry/repositories", token=READ_PAT).status_code == 200
    pid, rid = ids(e, "octo/tool")
    for token in (READ_PAT, DEV_PAT):
        r = httpx.delete(
            f"{e.api_url}/projects/{pid}/registry/repositories/{rid}/tags/0.0",
            headers={"PRIVATE-TOKEN": token},
        )
        assert r.status_code == 403 and r.json() == {"message": "403 Forbidden"}
    job = httpx.get(
        f"{e.api_url}/projects/acme%2Fapp/registry/repositories", headers={"JOB-TOKEN": JOB_TOKEN}
    )
    assert job.status_code == 200


def test_deleting_a_tag_is_synchronous_and_the_manifest_stays_until_gc() -> None:
    e = fresh()
    try:
        pid, rid = ids(e, "acme/app/worker")
        digest = e.tags("acme/app/worker")["stable"]
        r = httpx.delete(
            f"{e.api_url}/projects/{pid}/registry/repositories/{rid}/tags/stable",
            headers={"PRIVATE-TOKEN": PAT},
        )
        assert r.status_code == 200 and "stable" not in e.tags("acme/app/worker")
        assert e.tags("acme/app/worker")["prod"] == digest  # the other tags stay
        for t in ("dev-0",):
            httpx.delete(
                f"{e.api_url}/projects/{pid}/registry/repositories/{rid}/tags/{t}",
                headers={"PRIVATE-TOKEN": PAT},
            )
        untagged = e.repo("acme/app/worker").manifests
        assert len(untagged) == 5
        assert len(e.gc()) == 1 and len(untagged) == 4
    finally:
        e.__exit__()


def test_gc_keeps_what_a_tagged_index_names_and_drops_an_untagged_index_with_its_children() -> None:
    e = fresh()
    try:
        repo = e.repo("acme/app")
        before = len(repo.manifests)
        del repo.tag_map["legacy-1.0"]
        gone = e.gc()
        assert len(gone) == 3 and len(repo.manifests) == before - 3  # the list and its two children
    finally:
        e.__exit__()


def test_bulk_delete_is_accepted_then_refused_within_the_hour() -> None:
    e = fresh()
    try:
        pid, rid = ids(e, "acme/app/worker")
        url = f"{e.api_url}/projects/{pid}/registry/repositories/{rid}/tags"
        params = {"name_regex_delete": ".*", "keep_n": "1"}
        assert httpx.delete(url, params=params, headers={"PRIVATE-TOKEN": PAT}).status_code == 202
        again = httpx.delete(url, params=params, headers={"PRIVATE-TOKEN": PAT})
        assert again.status_code == 400 and "once an hour" in again.json()["message"]
        assert len(e.tags("acme/app/worker")) == 7  # asynchronous: nothing happened yet
    finally:
        e.__exit__()


def test_the_registry_token_flow_takes_a_job_token_only_with_gitlab_ci_token(shared) -> None:
    e, _ = shared
    params = {"service": "container_registry", "scope": "repository:acme/app:pull"}
    challenge = httpx.get(f"{e.registry_url}/v2/acme/app/tags/list").headers["WWW-Authenticate"]
    assert f'realm="{e.gitlab_url}/jwt/auth"' in challenge and 'service="container_registry"' in challenge
    assert (
        httpx.get(f"{e.gitlab_url}/jwt/auth", params=params, auth=("someone", JOB_TOKEN)).status_code == 401
    )
    ok = httpx.get(f"{e.gitlab_url}/jwt/auth", params=params, auth=("gitlab-ci-token", JOB_TOKEN))
    assert ok.status_code == 200 and ok.json()["expires_in"] == 300
    assert httpx.get(f"{e.gitlab_url}/jwt/auth", params=params, auth=("anyone", PAT)).status_code == 200


def test_switches_change_the_answers() -> None:
    e = fresh(
        list_details=True,
        created_at_source="config",
        link_header=False,
        group_includes_subgroups=False,
        registry_checks_username=True,
        rate_limit=3,
        rate_window=60,
    )
    try:
        pid, rid = ids(e, "acme/app")
        listed = get(e, f"/projects/{pid}/registry/repositories/{rid}/tags")
        assert "Link" not in listed.headers and listed.json()[0]["digest"].startswith("sha256:")
        latest = get(e, f"/projects/{pid}/registry/repositories/{rid}/tags/latest").json()
        assert latest["created_at"] is None  # an index has no config
        assert [r["path"] for r in get(e, "/groups/acme/registry/repositories").json()] == [
            "acme/app",
            "acme/app/worker",
        ]
        refused = get(e, f"/projects/{pid}/registry/repositories")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["RateLimit-Remaining"] == "0"
        params = {"service": "container_registry", "scope": "repository:acme/app:pull"}
        assert httpx.get(f"{e.gitlab_url}/jwt/auth", params=params, auth=("anyone", PAT)).status_code == 401
        assert httpx.get(f"{e.gitlab_url}/jwt/auth", params=params, auth=("octo", PAT)).status_code == 200
    finally:
        e.__exit__()
