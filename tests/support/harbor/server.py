"""HarborEmulator: Harbor v2's REST API (/api/v2.0) and its registry (/v2) on one loopback origin.

Every behaviour hosted-registries.md section 4 marks "unconfirmed" is a keyword argument whose
default is the sheet's best guess; the comment next to it quotes the sheet. Accounts are users with
a role per project (projectAdmin, maintainer, developer, guest) or robot accounts (`robot$name`,
`robot$project+name`) with explicit permissions; both authenticate with HTTP Basic.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.ghcr.httpbase import Logged, Request, Response, Server, json_response
from tests.support.harbor.model import Artifact, Repository, Store

ROLES = {
    "projectAdmin": frozenset({"pull", "push", "delete"}),
    "maintainer": frozenset({"pull", "push", "delete"}),
    "developer": frozenset({"pull", "push"}),
    "guest": frozenset({"pull"}),
}


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    admin: bool = False
    perms: dict[str, frozenset[str]] = field(default_factory=dict)  # project -> actions


INVALID = Account("", "")  # credentials were sent but match no account


def harbor_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """Harbor's error body on both sides: {"errors": [{"code", "message"}]}."""
    return json_response(status, {"errors": [{"code": code, "message": message}]}, headers)


class HarborEmulator:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        # "Repository name with `/` must be double URL-encoded in the path" (a single-encoded name
        # is split by the router and 404s); False: any encoding is accepted.
        enforce_double_encoding: bool = True,
        # "`page_size` (default 10, max 100 — max unconfirmed)"
        default_page_size: int = 10,
        max_page_size: int = 100,
        # "headers `X-Total-Count` and `Link` (rel next/prev) (standard Harbor; unconfirmed)"
        link_header: bool = True,
        total_count_header: bool = True,
        # "Never-pulled `pull_time` is the zero time `0001-01-01T00:00:00Z` (unconfirmed)"
        zero_pull_time: str | None = "0001-01-01T00:00:00.000Z",
        # "deleting the index deletes unreferenced children (unconfirmed)"
        children_follow_index: bool = True,
        # "Accessories (cosign signatures, notation, SBOM) are deleted with their subject (unconfirmed)"
        accessories_follow_subject: bool = True,
        # "Deleting a child still referenced by an index fails (412/403 — unconfirmed code)"
        referenced_child_status: int = 412,
        # "Immutable-tag rules can block (412, unconfirmed)"
        immutable_status: int = 412,
        # "`pull_time` is updated asynchronously on manifest GET (not HEAD — unconfirmed)"
        get_updates_pull_time: bool = True,
        head_updates_pull_time: bool = False,
        # "Harbor also supports the OCI referrers API from v2.8 (unconfirmed)"
        referrers_api: bool = True,
        # Not in the sheet (Harbor has no API rate limit of its own; a proxy in front may): the
        # (N+1)-th REST request after trip_after(N) is refused once with this status and Retry-After.
        rate_limit_status: int = 429,
    ):
        self.clock = clock
        self.enforce_double_encoding = enforce_double_encoding
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.link_header = link_header
        self.total_count_header = total_count_header
        self.zero_pull_time = zero_pull_time
        self.children_follow_index = children_follow_index
        self.accessories_follow_subject = accessories_follow_subject
        self.referenced_child_status = referenced_child_status
        self.immutable_status = immutable_status
        self.get_updates_pull_time = get_updates_pull_time
        self.head_updates_pull_time = head_updates_pull_time
        self.referrers_api = referrers_api
        self.rate_limit_status = rate_limit_status
        self.store = Store()
        self.accounts: dict[str, Account] = {}
        self.immutable: dict[str, list[str]] = {}  # project -> tag patterns (immutability rules)
        self.tokens: dict[str, tuple[Account | None, float]] = {}
        self._trip: tuple[int, int] | None = None  # (requests left before the refusal, retry-after)
        self._lock = threading.Lock()
        self.refusals = 0
        from tests.support.harbor.registry import RegistrySide
        from tests.support.harbor.rest import RestSide

        self.rest_side, self.registry_side = RestSide(self), RegistrySide(self)
        self.server = Server(self._handle)

    # -- life cycle ----------------------------------------------------------------------------
    def __enter__(self) -> HarborEmulator:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def host(self) -> str:
        return self.server.url.removeprefix("http://")

    @property
    def api_url(self) -> str:
        return self.url + "/api/v2.0"

    @property
    def log(self) -> list[Logged]:
        return self.server.log

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def _handle(self, req: Request) -> Response:
        with self.store.lock:
            if req.path.startswith("/api/"):
                refused = self._rate_limited()
                return refused or self.rest_side.handle(req)
            return self.registry_side.handle(req)

    def _rate_limited(self) -> Response | None:
        with self._lock:
            if self._trip is None:
                return None
            left, wait = self._trip
            if left > 0:
                self._trip = (left - 1, wait)
                return None
            self._trip = None
            self.refusals += 1
        return harbor_error(
            self.rate_limit_status, "TOO_MANY_REQUESTS", "too many requests", {"Retry-After": str(wait)}
        )

    def trip_after(self, n: int, retry_after: int = 1) -> None:
        """Refuse the (n+1)-th REST request from now, once, with Retry-After."""
        with self._lock:
            self._trip = (n, retry_after)

    # -- accounts ------------------------------------------------------------------------------
    def add_user(self, name: str, password: str, *, admin: bool = False, **roles: str) -> Account:
        a = Account(name, password, admin, {p: ROLES[r] for p, r in roles.items()})
        self.accounts[name] = a
        return a

    def add_robot(self, name: str, secret: str, perms: dict[str, tuple[str, ...]]) -> Account:
        """`name` as Harbor shows it: robot$ci (system) or robot$project+ci (project level)."""
        a = Account(name, secret, False, {p: frozenset(v) for p, v in perms.items()})
        self.accounts[name] = a
        return a

    def basic(self, header: str | None) -> Account | None:
        """Authorization: Basic -> the account; None when absent; INVALID when wrong."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return INVALID
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return INVALID
        a = self.accounts.get(user)
        return a if a is not None and a.password == password else INVALID

    def can(self, who: Account | None, project: str, action: str) -> bool:
        p = self.store.projects.get(project)
        if p is None or who is INVALID:
            return False
        if who is not None and who.admin:
            return True
        if action == "pull" and p.public:
            return True
        return who is not None and action in who.perms.get(project, frozenset())

    def is_immutable(self, repo: Repository, tag: str) -> bool:
        return any(fnmatch.fnmatchcase(tag, p) for p in self.immutable.get(repo.project, []))

    # -- what tests read -----------------------------------------------------------------------
    def repo(self, name: str) -> Repository:
        r = self.store.find(name)
        if r is None:
            raise KeyError(name)
        return r

    def artifact(self, repo: str, ref: str) -> Artifact | None:
        r = self.repo(repo)
        return r.by_digest(ref) if ref.startswith("sha256:") else r.by_tag(ref)

    def digests(self, repo: str) -> dict[str, list[str]]:
        return {a.digest: sorted(a.tags) for a in self.repo(repo).artifacts.values()}

    def requests(self, method: str, part: str) -> list[Logged]:
        return [x for x in self.log if x.method == method and part in x.path]
