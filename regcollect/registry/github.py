"""GitHub Packages (ghcr.io): listed and deleted through GitHub's REST API, read through /v2.

ghcr.io refuses the Registry API's DELETE (405 UNSUPPORTED) and has no referrers API. Every
stored manifest is a package version: `name` is its digest, `id` deletes it, its tags are in
`metadata.container.tags`, and untagged versions (platform children, attestations, orphans) are
listed too. So the listing gives tag -> digest for free, no tag is resolved by a manifest GET
(each GET counts as a download, and public versions past 5,000 downloads can no longer be
deleted), and untagged orphans are visible. Deletions are paced to GitHub's secondary limit (a
DELETE costs 5 of 900 points a minute per endpoint), and the run pauses rather than dies when the
hourly quota runs low, up to --max-wait. Facts: docs/ghcr.md and hosted-registries.md section 1.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from regcollect.errors import AuthError, NotFound, RegistryError, UsageError
from regcollect.registry.api import Listing, Version
from regcollect.registry.auth import Credentials
from regcollect.registry.client import RegistryClient, base_url, is_digest, valid_tag
from regcollect.registry.credentials import resolve
from regcollect.registry.http import HttpClient
from regcollect.registry.opening import api_origin, registry_client, rest_settings, select_owned
from regcollect.units import parse_time

DEFAULT_API = "https://api.github.com"
PAGE_CAP = 32 << 20
QUOTA_RESERVE = 10  # requests left when we pause until the hourly quota refills
POINTS_PER_MINUTE = 900  # GitHub's secondary limit per endpoint
DELETE_POINTS = 5
TOKEN_FIX = (
    "a classic personal access token needs read:packages and delete:packages; an Actions "
    "GITHUB_TOKEN needs `permissions: packages: write` and the admin role on the package "
    "(package settings, Manage Actions access)"
)


class PointBucket:
    """GitHub's secondary limit as a token bucket: bursts up to the minute's points, then the
    refill rate. A short run never waits; a long one deletes at most 180 a minute."""

    def __init__(self, per_minute: int = POINTS_PER_MINUTE, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(per_minute)
        self.points = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.stamp = clock()
        self.lock = asyncio.Lock()

    async def take(self, points: int) -> None:
        async with self.lock:
            now = self.clock()
            self.points = min(self.capacity, self.points + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.points < points:
                await asyncio.sleep((points - self.points) / self.rate)
                self.points = float(points)
                self.stamp = self.clock()
            self.points -= points


class GitHubApi:
    kind = "github"
    pull_times = False  # no download count or last-pull time in the REST API
    tag_delete = False  # no tag-delete API: untag moves the tag onto a throwaway version
    gc_note = (
        "GitHub keeps deleted versions for 30 days: `regcollect restore JOURNAL` brings them back "
        "until then; storage is GitHub's to reclaim."
    )

    def __init__(
        self,
        client: RegistryClient,
        rest: HttpClient,
        *,
        say: Callable[[str], None] | None = None,
        max_wait: float = 600.0,
    ):
        self.client = client
        self.rest = rest
        self.say = say
        self.max_wait = max_wait
        self.bucket = PointBucket()
        self.rest.pace = self._pace
        self._prefixes: dict[str, str] = {}
        self._login: str | None | bool = False  # False: not asked yet; None: the token has no login
        self._lock = asyncio.Lock()

    # pacing ---------------------------------------------------------------------------------
    async def _pace(self, method: str) -> None:
        rate = self.rest.rate
        if rate.remaining is not None and rate.remaining <= QUOTA_RESERVE and rate.reset:
            wait = rate.reset - time.time() + 1
            if wait > self.max_wait:
                raise RegistryError(
                    f"the GitHub API quota is nearly used up ({rate.remaining} requests left) until "
                    f"{time.strftime('%H:%M:%S', time.localtime(rate.reset))}, {wait:.0f} s away, more "
                    f"than --max-wait {self.max_wait:.0f} s: stopped cleanly, run again after that"
                )
            if wait > 0:
                if self.say:
                    self.say(
                        f"GitHub API quota: {rate.remaining} requests left; "
                        f"pausing {wait:.0f} s until it refills"
                    )
                await asyncio.sleep(wait)
                rate.remaining = None
        if method in ("DELETE", "POST", "PUT", "PATCH"):
            await self.bucket.take(DELETE_POINTS)

    # where a package lives ----------------------------------------------------------------------
    async def _whoami(self) -> str | None:
        if self._login is False:
            try:
                doc = self.rest.json_body(
                    await self.rest.call("GET", "/user", "asking GitHub who the token is"), ""
                )
                self._login = str(doc.get("login")) if isinstance(doc, dict) and doc.get("login") else None
            except (AuthError, NotFound):
                self._login = None  # an Actions or App token: GET /user is refused
        return self._login if isinstance(self._login, str) else None

    async def prefix(self, owner: str) -> str:
        """/orgs/OWNER, /user (the token's own packages) or /users/OWNER."""
        async with self._lock:
            if owner not in self._prefixes:
                what = f"looking up GitHub account {owner}"
                try:
                    doc = self.rest.json_body(
                        await self.rest.call("GET", f"/users/{quote(owner)}", what), what
                    )
                except NotFound:
                    raise UsageError(f"GitHub account {owner!r} does not exist") from None
                kind = doc.get("type") if isinstance(doc, dict) else None
                if kind == "Organization":
                    self._prefixes[owner] = f"/orgs/{quote(owner)}"
                elif await self._whoami() == owner:
                    self._prefixes[owner] = "/user"
                else:
                    self._prefixes[owner] = f"/users/{quote(owner)}"
            return self._prefixes[owner]

    @staticmethod
    def split(repo: str) -> tuple[str, str]:
        owner, _, package = repo.partition("/")
        if not owner or not package:
            raise UsageError(f"{repo!r}: a ghcr.io repository is OWNER/PACKAGE (e.g. acme/app)")
        return owner, package

    async def _versions_path(self, repo: str) -> str:
        owner, package = self.split(repo)
        return f"{await self.prefix(owner)}/packages/container/{quote(package, safe='')}/versions"

    # RegistryApi ------------------------------------------------------------------------------
    async def repositories(self, patterns: list[str]) -> list[str]:
        if any(p.startswith("*") for p in patterns):
            raise UsageError(
                "name the packages: --repo OWNER/PACKAGE-GLOB (e.g. --repo 'acme/*'), or "
                "repositories = [...] in the policy file; a ghcr.io run never guesses the owner"
            )
        return await select_owned(patterns, "owner", self._package_names)

    async def _package_names(self, owner: str, p: str) -> list[str]:
        what = f"listing the container packages of {owner}"
        path = f"{await self.prefix(owner)}/packages?package_type=container&per_page=100"
        try:
            rows = await self.rest.paged(path, what, _array, key=lambda x: x.get("name"), cap=PAGE_CAP)
        except AuthError as exc:
            raise UsageError(
                f"--repo {p!r}: this token may not list {owner}'s packages ({exc}); an Actions "
                "GITHUB_TOKEN cannot list packages: name each package exactly (--repo acme/app) or "
                "use a classic personal access token with read:packages"
            ) from None
        return [f"{owner}/{r['name']}" for r in rows if isinstance(r.get("name"), str)]

    async def listing(self, repo: str) -> Listing:
        what = f"listing the versions of {repo}"
        path = await self._versions_path(repo) + "?per_page=100&state=active"
        try:
            rows = await self.rest.paged(path, what, _array, key=lambda x: x.get("id"), cap=PAGE_CAP)
        except NotFound:
            return Listing(tags={})
        listing = Listing(tags={})
        for row in rows:
            digest, vid = row.get("name"), row.get("id")
            if not isinstance(digest, str) or not is_digest(digest) or not isinstance(vid, int | str):
                raise RegistryError(f"{what}: a version without a valid digest or id: {str(row)[:120]}")
            meta = row.get("metadata")
            container = meta.get("container") if isinstance(meta, dict) else None
            raw_tags = (container.get("tags") if isinstance(container, dict) else None) or []
            if not isinstance(raw_tags, list):
                raise RegistryError(f"{what}: version {vid}: tags is not a list")
            tags = tuple(t for t in raw_tags if isinstance(t, str) and valid_tag(t))
            if len(tags) != len(raw_tags):
                self.client.dropped.setdefault(repo, []).extend(
                    str(t) for t in raw_tags if not (isinstance(t, str) and valid_tag(t))
                )
            created = row.get("created_at")
            pushed = parse_time(created) if isinstance(created, str) else None
            listing.versions[digest] = Version(digest, str(vid), tags, pushed)
            for t in tags:
                listing.tags[t] = digest
        return listing

    async def _version_id(self, repo: str, digest: str) -> str | None:
        v = (await self.listing(repo)).versions.get(digest)
        return v.id if v else None

    async def delete_tag(self, repo: str, tag: str) -> bool:
        raise NotImplementedError("GitHub Packages has no tag-delete API")

    async def delete(
        self, repo: str, digest: str, version_id: str | None = None, tags: tuple[str, ...] = ()
    ) -> bool:
        vid = version_id or await self._version_id(repo, digest)
        if vid is None:
            return False  # no version holds it any more
        what = f"deleting {repo}@{digest} (version {vid})"
        try:
            await self.rest.call("DELETE", f"{await self._versions_path(repo)}/{quote(vid)}", what)
            return True
        except NotFound:
            return False
        except AuthError as exc:
            raise RegistryError(f"GitHub refused: {exc}; {TOKEN_FIX}", status=403) from None
        except RegistryError as exc:
            if exc.status in (400, 422) or "download" in str(exc).lower():
                raise RegistryError(
                    f"GitHub refused: {exc}; public versions downloaded more than 5,000 times cannot "
                    "be deleted through the API (GitHub Support can)",
                    status=exc.status,
                    code=exc.code,
                ) from None
            raise

    async def probe_delete(self, repo: str) -> None:
        """A classic token shows its scopes: without delete:packages, say so before an untag
        pushes a throwaway it could not remove. Other tokens cannot be asked."""
        await self._versions_path(repo)
        resp = await self.rest.call("GET", "/rate_limit", "reading the token's scopes")
        scopes = resp.headers.get("x-oauth-scopes")
        if scopes is not None and "delete:packages" not in {s.strip() for s in scopes.split(",")}:
            raise RegistryError(f"the token lacks delete:packages (it has: {scopes or 'none'}); {TOKEN_FIX}")

    def record(self, repo: str, digest: str, version_id: str | None) -> dict[str, Any]:
        owner, package = self.split(repo)
        return {
            "api": self.kind,
            "api_url": self.rest.base + getattr(self.rest, "prefix", ""),
            "owner": owner,
            "package": package,
            "version_id": version_id,
            "path": self._prefixes.get(owner),
        }

    async def restore_version(self, repo: str, version_id: str, path: str | None = None) -> bool:
        """POST .../restore (GitHub keeps deleted versions 30 days). False if it is not there."""
        owner, package = self.split(repo)
        path = path or await self.prefix(owner)
        url = f"{path}/packages/container/{quote(package, safe='')}/versions/{quote(version_id)}/restore"
        try:
            await self.rest.call("POST", url, f"restoring version {version_id} of {package}")
            return True
        except NotFound:
            return False

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.rest.aclose()


def _array(doc: Any, url: str) -> list[Any]:
    if not isinstance(doc, list):
        raise RegistryError(f"{url}: expected a JSON array")
    return [x for x in doc if isinstance(x, dict)]


def github_token(registry_host: str, username: str | None, password: str | None) -> str:
    """--password-stdin, else $GITHUB_TOKEN, else the docker config's credentials for the host."""
    if password:
        return password
    env = os.environ.get("GITHUB_TOKEN")
    if env:
        return env.strip()
    found = resolve(registry_host)
    if found.password:
        return found.password
    raise UsageError(
        "no GitHub token: give one on stdin (--password-stdin), in $GITHUB_TOKEN, or log in with "
        f"`docker login {registry_host}`"
    )


def open_github(opts: Any) -> GitHubApi:
    base = base_url(opts.registry, insecure=opts.insecure)
    host = base.split("://", 1)[1]
    token = github_token(host, opts.username, opts.password)
    api_base, path = api_origin(opts.api_url or DEFAULT_API, DEFAULT_API)
    client = registry_client(opts, Credentials(username=opts.username or "token", password=token))
    rest = _RestClient(api_base, path, token, **rest_settings(opts))
    return GitHubApi(client, rest, say=opts.note, max_wait=opts.max_wait)


class _RestClient(HttpClient):
    """GitHub's REST API under a path prefix (GitHub Enterprise Server: /api/v3), with the token
    as a Bearer header sent only to that origin (httpx drops it on a redirect elsewhere)."""

    def __init__(self, origin: str, path: str, token: str, **kw: Any):
        super().__init__(
            origin,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            **kw,
        )
        self.prefix = path

    async def call(self, method: str, url: str, what: str, **kw: Any) -> Any:
        if url.startswith("/") and not url.startswith(self.prefix + "/"):
            url = self.prefix + url
        return await super().call(method, url, what, **kw)
