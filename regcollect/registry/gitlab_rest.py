"""GitLab's REST API (/api/v4) for the container registry: the token, its header, and pages.

A token goes in `PRIVATE-TOKEN` (personal, project or group access token) or `JOB-TOKEN` (a CI
job's $CI_JOB_TOKEN), only to the API's own origin. GitLab pages by `page`/`per_page` and says
where the next page is in `X-Next-Page` and, usually, in an RFC 5988 `Link`; either may be
missing, so the reader takes whichever the answer has, with HttpClient.paged's guards (a page
count limit, a repeated page, a page that adds nothing new): a listing cut short is an error,
never a short listing. Facts: docs/gitlab.md and hosted-registries.md section 3.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from regcollect.errors import RegistryError, UsageError
from regcollect.registry.credentials import resolve
from regcollect.registry.http import DEFAULT_CAP, MAX_PAGES, HttpClient, IncompleteListing, redact_url

DEFAULT_API = "https://gitlab.com/api/v4"
JOB_USER = "gitlab-ci-token"  # GitLab's user name for a job token on the registry
QUOTA_RESERVE = 5  # requests left in GitLab's window when we pause until it refills
TOKEN_USER = "regcollect"  # GitLab's registry checks an access token, not the user name given with it


@dataclass(frozen=True)
class GitLabToken:
    header: str  # "PRIVATE-TOKEN" or "JOB-TOKEN"
    value: str
    registry_user: str  # the user name the registry's token flow gets with it
    source: str  # where it came from, for messages

    def __repr__(self) -> str:  # never show a secret
        return f"GitLabToken({self.header}, from {self.source}, user {self.registry_user!r})"

    @property
    def is_job(self) -> bool:
        return self.header == "JOB-TOKEN"


def _token(value: str, user: str | None, source: str) -> GitLabToken:
    if user == JOB_USER:
        return GitLabToken("JOB-TOKEN", value, JOB_USER, source)
    return GitLabToken("PRIVATE-TOKEN", value, user or TOKEN_USER, source)


def gitlab_token(registry_host: str, username: str | None, password: str | None) -> GitLabToken:
    """--password-stdin, else $GITLAB_TOKEN, else $CI_JOB_TOKEN, else the docker config's
    credentials for the registry. With -u gitlab-ci-token the secret is a job token."""
    if password:
        return _token(password, username, "--password-stdin")
    env = os.environ.get("GITLAB_TOKEN", "").strip()
    if env:
        return _token(env, None, "$GITLAB_TOKEN")
    job = os.environ.get("CI_JOB_TOKEN", "").strip()
    if job:
        return GitLabToken("JOB-TOKEN", job, JOB_USER, "$CI_JOB_TOKEN")
    found = resolve(registry_host)
    if found.password:
        return _token(found.password, found.username, f"the docker config for {registry_host}")
    raise UsageError(
        "no GitLab token: give one on stdin (--password-stdin), in $GITLAB_TOKEN, run inside GitLab "
        f"CI ($CI_JOB_TOKEN), or log in with `docker login {registry_host}`"
    )


class GitLabRest(HttpClient):
    """The REST API under its path prefix (/api/v4), the token header sent only to that origin
    (httpx drops it on a redirect elsewhere)."""

    def __init__(self, origin: str, path: str, token: GitLabToken, **kw: Any):
        super().__init__(origin, headers={token.header: token.value, "Accept": "application/json"}, **kw)
        self.prefix = path
        self.say: Callable[[str], None] | None = None
        self.pace = self._pace
        self._pause = asyncio.Lock()

    async def _pace(self, method: str) -> None:
        """GitLab announces its window in RateLimit-* headers: pause before it runs out."""
        rate = self.rate
        if rate.remaining is None or rate.remaining > QUOTA_RESERVE or not rate.reset:
            return
        async with self._pause:  # requests in flight wait out one pause together
            if rate.remaining is not None and rate.remaining <= QUOTA_RESERVE and rate.reset:
                await self._wait_for(rate.reset, rate.remaining)
            rate.remaining = None

    async def _wait_for(self, reset: float, remaining: int) -> None:
        wait = reset - time.time() + 1
        if wait > self.max_wait:
            raise RegistryError(
                f"the GitLab API rate limit is nearly used up ({remaining} requests left) until "
                f"{time.strftime('%H:%M:%S', time.localtime(reset))}, {wait:.0f} s away, more "
                f"than --max-wait {self.max_wait:.0f} s: stopped cleanly, run again after that"
            )
        if wait > 0:
            if self.say:
                self.say(f"GitLab API rate limit: {remaining} requests left; pausing {wait:.0f} s")
            await asyncio.sleep(wait)

    async def call(self, method: str, url: str, what: str, **kw: Any) -> Any:
        if url.startswith("/") and not url.startswith(self.prefix + "/"):
            url = self.prefix + url
        return await super().call(method, url, what, **kw)

    async def pages(
        self, first: str, what: str, *, key: Callable[[Any], Any], cap: int = DEFAULT_CAP
    ) -> list[dict[str, Any]]:
        """Every object of a JSON-array listing, following Link rel=next or X-Next-Page."""
        url: str | None = first
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        known: set[Any] = set()
        pages = 0
        while url:
            if url in seen:
                raise IncompleteListing(f"{what}: the next page repeats ({redact_url(url)})")
            if pages >= MAX_PAGES:
                raise IncompleteListing(f"{what}: more than {MAX_PAGES} pages; giving up")
            seen.add(url)
            pages += 1
            resp = await self.call("GET", url, what, cap=cap)
            doc = self.json_body(resp, what)
            if not isinstance(doc, list):
                raise RegistryError(f"{what}: {redact_url(resp.request.url)}: expected a JSON array")
            new = [x for x in doc if isinstance(x, dict) and key(x) not in known]
            url = self._next_link(resp, what) or self._next_page(resp, what)
            if url and not new and pages > 1:
                raise IncompleteListing(f"{what}: page {pages} added nothing new but names another")
            known.update(key(x) for x in new)
            out.extend(new)
        return out

    @staticmethod
    def _next_page(resp: httpx.Response, what: str) -> str | None:
        raw = resp.headers.get("x-next-page", "").strip()
        if not raw:
            return None
        if not raw.isdigit() or int(raw) < 1:
            raise IncompleteListing(f"{what}: X-Next-Page {raw[:20]!r} is not a page number")
        u = urlsplit(str(resp.request.url))
        query = [(k, v) for k, v in parse_qsl(u.query) if k != "page"] + [("page", raw)]
        return urlunsplit(("", "", u.path, urlencode(query), ""))
