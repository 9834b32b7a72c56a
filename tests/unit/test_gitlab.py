"""GitLab backend pieces at narrow seams: the page reader (Link or X-Next-Page, with guards),
where the token comes from, the rate-limit pause, and the tag delete that leaves moved tags."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from regcollect.errors import UsageError
from regcollect.registry.gitlab import GitLabApi
from regcollect.registry.gitlab_rest import GitLabRest, GitLabToken, gitlab_token
from regcollect.registry.http import IncompleteListing

TOKEN = GitLabToken("PRIVATE-TOKEN", "glpat-secret", "regcollect", "test")


def rest(handler: Any) -> GitLabRest:
    return GitLabRest("https://gitlab.example", "/api/v4", TOKEN, transport=httpx.MockTransport(handler))


def pages_of(handler: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        async with rest(handler) as r:
            return await r.pages("/things?per_page=2", "listing things", key=lambda x: x.get("id"))

    return asyncio.run(go())


def by_next_page(total: int, *, link: bool = False, next_of: Any = None) -> Any:
    def handler(req: httpx.Request) -> httpx.Response:
        assert req.headers["PRIVATE-TOKEN"] == "glpat-secret"
        page = int(req.url.params.get("page", "1"))
        items = [{"id": i} for i in range(total)][(page - 1) * 2 : page * 2]
        nxt = next_of(page) if next_of else (str(page + 1) if page * 2 < total else "")
        headers = {"X-Next-Page": nxt}
        if link and nxt:
            headers = {"Link": f'<https://gitlab.example/api/v4/things?per_page=2&page={nxt}>; rel="next"'}
        return httpx.Response(200, json=items, headers=headers)

    return handler


def test_a_listing_paged_only_by_x_next_page_is_read_to_its_end() -> None:
    assert [x["id"] for x in pages_of(by_next_page(5))] == [0, 1, 2, 3, 4]


def test_a_listing_paged_only_by_link_is_read_to_its_end() -> None:
    assert len(pages_of(by_next_page(5, link=True))) == 5


def test_a_next_page_that_repeats_is_an_incomplete_listing_not_a_short_one() -> None:
    with pytest.raises(IncompleteListing, match="repeats|nothing new"):
        pages_of(by_next_page(6, next_of=lambda page: "2"))


def test_a_next_page_that_is_not_a_number_is_an_incomplete_listing() -> None:
    with pytest.raises(IncompleteListing, match="not a page number"):
        pages_of(by_next_page(6, next_of=lambda page: "two"))


def test_the_token_comes_from_stdin_then_gitlab_token_then_ci_job_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-env")
    monkeypatch.setenv("CI_JOB_TOKEN", "job")
    assert gitlab_token("registry.gitlab.com", None, "glpat-stdin").value == "glpat-stdin"
    t = gitlab_token("registry.gitlab.com", None, None)
    assert (t.header, t.value) == ("PRIVATE-TOKEN", "glpat-env")
    monkeypatch.delenv("GITLAB_TOKEN")
    t = gitlab_token("registry.gitlab.com", None, None)
    assert (t.header, t.registry_user) == ("JOB-TOKEN", "gitlab-ci-token")
    assert "job" not in repr(t)
    t = gitlab_token("registry.gitlab.com", "gitlab-ci-token", "job-on-stdin")
    assert t.header == "JOB-TOKEN"


def test_no_token_anywhere_names_every_way_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    monkeypatch.delenv("CI_JOB_TOKEN", raising=False)
    with pytest.raises(UsageError, match=r"--password-stdin.*GITLAB_TOKEN.*CI_JOB_TOKEN"):
        gitlab_token("registry.gitlab.com", None, None)


class FakeClient:
    """The /v2 side where the delete checks each tag: tag -> digest it points at now."""

    def __init__(self, tags: dict[str, str]):
        self.tags = tags
        self.host = "registry.example"
        self.dropped: dict[str, list[str]] = {}

    async def head_manifest(self, repo: str, ref: str) -> str | None:
        return self.tags.get(ref)

    async def aclose(self) -> None:
        pass


def test_deleting_an_image_leaves_a_tag_that_moved_onto_other_content_meanwhile() -> None:
    deleted: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        assert req.method == "DELETE"
        deleted.append(req.url.path.rsplit("/", 1)[1])
        return httpx.Response(200)

    api = GitLabApi(FakeClient({"old": "sha256:" + "a" * 64, "moved": "sha256:" + "b" * 64}), rest(handler))  # type: ignore[arg-type]
    api._where["acme/app"] = (1, 2)
    gone = asyncio.run(api.delete("acme/app", "sha256:" + "a" * 64, None, ("old", "moved")))
    assert gone and deleted == ["old"]


def test_concurrent_requests_share_one_pause_for_the_rate_limit_window() -> None:
    notes: list[str] = []
    api = GitLabApi(FakeClient({}), rest(lambda r: httpx.Response(200)), say=notes.append, max_wait=10)  # type: ignore[arg-type]
    api.rest.rate.remaining, api.rest.rate.reset = 1, time.time() - 0.5

    async def go() -> None:
        await asyncio.gather(*(api.rest._pace("GET") for _ in range(8)))

    asyncio.run(go())
    assert len(notes) == 1, notes
