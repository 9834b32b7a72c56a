"""HubEmulator: Docker Hub's API (hub.docker.com) and registry (/v2 + its token service) on
loopback, with accounts, JWTs that expire, rate limits and a switch for each "unconfirmed" fact.

Every behaviour hosted-registries.md section 2 marks unconfirmed or "has varied" is a keyword
argument whose default is the sheet's best guess; the comment quotes the sheet.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.dockerhub.model import Account, Repo, Store, Stored
from tests.support.ghcr.httpbase import Logged, Request, Response, Server, json_response


@dataclass
class Jwt:
    account: Account
    access: str  # "admin" | "write" | "read"
    expires: float


@dataclass
class Grant:
    account: Account | None
    access: str
    granted: dict[str, set[str]] = field(default_factory=dict)  # repo -> actions
    expires: float = 0.0


class HubEmulator:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        # 2.1: "token expires in 10 minutes"
        jwt_ttl: float = 600.0,
        # 2.1: the new login is documented; the legacy one is "deprecated". False: only legacy answers.
        new_login: bool = True,
        # 2.2: "page_size default 10, max 100"
        default_page_size: int = 10,
        max_page_size: int = 100,
        # 2.2: "The spec declares images as a single object, but real responses carry an array"
        images_array: bool = True,
        # 2.2: listing order is not documented: newest last_updated first, as the Hub UI shows
        newest_first: bool = True,
        # 2.3: "-> 204 (status widely assumed; unconfirmed in spec)"
        tag_delete_status: int = 204,
        # 2.3: "Removing a tag leaves the manifest stored (becomes untagged)"; False = kept
        untag_deletes_manifest: bool = False,
        # 2.5: "OCI manifest DELETE: historically 405 UNSUPPORTED ... Newer Docker docs now document
        # it -> 202 ... Emulator: make 405-vs-202 a switch"
        manifest_delete: int = 202,
        # 2.5: "may transiently return 500 while the backend retries the deletion": N first DELETEs
        manifest_delete_500s: int = 0,
        # 2.2: which pulls set tag_last_pulled is not said; a GET by tag does, a GET by digest
        # sets the image's last_pulled and, with this switch, every tag on it too
        digest_pull_touches_tags: bool = False,
        # 2.6: pulls "Personal (authenticated) 200 per 6 h; unauthenticated 100 per 6 h"
        pull_limit: int = 200,
        anonymous_pull_limit: int = 100,
        # 2.6: "Actual numeric limit [of the Hub API]: unconfirmed" (per minute)
        api_rate_limit: int = 180,
        registry_token_ttl: int = 300,
    ):
        self.clock = clock
        self.jwt_ttl = jwt_ttl
        self.new_login = new_login
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.images_array = images_array
        self.newest_first = newest_first
        self.tag_delete_status = tag_delete_status
        self.untag_deletes_manifest = untag_deletes_manifest
        self.manifest_delete = manifest_delete
        self.manifest_delete_500s = manifest_delete_500s
        self.digest_pull_touches_tags = digest_pull_touches_tags
        self.pull_limit = pull_limit
        self.anonymous_pull_limit = anonymous_pull_limit
        self.api_rate_limit = api_rate_limit
        self.registry_token_ttl = registry_token_ttl
        self.store = Store()
        self.jwts: dict[str, Jwt] = {}
        self.grants: dict[str, Grant] = {}
        self.logins = 0
        self.lock = threading.Lock()
        self._window: tuple[float, int] = (0.0, 0)  # Hub API: (minute start, requests)
        self._trip: tuple[int, int] | None = None  # (after N more requests, retry in S seconds)
        self._api_requests = 0
        self._expire_at: int | None = None
        self.pulls_used: dict[str, int] = {}  # account or "anonymous" -> manifest GETs
        from tests.support.dockerhub.registry import RegistrySide
        from tests.support.dockerhub.rest import RestSide

        self.rest = Server(self._serialised(RestSide(self).handle))
        self.registry = Server(self._serialised(RegistrySide(self).handle))

    def _serialised(self, handle: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(req: Request) -> Response:
            with self.store.lock:
                return handle(req)

        return run

    def __enter__(self) -> HubEmulator:
        self.rest.start()
        self.registry.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.rest.stop()
        self.registry.stop()

    @property
    def api_url(self) -> str:
        return self.rest.url

    @property
    def registry_host(self) -> str:
        return self.registry.url.removeprefix("http://")

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # accounts and secrets ---------------------------------------------------------------------
    def add_secret(self, account: str, secret: str, access: str = "admin", *, org: bool = False) -> None:
        self.store.account(account, org=org).secrets[secret] = access

    def login(self, identifier: str, secret: str) -> Jwt | None:
        a = self.store.accounts.get(identifier)
        if a is None or secret not in a.secrets:
            return None
        self.logins += 1
        return Jwt(a, a.secrets[secret], self.clock() + self.jwt_ttl)

    def issue(self, jwt: Jwt) -> str:
        value = "eyJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(24) + ".sig"
        self.jwts[value] = jwt
        return value

    def expire_jwts(self) -> None:
        """Every JWT issued so far stops working now (a run that outlives its 10 minutes)."""
        for j in self.jwts.values():
            j.expires = 0.0

    def expire_jwts_after(self, n: int) -> None:
        """After n more Hub API requests, every JWT issued until then expires (mid-run)."""
        with self.lock:
            self._expire_at = self._api_requests + n

    def bearer(self, header: str | None) -> Jwt | None | bool:
        """None: no header; False: a token we do not know or that expired."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "jwt"):  # the spec says Bearer; scripts send JWT
            return False
        j = self.jwts.get(value.strip())
        if j is None or j.expires <= self.clock():
            return False
        return j

    def may(self, account: Account | None, access: str, repo: Repo, action: str) -> bool:
        if action == "pull":
            return not repo.private or (account is not None and repo.namespace in account.member_of)
        if account is None or repo.namespace not in account.member_of:
            return False
        return access == "admin" or (action == "push" and access == "write")

    # Hub API rate limit -----------------------------------------------------------------------
    def trip_after(self, n: int, retry_in: int = 1) -> None:
        """The (n+1)-th Hub API request from now gets 429 with X-Retry-After = now + retry_in."""
        with self.lock:
            self._trip = (self._api_requests + n, retry_in)

    def api_rate(self) -> tuple[Response | None, dict[str, str]]:
        with self.lock:
            now = self.clock()
            start, used = self._window
            if now >= start + 60:
                start, used = math.floor(now), 0
            self._api_requests += 1
            if self._expire_at is not None and self._api_requests > self._expire_at:
                self._expire_at = None
                self.expire_jwts()
            reset = int(start + 60)
            if self._trip and self._api_requests > self._trip[0]:
                until = int(now) + self._trip[1]
                self._trip = None
                self._window = (start, used)
                return self._limited(until, until, used), {}
            if used >= self.api_rate_limit:
                self._window = (start, used)
                return self._limited(reset, reset, used), {}
            used += 1
            self._window = (start, used)
            return None, {
                "X-RateLimit-Limit": str(self.api_rate_limit),
                "X-RateLimit-Remaining": str(self.api_rate_limit - used),
                "X-RateLimit-Reset": str(reset),
            }

    def _limited(self, until: int, reset: int, used: int) -> Response:
        return json_response(
            429,
            {"detail": "Rate limit exceeded", "error": False},
            {
                "X-RateLimit-Limit": str(self.api_rate_limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
                "X-Retry-After": str(until),
            },
        )

    # what tests read --------------------------------------------------------------------------
    @property
    def rest_log(self) -> list[Logged]:
        return self.rest.log

    @property
    def registry_log(self) -> list[Logged]:
        return self.registry.log

    def manifest_gets(self) -> int:
        return sum(1 for r in self.registry.log if r.method == "GET" and "/manifests/" in r.path)

    def repo(self, name: str) -> Repo:
        r = self.store.find(name)
        if r is None:
            raise KeyError(name)
        return r

    def tags(self, name: str) -> dict[str, str]:
        return {t.name: t.digest for t in self.repo(name).tags.values()}

    def stored(self, name: str) -> dict[str, Stored]:
        return dict(self.repo(name).manifests)
