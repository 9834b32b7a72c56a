"""GitLab container registry: listed and untagged through GitLab's REST API, read through /v2.

A registry path (group/project[/name]) is one of a project's registry repositories, found by id
through the API. Listing tags gives names only: digest and created_at cost one request per tag,
so they are fetched concurrently and kept in the fact cache by tag and digest; a tag seen before
is checked with one HEAD on /v2 and its details are reused while its digest is unchanged.
GitLab deletes tags, not manifests: deleting an image removes every tag the plan saw on it (each
checked to still point at it first), and the untagged manifest stays stored until GitLab's own
garbage collection removes it; untagged manifests are never listed, so they are neither seen
nor deleted here. The bulk regex DELETE is not used: it runs later in a background job, at most
once an hour per repository, with its own ordering and `latest` rule, so it cannot carry out a
reviewed plan. Facts: docs/gitlab.md and hosted-registries.md section 3.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from regcollect.cache import FactCache
from regcollect.errors import AuthError, NotFound, RegistryError, UsageError
from regcollect.globs import has_wildcard, repo_matches
from regcollect.registry.api import Listing, Version
from regcollect.registry.auth import Credentials
from regcollect.registry.client import RegistryClient, base_url, is_digest, valid_repository, valid_tag
from regcollect.registry.gitlab_rest import DEFAULT_API, GitLabRest, gitlab_token
from regcollect.registry.opening import api_origin, registry_client, rest_settings
from regcollect.units import parse_time

TOKEN_FIX = (
    "deleting tags needs a personal, project or group access token with the api scope and at "
    "least the Developer role on the project (a CI job token: its own project only)"
)


class GitLabApi:
    kind = "gitlab"
    pull_times = False  # GitLab's API reports no pulls
    tag_delete = True  # DELETE .../tags/:name removes one tag; other tags and the manifest stay
    gc_note = (
        "GitLab deletes tags, not images: an image whose last tag went stays stored, untagged, "
        "until GitLab's garbage collection removes it (registry garbage-collect on self-managed "
        "GitLab; gitlab.com runs its own). Until then `regcollect restore JOURNAL` re-tags it; "
        "after it, nothing can bring the image back."
    )

    def __init__(
        self,
        client: RegistryClient,
        rest: GitLabRest,
        *,
        cache: FactCache | None = None,
        say: Callable[[str], None] | None = None,
        max_wait: float = 600.0,
    ):
        self.client = client
        self.rest = rest
        self.cache = cache
        self.say = say
        self.max_wait = max_wait
        self.rest.say = say
        self._where: dict[str, tuple[int, int]] = {}  # registry path -> (project id, repository id)
        self._projects: dict[str, list[dict[str, Any]] | None] = {}
        self._seen: dict[tuple[str, str], tuple[str, str | None]] = {}  # (repo, tag) -> digest, created
        self._lock = asyncio.Lock()

    # where a registry path lives ----------------------------------------------------------------
    def _remember(self, rows: list[dict[str, Any]]) -> list[str]:
        paths = []
        for row in rows:
            path, rid, pid = row.get("path"), row.get("id"), row.get("project_id")
            if isinstance(path, str) and isinstance(rid, int) and isinstance(pid, int):
                self._where[path] = (pid, rid)
                paths.append(path)
        return paths

    async def _listing_of(self, kind: str, path: str) -> list[dict[str, Any]] | None:
        """The registry repositories of a project or group; None when there is no such one."""
        what = f"listing the registry repositories of {kind} {path}"
        url = f"/{kind}s/{quote(path, safe='')}/registry/repositories?per_page=100"
        try:
            return await self.rest.pages(url, what, key=lambda x: x.get("id"))
        except NotFound:
            return None

    async def _project(self, path: str) -> list[dict[str, Any]] | None:
        async with self._lock:
            if path not in self._projects:
                self._projects[path] = await self._listing_of("project", path)
                self._remember(self._projects[path] or [])
            return self._projects[path]

    async def locate(self, repo: str) -> tuple[int, int]:
        """(project id, repository id): the project is the longest prefix GitLab knows."""
        if repo in self._where:
            return self._where[repo]
        parts = repo.split("/")
        for n in range(len(parts), 1, -1):
            await self._project("/".join(parts[:n]))
            if repo in self._where:
                return self._where[repo]
        raise UsageError(
            f"{repo!r}: no such registry repository in GitLab (or the token may not read it); "
            "a GitLab registry path is group/project or group/project/name"
        )

    # RegistryApi ------------------------------------------------------------------------------
    async def repositories(self, patterns: list[str]) -> list[str]:
        out: set[str] = set()
        for p in patterns:
            if not has_wildcard(p):
                if not valid_repository(p):
                    raise UsageError(f"invalid repository name {p!r}")
                await self.locate(p)
                out.add(p)
                continue
            fixed = []
            for part in p.split("/"):
                if has_wildcard(part):
                    break
                fixed.append(part)
            if not fixed:
                raise UsageError(f"--repo {p!r}: name the GitLab group or project exactly (acme/*)")
            prefix = "/".join(fixed)
            rows = await self._listing_of("group", prefix)
            if rows is None and len(fixed) > 1:
                rows = await self._project(prefix)
            if rows is None:
                raise UsageError(
                    f"--repo {p!r}: GitLab knows no group or project {prefix!r} this token can read"
                )
            out.update(r for r in self._remember(rows) if valid_repository(r) and repo_matches(p, r))
        return sorted(out)

    def _tags_url(self, repo: str, tag: str | None = None) -> str:
        pid, rid = self._where[repo]
        url = f"/projects/{pid}/registry/repositories/{rid}/tags"
        return url + (f"/{quote(tag, safe='')}" if tag is not None else "")

    async def listing(self, repo: str) -> Listing:
        await self.locate(repo)
        what = f"listing the tags of {repo}"
        try:
            rows = await self.rest.pages(
                self._tags_url(repo) + "?per_page=100", what, key=lambda x: x.get("name")
            )
        except NotFound:
            return Listing(tags={})  # the repository went meanwhile
        good = [r for r in rows if isinstance(r.get("name"), str) and valid_tag(r["name"])]
        if len(good) != len(rows):
            self.client.dropped.setdefault(repo, []).extend(str(r.get("name")) for r in rows if r not in good)
        found = await asyncio.gather(*(self._tag(repo, r) for r in good))
        listing = Listing(tags={})
        for row, one in zip(good, found, strict=True):
            if one is None:
                continue  # deleted between the list and its details
            digest, created = one
            listing.tags[row["name"]] = digest
            if digest is None:
                continue
            v = listing.versions.setdefault(digest, Version(digest))
            v.tags = (*v.tags, row["name"])
            pushed = parse_time(created)
            if pushed is not None and (v.pushed is None or pushed < v.pushed):
                v.pushed = pushed  # the earliest of its tags' times: when the manifest came
        return listing

    def _kind(self, repo: str, tag: str) -> str:
        return f"gitlab-tag {self.client.host}/{repo}:{tag}"

    async def _tag(self, repo: str, row: dict[str, Any]) -> tuple[str | None, str | None] | None:
        """(digest, created_at) of one tag: from the list where it says (newer GitLab), else
        from the cache after a HEAD shows the digest unchanged, else one detail request."""
        tag = row["name"]
        if _digest(row.get("digest")) and "created_at" in row:
            return row["digest"], _text(row.get("created_at"))
        memo = self._seen.get((repo, tag))
        if memo is not None or (self.cache and self.cache.tag_hint(self.client.host, repo, tag)):
            now = await self.client.head_manifest(repo, tag)
            if now is None:
                return None
            if memo is not None and memo[0] == now:
                return memo
            hit = self.cache.fact(now, self._kind(repo, tag)) if self.cache else None
            if isinstance(hit, dict):
                self._seen[(repo, tag)] = (now, _text(hit.get("created_at")))
                return self._seen[(repo, tag)]
        what = f"reading tag {repo}:{tag}"
        try:
            doc = self.rest.json_body(await self.rest.call("GET", self._tags_url(repo, tag), what), what)
        except NotFound:
            return None
        if not isinstance(doc, dict):
            raise RegistryError(f"{what}: expected a JSON object")
        digest = doc.get("digest") if _digest(doc.get("digest")) else None
        if digest is None:
            return None, None  # /v2 resolves it
        created = _text(doc.get("created_at"))
        self._seen[(repo, tag)] = (digest, created)
        if self.cache:
            self.cache.put_tag_hint(self.client.host, repo, tag, digest)
            self.cache.put_fact(digest, self._kind(repo, tag), {"created_at": created})
        return digest, created

    async def delete_tag(self, repo: str, tag: str) -> bool:
        await self.locate(repo)
        try:
            await self.rest.call("DELETE", self._tags_url(repo, tag), f"deleting tag {repo}:{tag}")
        except NotFound:
            return False
        except AuthError as exc:
            raise RegistryError(f"GitLab refused: {exc}; {TOKEN_FIX}", status=403) from None
        self._seen.pop((repo, tag), None)
        return True

    async def delete(
        self, repo: str, digest: str, version_id: str | None = None, tags: tuple[str, ...] = ()
    ) -> bool:
        """Delete every tag the plan saw on the digest that still points at it (a tag moved
        onto other content meanwhile is left alone). An untagged manifest (an index's child, a
        referrer) has nothing to delete through the API: it goes with GitLab's garbage
        collection once nothing tagged refers to it. False when every tag was already gone."""
        if not tags:
            return True
        gone_now = False
        for tag in tags:
            if await self.client.head_manifest(repo, tag) != digest:
                continue
            gone_now = await self.delete_tag(repo, tag) or gone_now
        return gone_now

    async def probe_delete(self, repo: str) -> None:
        """Untagging writes nothing here (no throwaway manifest), so there is nothing to guard;
        a refusal is reported per tag with GitLab's message. Only the repository is checked."""
        await self.locate(repo)

    def record(self, repo: str, digest: str, version_id: str | None) -> dict[str, Any]:
        pid, rid = self._where.get(repo, (None, None))
        return {
            "api": self.kind,
            "api_url": self.rest.base + self.rest.prefix,
            "project_id": pid,
            "repository_id": rid,
        }

    async def aclose(self) -> None:
        if self.cache:
            self.cache.close()
        await self.client.aclose()
        await self.rest.aclose()


def _digest(value: Any) -> bool:
    return isinstance(value, str) and is_digest(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def open_gitlab(opts: Any) -> GitLabApi:
    base = base_url(opts.registry, insecure=opts.insecure)
    host = urlsplit(base).netloc
    token = gitlab_token(host, opts.username, opts.password)
    if opts.api_url:
        api_url = opts.api_url.rstrip("/")
    elif urlsplit(base).hostname == "registry.gitlab.com":
        api_url = DEFAULT_API
    else:
        # Never send a self-managed instance's token to gitlab.com by default.
        raise UsageError(
            f"--api gitlab for {host}: give --api-url https://GITLAB-HOST/api/v4 (the default, "
            f"{DEFAULT_API}, is only for registry.gitlab.com)"
        )
    api_base, api_path = api_origin(api_url, DEFAULT_API)
    client = registry_client(opts, Credentials(username=token.registry_user, password=token.value))
    rest = GitLabRest(api_base, api_path, token, **rest_settings(opts))
    cache = FactCache() if opts.use_cache else None
    return GitLabApi(client, rest, cache=cache, say=opts.note, max_wait=opts.max_wait)
