"""Docker Hub's REST API (hub.docker.com): a JWT login that renews itself, `next`-paged listings,
and the Hub's per-minute quota.

The Hub API is not the registry: it takes a JWT from POST /v2/auth/token (username or
organisation name + password, personal or organisation access token), which expires after 10
minutes, so a long run logs in again before that and once more on a 401. Listings page by a
`next` URL in the body (no Link header); it is followed only to the API's own origin, with the
same page guards as HttpClient.paged. X-RateLimit-* headers pace the run; a 429's X-Retry-After
is a Unix time (http.retry_after reads it so). Facts: hosted-registries.md section 2.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from regcollect.errors import AuthError, NotFound, RegistryError
from regcollect.registry.http import (
    DEFAULT_CAP,
    MAX_PAGES,
    HttpClient,
    IncompleteListing,
    check,
    origin,
    redact_url,
)

JWT_TTL = 600.0  # the Hub API's JWTs expire after 10 minutes
RENEW_AFTER = JWT_TTL - 90.0  # log in again before a request could meet an expired token
LOGIN = "/v2/auth/token"
LEGACY_LOGIN = "/v2/users/login"  # deprecated, still answered: used where the new one is missing
QUOTA_RESERVE = 1  # requests left in the minute when we pause until the quota refills
PAGE_CAP = 32 << 20
TOKEN_FIX = (
    "use a personal access token (Docker Hub, Account settings, Personal access tokens) with "
    "Read, Write, Delete access, or an organisation access token with delete rights on the repository"
)


class HubRest(HttpClient):
    """Requests to the Hub API with `Authorization: Bearer <JWT>`, only to its own origin (httpx
    drops the header on a redirect elsewhere). Anonymous when no credentials were given."""

    def __init__(
        self,
        origin_url: str,
        prefix: str,
        identifier: str | None,
        secret: str | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] | None = None,
        **kw: Any,
    ):
        super().__init__(origin_url, headers={"Accept": "application/json"}, **kw)
        self.prefix = prefix
        self._identifier = identifier
        self._secret = secret
        self._jwt: str | None = None
        self._obtained = 0.0
        self._lock = asyncio.Lock()
        self.clock = clock
        self.say = say
        self.logins = 0
        self.pace = self._pace

    def __repr__(self) -> str:  # never show a secret
        return f"HubRest({self.base!r}, identifier={self._identifier!r})"

    @property
    def authenticated(self) -> bool:
        return self._secret is not None

    def _full(self, url: str) -> str:
        if url.startswith("/") and not url.startswith(self.prefix + "/"):
            return self.prefix + url
        return url

    # the JWT --------------------------------------------------------------------------------
    async def token(self, stale: str | None = None) -> str:
        """The current JWT; a new one when it is old or the one a request used was refused."""
        async with self._lock:
            fresh = self._jwt is not None and self.clock() - self._obtained < RENEW_AFTER
            if fresh and (stale is None or stale != self._jwt):
                assert self._jwt is not None
                return self._jwt
            self._jwt = await self._login()
            self._obtained = self.clock()
            self.logins += 1
            return self._jwt

    async def _login(self) -> str:
        who = self._identifier or ""
        what = f"logging in to the Docker Hub API as {who}"
        body = {"identifier": who, "secret": self._secret}
        try:
            resp = await self._send_login(LOGIN, body, what)
            key = "access_token"
        except NotFound:
            resp = await self._send_login(LEGACY_LOGIN, {"username": who, "password": self._secret}, what)
            key = "token"
        doc = self.json_body(resp, what)
        jwt = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(jwt, str) or not jwt:
            raise AuthError(f"{what}: the answer holds no token")
        return jwt

    async def _send_login(self, path: str, body: dict[str, Any], what: str) -> httpx.Response:
        resp = await super().request("POST", self._full(path), json=body, cap=1 << 20)
        if resp.status_code == 401:
            doc: Any = None
            try:
                doc = resp.json()
            except ValueError:
                pass
            if isinstance(doc, dict) and doc.get("login_2fa_token"):
                raise AuthError(
                    f"{what}: the account has two-factor authentication, so its password cannot log in "
                    f"here; {TOKEN_FIX}"
                )
            raise AuthError(
                f"{what}: 401: Docker Hub refused the username and secret (wrong, expired or revoked "
                f"token); {TOKEN_FIX}"
            )
        if resp.status_code in (404, 405):
            raise NotFound(f"{what}: {path}: {resp.status_code}", status=resp.status_code)
        return check(resp, what)

    async def request(self, method: str, url: str, *, cap: int = DEFAULT_CAP, **kw: Any) -> httpx.Response:
        """Send with the JWT; a 401 means it expired early or was revoked: log in again, once."""
        url = self._full(url)
        if self._secret is None:
            return await super().request(method, url, cap=cap, **kw)
        headers = dict(kw.pop("headers", None) or {})
        jwt = await self.token()
        headers["Authorization"] = f"Bearer {jwt}"
        resp = await super().request(method, url, cap=cap, headers=headers, **kw)
        if resp.status_code == 401:
            if self.say:
                self.say("the Docker Hub API token expired: logging in again")
            headers["Authorization"] = f"Bearer {await self.token(stale=jwt)}"
            resp = await super().request(method, url, cap=cap, headers=headers, **kw)
        return resp

    # pacing ---------------------------------------------------------------------------------
    async def _pace(self, method: str) -> None:
        """Before the per-minute quota runs out, wait for its reset (up to --max-wait)."""
        rate = self.rate
        if rate.remaining is None or rate.remaining > QUOTA_RESERVE or not rate.reset:
            return
        wait = rate.reset - time.time() + 1
        if wait > self.max_wait:
            raise RegistryError(
                f"the Docker Hub API quota is used up ({rate.remaining} requests left) for {wait:.0f} s, "
                f"more than --max-wait {self.max_wait:.0f} s: stopped cleanly, run again later"
            )
        left, rate.remaining = rate.remaining, None
        if wait > 0:
            if self.say:
                self.say(f"Docker Hub API quota: {left} requests left; pausing {wait:.0f} s until it refills")
            await asyncio.sleep(wait)

    # listings -------------------------------------------------------------------------------
    async def pages(
        self, first: str, what: str, key: Callable[[dict[str, Any]], Any]
    ) -> tuple[list[Any], int]:
        """Every `results` item of a listing paged by `next`, and the last page's `count`, or
        IncompleteListing: a missing page could hold the tag that keeps a digest."""
        url: str | None = first
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        known: set[Any] = set()
        count = -1
        while url:
            if url in seen:
                raise IncompleteListing(f"{what}: the next page repeats ({redact_url(url)})")
            if len(seen) >= MAX_PAGES:
                raise IncompleteListing(f"{what}: more than {MAX_PAGES} pages; giving up")
            seen.add(url)
            resp = await self.call("GET", url, what, cap=PAGE_CAP)
            doc = self.json_body(resp, what)
            results = doc.get("results") if isinstance(doc, dict) else None
            if not isinstance(results, list):
                raise RegistryError(f"{what}: {redact_url(resp.request.url)}: no 'results' list")
            page = [x for x in results if isinstance(x, dict)]
            raw_count = doc.get("count")
            count = raw_count if isinstance(raw_count, int) and not isinstance(raw_count, bool) else -1
            new = [x for x in page if key(x) not in known]
            url = self._next(doc.get("next"), resp, what)
            if url and not new and len(seen) > 1:
                raise IncompleteListing(f"{what}: page {len(seen)} added nothing new but names another")
            known.update(key(x) for x in new)
            out.extend(new)
        return out, count

    def _next(self, raw: Any, resp: httpx.Response, what: str) -> str | None:
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            raise IncompleteListing(f"{what}: 'next' is not a URL")
        absolute = urljoin(str(resp.request.url), raw)
        if origin(absolute) != origin(self.base):
            raise IncompleteListing(
                f"{what}: the next page is on another origin ({redact_url(absolute)}), not "
                f"{redact_url(self.base)}; not followed, so the listing is incomplete"
            )
        a = urlsplit(absolute)
        return urlunsplit(("", "", a.path, a.query, ""))
