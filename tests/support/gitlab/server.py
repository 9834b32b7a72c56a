"""GitLabEmulator: GitLab's REST API (/api/v4, /jwt/auth) and its registry (/v2) on loopback.

Every behaviour hosted-registries.md section 3 marks "unconfirmed" (or leaves out) is a keyword
argument whose default is the best guess; the comment next to it quotes the sheet or says where
the guess comes from. docs/emulators.md lists them.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.ghcr.httpbase import Logged, Request, Response, Server, json_response
from tests.support.ghcr.server import RegistryGrant
from tests.support.gitlab.model import Project, Repo, Store

GUEST, REPORTER, DEVELOPER, MAINTAINER = 10, 20, 30, 40


@dataclass(frozen=True)
class Token:
    """A personal/project/group access token (scopes) or a CI job token (its project only)."""

    value: str
    user: str
    kind: str = "personal"  # "personal" | "job"
    scopes: frozenset[str] = frozenset({"api"})
    project: str | None = None  # job: the job's project

    def has(self, *scopes: str) -> bool:
        return self.kind == "job" or bool(self.scopes & set(scopes))


@dataclass
class Window:
    start: float
    used: int = 0


@dataclass
class RateLimits:
    """GitLab's RateLimit-* headers and 429 (not in the sheet: GitLab's documented convention)."""

    clock: Callable[[], float]
    limit: int
    window: float
    retry_after: bool
    windows: dict[str, Window] = field(default_factory=dict)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, key: str) -> tuple[Response | None, dict[str, str]]:
        with self.lock:
            now = self.clock()
            w = self.windows.get(key)
            if w is None or now >= w.start + self.window:
                w = self.windows[key] = Window(now)
            reset = math.ceil(w.start + self.window)
            refuse = w.used >= self.limit
            if not refuse:
                w.used += 1
            headers = {
                "RateLimit-Limit": str(self.limit),
                "RateLimit-Observed": str(w.used),
                "RateLimit-Remaining": str(max(0, self.limit - w.used)),
                "RateLimit-Reset": str(reset),
                "RateLimit-ResetTime": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reset)),
            }
            if not refuse:
                return None, headers
            self.refused += 1
            if self.retry_after:
                headers["Retry-After"] = str(max(1, reset - math.floor(now)))
            return json_response(429, {"message": "Retry later"}, headers), headers


class GitLabEmulator:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        # 3: "per_page (default 20, max 100)"
        default_per_page: int = 20,
        max_per_page: int = 100,
        # 3: "headers X-Page, X-Per-Page, X-Next-Page, ... and RFC 5988 Link"; either may be absent
        link_header: bool = True,
        next_page_header: bool = True,
        # 3: "X-Total, X-Total-Pages (totals omitted for very large sets)"
        totals: bool = True,
        # 3: "Newer GitLab with the metadata database adds richer list data; unconfirmed": the tag
        # list then carries digest and created_at, and no detail request is needed
        list_details: bool = False,
        # 3: tag details' created_at (not in the sheet which time): "push" = when the tag was
        # pushed (metadata database); "config" = the image config's created, null for an index
        created_at_source: str = "push",
        # 3: "GET /groups/:id/registry/repositories" (whether subgroups' projects count: unconfirmed)
        group_includes_subgroups: bool = True,
        # 3: "read-only listing works with read_api/read_registry - unconfirmed"
        read_scopes: tuple[str, ...] = ("api", "read_api"),
        # 3: "JOB-TOKEN: $CI_JOB_TOKEN in CI" (whether it may delete tags: unconfirmed)
        job_token_can_delete: bool = True,
        # 3: "Rate limited: once per hour per repository; extra calls get 400"
        bulk_interval: float = 3600.0,
        # GitLab's registry token flow (not in the sheet): a job token needs the user
        # gitlab-ci-token; an access token is checked, not the user name sent with it
        registry_checks_username: bool = False,
        registry_service: str = "container_registry",
        token_expires_in: int | None = 300,  # GitLab docs: registry tokens last 5 minutes
        registry_token_ttl: int = 300,
        # 3: "/v2 OCI DELETE ... supported ... (unconfirmed)"; regcollect never sends it
        v2_delete: bool = True,
        # GitLab.com's API limits (not in the sheet): RateLimit-* headers, 429, Retry-After
        rate_limit: int = 2000,
        rate_window: float = 60.0,
        retry_after: bool = True,
        # Test trigger (not GitLab): the (N+1)-th tag DELETE answers 500, once.
        fail_delete_after: int | None = None,
    ):
        self.clock = clock
        self.default_per_page = default_per_page
        self.max_per_page = max_per_page
        self.link_header = link_header
        self.next_page_header = next_page_header
        self.totals = totals
        self.list_details = list_details
        self.created_at_source = created_at_source
        self.group_includes_subgroups = group_includes_subgroups
        self.read_scopes = read_scopes
        self.job_token_can_delete = job_token_can_delete
        self.bulk_interval = bulk_interval
        self.registry_checks_username = registry_checks_username
        self.registry_service = registry_service
        self.token_expires_in = token_expires_in
        self.registry_token_ttl = registry_token_ttl
        self.v2_delete = v2_delete
        self.accept_base64_pat = False  # a ghcr.io shortcut; GitLab's registry only takes its JWTs
        self.head_counts_download = False
        self.tag_move_touches_updated_at = True
        self.fail_delete_after = fail_delete_after
        self.limits = RateLimits(clock, rate_limit, rate_window, retry_after)
        self.store = Store()
        self.tokens: dict[str, Token] = {}
        self.members: dict[tuple[str, str], int] = {}  # (group or project path, user) -> level
        self.grants: dict[str, RegistryGrant] = {}
        self.bulk_requests: list[tuple[int, dict[str, str]]] = []  # (repository id, params)
        self.tag_deletes = 0
        from tests.support.gitlab.registry import GitLabRegistrySide
        from tests.support.gitlab.rest import RestSide

        self.registry_side = GitLabRegistrySide(self)
        self.rest = Server(self._serialised(RestSide(self).handle))
        self.registry = Server(self._serialised(self.registry_side.handle))

    def _serialised(self, handle: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def run(req: Request) -> Response:
            with self.store.lock:
                return handle(req)

        return run

    def __enter__(self) -> GitLabEmulator:
        self.rest.start()
        self.registry.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.rest.stop()
        self.registry.stop()

    @property
    def gitlab_url(self) -> str:
        return self.rest.url

    @property
    def api_url(self) -> str:
        """What `--api-url` gets."""
        return self.rest.url + "/api/v4"

    @property
    def registry_url(self) -> str:
        return self.registry.url

    @property
    def registry_host(self) -> str:
        return self.registry.url.removeprefix("http://")

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # -- configuration -------------------------------------------------------------------------
    def add_token(self, value: str, user: str, *, scopes: tuple[str, ...] = ("api",)) -> Token:
        t = Token(value, user, "personal", frozenset(scopes))
        self.tokens[value] = t
        return t

    def add_job_token(self, value: str, user: str, project: str) -> Token:
        t = Token(value, user, "job", frozenset(), project)
        self.tokens[value] = t
        return t

    def member(self, path: str, user: str, level: int) -> None:
        self.members[(path, user)] = level

    def gc(self) -> list[str]:
        return self.store.gc()

    # -- access --------------------------------------------------------------------------------
    def level(self, token: Token | None, project: Project) -> int:
        if token is None:
            return 0
        if token.kind == "job" and token.project != project.path:
            return REPORTER if project.visibility == "public" else 0
        found = [
            lvl
            for (path, user), lvl in self.members.items()
            if user == token.user and (project.path == path or project.path.startswith(path + "/"))
        ]
        return max(found, default=0)

    def can_read_project(self, token: Token | None, project: Project) -> bool:
        if project.visibility == "public":
            return True
        return token is not None and self.level(token, project) >= REPORTER

    def can_read(self, token: Token | None, repo: Repo) -> bool:
        """/v2 pull."""
        if token is not None and not token.has("api", "read_registry", "write_registry"):
            return repo.project.visibility == "public"
        return self.can_read_project(token, repo.project)

    def can_push(self, token: Token | None, owner: str, repo: Repo | None) -> bool:
        if token is None or repo is None or not token.has("api", "write_registry"):
            return False
        return self.level(token, repo.project) >= DEVELOPER

    def can_delete(self, token: Token, project: Project) -> bool:
        if token.kind == "job" and (not self.job_token_can_delete or token.project != project.path):
            return False
        return token.has("api") and self.level(token, project) >= DEVELOPER

    # -- what tests read -----------------------------------------------------------------------
    @property
    def rest_log(self) -> list[Logged]:
        return self.rest.log

    @property
    def registry_log(self) -> list[Logged]:
        return self.registry.log

    def detail_requests(self) -> int:
        return sum(1 for r in self.rest.log if r.method == "GET" and "/tags/" in r.path)

    def repo(self, path: str) -> Repo:
        r = self.store.find(path)
        if r is None:
            raise KeyError(path)
        return r

    def tags(self, path: str) -> dict[str, str]:
        return {t.name: t.digest for t in self.repo(path).tag_map.values()}
