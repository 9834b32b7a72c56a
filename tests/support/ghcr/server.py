"""GhcrEmulator: both sides of GitHub Container Registry on loopback, with tokens and switches.

Every behaviour hosted-registries.md section 1 marks "unconfirmed" is a keyword argument whose
default is the sheet's best guess; the comment next to it quotes the sheet.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.ghcr.httpbase import Logged, Request, Response, Server
from tests.support.ghcr.limits import RateLimits
from tests.support.ghcr.model import Package, Store, Version


@dataclass(frozen=True)
class Token:
    """A classic PAT (scopes) or an Actions GITHUB_TOKEN (a role per package, `ghs_` prefix)."""

    value: str
    login: str
    kind: str = "classic"  # "classic" | "actions"
    scopes: frozenset[str] = frozenset()
    admin_on: frozenset[str] = frozenset()  # actions: "owner/package" where the workflow's repo is admin
    read_on: frozenset[str] = frozenset()  # actions: packages it may only read
    packages_write: bool = True  # actions: the workflow has `permissions: packages: write`

    def has(self, scope: str) -> bool:
        # GitHub grants read:packages with write:packages.
        return scope in self.scopes or (scope == "read:packages" and "write:packages" in self.scopes)

    @property
    def rate_key(self) -> str:
        return f"user {self.login}" if self.kind == "classic" else f"installation {self.login}"


INVALID = Token("", "", kind="invalid")  # a header was sent but names no token we know


@dataclass
class RegistryGrant:
    token: Token | None  # None: anonymous
    requested: dict[str, set[str]] = field(default_factory=dict)  # repo -> actions asked for
    granted: dict[str, set[str]] = field(default_factory=dict)  # repo -> actions given
    expires: float = 0.0
    direct: bool = False  # Bearer base64(PAT): no exchange, access decided per request


class GhcrEmulator:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        api_prefix: str = "",  # "/api/v3" to look like GitHub Enterprise Server
        html_base: str = "https://github.com",
        # 1.2 restore: "204 (unconfirmed status code; docs list the endpoint)"
        restore_status: int = 204,
        # 1.7: "deleted versions can be restored within 30 days"
        restore_window_days: int = 30,
        # 1.7: "Public package versions with more than 5,000 downloads cannot be deleted"
        download_limit: int = 5000,
        # 1.7: "Error status/body returned by the API in that case: unconfirmed (... plan for 400/403/422
        # with a JSON `message`)"
        download_limit_status: int = 400,
        # 1.7: "HEAD vs GET counting on ghcr: unconfirmed"
        head_counts_download: bool = False,
        # 1.4: "Max=100/default=30 is the general GitHub REST convention ... unconfirmed for this endpoint"
        max_per_page: int = 100,
        default_per_page: int = 30,
        # 1.4: "Ordering: newest first is commonly observed (unconfirmed; don't rely on it)"
        newest_first: bool = True,
        # 1.5: "`deleted_at` appears for versions listed with `state=deleted` (unconfirmed)"
        deleted_at_in_listing: bool = True,
        # 1.5: "`updated_at` changes when tags move (unconfirmed)"
        tag_move_touches_updated_at: bool = True,
        # 1.6: "`GITHUB_TOKEN` cannot list packages" (the status is not in the sheet)
        actions_list_status: int = 403,
        # 1.8: "Primary: PAT 5,000 req/h; GITHUB_TOKEN 1,000 req/h per repository"
        classic_rate_limit: int = 5000,
        actions_rate_limit: int = 1000,
        # 1.8: "snok notes these may be absent for GITHUB_TOKEN requests"
        actions_rate_headers: bool = True,
        # 1.8: "When exceeded: 403 or 429 ... (the 403-or-429 wording unconfirmed)"
        primary_status: int = 403,
        secondary_status: int = 403,
        # 1.8: "<=900 points/min per REST endpoint, where GET/HEAD/OPTIONS = 1 point and ... DELETE = 5"
        secondary_points: int = 900,
        secondary_window: float = 60.0,
        # Test trigger (not GitHub): refuse the (N+1)-th REST request with retry-after, once.
        secondary_after: int | None = None,
        secondary_retry_after: int = 60,
        # 1.9: 'Typical challenge values realm="https://ghcr.io/token",service="ghcr.io" ... unconfirmed'
        registry_service: str = "ghcr.io",
        # 1.9: 'JSON {"token": "...", "expires_in": N?}' (dataaxiom assumes 60 s when absent)
        token_expires_in: int | None = None,
        registry_token_ttl: int = 300,
        # 1.9 shortcut 2 (snok): "send Authorization: Bearer <base64(token)> directly ... without any exchange"
        accept_base64_pat: bool = True,
    ):
        self.clock = clock
        self.api_prefix = api_prefix
        self.html_base = html_base
        self.restore_status = restore_status
        self.restore_window_days = restore_window_days
        self.download_limit = download_limit
        self.download_limit_status = download_limit_status
        self.head_counts_download = head_counts_download
        self.max_per_page = max_per_page
        self.default_per_page = default_per_page
        self.newest_first = newest_first
        self.deleted_at_in_listing = deleted_at_in_listing
        self.tag_move_touches_updated_at = tag_move_touches_updated_at
        self.actions_list_status = actions_list_status
        self.classic_rate_limit = classic_rate_limit
        self.actions_rate_limit = actions_rate_limit
        self.actions_rate_headers = actions_rate_headers
        self.registry_service = registry_service
        self.token_expires_in = token_expires_in
        self.registry_token_ttl = registry_token_ttl
        self.accept_base64_pat = accept_base64_pat
        self.limits = RateLimits(
            clock,
            primary_status=primary_status,
            secondary_status=secondary_status,
            secondary_points=secondary_points,
            secondary_window=secondary_window,
            secondary_after=secondary_after,
            secondary_retry_after=secondary_retry_after,
        )
        self.store = Store()
        self.tokens: dict[str, Token] = {}
        self.grants: dict[str, RegistryGrant] = {}
        from tests.support.ghcr.registry import RegistrySide
        from tests.support.ghcr.rest import RestSide

        self.rest = Server(self._serialised(RestSide(self).handle))
        self.registry = Server(self._serialised(RegistrySide(self).handle))

    def _serialised(self, handle: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """One request at a time over the shared state: listings never see a half-done PUT or DELETE.
        No handler waits on anything, so this costs clients nothing but ordering."""

        def run(req: Request) -> Response:
            with self.store.lock:
                return handle(req)

        return run

    # -- life cycle ----------------------------------------------------------------------------
    def __enter__(self) -> GhcrEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.rest.start()
        self.registry.start()

    def stop(self) -> None:
        self.rest.stop()
        self.registry.stop()

    @property
    def api_url(self) -> str:
        """The REST base (what `--api-url` gets)."""
        return self.rest.url + self.api_prefix

    @property
    def registry_url(self) -> str:
        return self.registry.url

    @property
    def registry_host(self) -> str:
        return self.registry.url.removeprefix("http://")

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # -- configuration -------------------------------------------------------------------------
    def add_token(
        self,
        value: str,
        login: str,
        *,
        kind: str = "classic",
        scopes: tuple[str, ...] = ("read:packages", "write:packages", "delete:packages"),
        admin_on: tuple[str, ...] = (),
        read_on: tuple[str, ...] = (),
        packages_write: bool = True,
    ) -> Token:
        if kind == "classic":
            self.store.owner(login, "User")
        t = Token(
            value,
            login,
            kind,
            frozenset(scopes if kind == "classic" else ()),
            frozenset(admin_on),
            frozenset(read_on),
            packages_write,
        )
        self.tokens[value] = t
        return t

    def authenticate(self, header: str | None) -> Token | None:
        """Authorization: Bearer/token <value> -> Token; None when absent; INVALID when unknown."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return INVALID
        return self.tokens.get(value.strip(), INVALID)

    def token_from_base64(self, value: str) -> Token | None:
        try:
            return self.tokens.get(base64.b64decode(value, validate=True).decode())
        except (binascii.Error, UnicodeDecodeError):
            return None

    def rate_limit_for(self, token: Token | None) -> tuple[str, int]:
        if token is None or token is INVALID:
            return "anonymous 127.0.0.1", 60
        if token.kind == "actions":
            return token.rate_key, self.actions_rate_limit
        return token.rate_key, self.classic_rate_limit

    # -- access --------------------------------------------------------------------------------
    def can_read(self, token: Token | None, pkg: Package) -> bool:
        key = f"{pkg.owner}/{pkg.name}"
        if token is None or token is INVALID:
            return pkg.visibility == "public"
        if token.kind == "actions":
            return pkg.visibility == "public" or key in token.admin_on or key in token.read_on
        return pkg.visibility == "public" or self.store.is_member(token.login, pkg.owner)

    def can_admin(self, token: Token, pkg: Package) -> bool:
        if token.kind == "actions":
            return token.packages_write and f"{pkg.owner}/{pkg.name}" in token.admin_on
        return self.store.is_admin(token.login, pkg)

    def can_push(self, token: Token | None, owner: str, pkg: Package | None) -> bool:
        if token is None or token is INVALID:
            return False
        if token.kind == "actions":
            return token.packages_write and (pkg is None or f"{owner}/{pkg.name}" in token.admin_on)
        return token.has("write:packages") and self.store.is_member(token.login, owner)

    # -- what tests read -----------------------------------------------------------------------
    @property
    def rest_log(self) -> list[Logged]:
        return self.rest.log

    @property
    def registry_log(self) -> list[Logged]:
        return self.registry.log

    def manifest_gets(self) -> int:
        return sum(1 for r in self.registry.log if r.method == "GET" and "/manifests/" in r.path)

    def package(self, repo: str) -> Package:
        """`owner/name` (as on /v2) -> the package."""
        pkg = self.store.find(repo)
        if pkg is None:
            raise KeyError(repo)
        return pkg

    def version(self, repo: str, ref: str | int) -> Version:
        """A version by id, digest or tag (any state for ids and digests; tags only when active)."""
        pkg = self.package(repo)
        for v in pkg.versions.values():
            if ref in (v.id, v.digest) or (isinstance(ref, str) and v.state == "active" and ref in v.tags):
                return v
        raise KeyError(f"{repo}@{ref}")

    def downloads(self, repo: str, ref: str | int) -> int:
        return self.version(repo, ref).downloads
