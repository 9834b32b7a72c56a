"""The REST side of the Harbor emulator: projects, repositories, artifacts and tags (/api/v2.0).

Pages are 1-based (`page`, `page_size`) with X-Total-Count and a Link header carrying the request's
own (still double-encoded) path; artifacts are rows with their tags, `references` (index children,
which are not rows) and, with `with_accessory=true`, `accessories` (signatures and SBOMs, which are
not rows either).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

from tests.support.ghcr.httpbase import Request, Response, json_response
from tests.support.harbor.model import Artifact, Repository
from tests.support.harbor.server import INVALID, Account, harbor_error

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborEmulator

BASE = "/api/v2.0"
ARTIFACTS = re.compile(
    r"^/api/v2\.0/projects/(?P<p>[^/]+)/repositories/(?P<r>[^/]+)/artifacts"
    r"(?:/(?P<ref>[^/]+)(?:/(?P<tags>tags)(?:/(?P<tag>[^/]+))?)?)?$"
)
REPOSITORIES = re.compile(r"^/api/v2\.0/projects/(?P<p>[^/]+)/repositories$")


def stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class RestSide:
    def __init__(self, emu: HarborEmulator):
        self.emu = emu
        self.store = emu.store

    def handle(self, req: Request) -> Response:
        who = self.emu.basic(req.headers.get("Authorization"))
        if who is INVALID:
            return harbor_error(401, "UNAUTHORIZED", "unauthorized")
        if req.path == f"{BASE}/projects" and req.method == "GET":
            names = [p for p in sorted(self.store.projects) if self.emu.can(who, p, "pull")]
            rows = [self._project(n) for n in names]
            return self._page(req, rows)
        m = REPOSITORIES.match(req.path)
        if m and req.method == "GET":
            project = unquote(m["p"])
            refused = self._access(who, project, "pull")
            if refused:
                return refused
            repos = self.store.projects[project].repositories.values()
            return self._page(req, [self._repository(r) for r in sorted(repos, key=lambda r: r.name)])
        m = ARTIFACTS.match(req.path)
        if m:
            return self._artifacts(req, who, m.groupdict())
        return harbor_error(404, "NOT_FOUND", f"no route for {req.method} {req.path}")

    # -- helpers -------------------------------------------------------------------------------
    def _access(self, who: Account | None, project: str, action: str) -> Response | None:
        p = self.store.projects.get(project)
        if p is None:
            return harbor_error(404, "NOT_FOUND", f"project {project} not found")
        if self.emu.can(who, project, action):
            return None
        if who is None:
            return harbor_error(401, "UNAUTHORIZED", "unauthorized")
        return harbor_error(403, "FORBIDDEN", "forbidden")

    def _repo_name(self, raw: str) -> str | None:
        """The repository part of the path: double-encoded (a/b -> a%252Fb)."""
        once = unquote(raw)
        if "/" in once and self.emu.enforce_double_encoding:
            return None  # Harbor's router sees a/b as two segments: no such route
        name = unquote(once)
        while not self.emu.enforce_double_encoding and unquote(name) != name:
            name = unquote(name)
        return name

    def _page(self, req: Request, rows: list[Any]) -> Response:
        size = req.arg("page_size")
        page = req.arg("page")
        n = min(int(size), self.emu.max_page_size) if size and size.isdigit() and int(size) > 0 else None
        n = n or self.emu.default_page_size
        k = int(page) if page and page.isdigit() and int(page) > 0 else 1
        chunk = rows[(k - 1) * n : k * n]
        headers: dict[str, str] = {}
        if self.emu.total_count_header:
            headers["X-Total-Count"] = str(len(rows))
        links = []
        others = [(a, b) for a, b in req.query if a not in ("page", "page_size")]
        if k > 1:
            links.append(
                f'<{req.path}?{urlencode([("page", k - 1), ("page_size", n), *others])}>; rel="prev"'
            )
        if k * n < len(rows):
            links.append(
                f'<{req.path}?{urlencode([("page", k + 1), ("page_size", n), *others])}>; rel="next"'
            )
        if links and self.emu.link_header:
            headers["Link"] = ", ".join(links)
        return json_response(200, chunk, headers)

    def _project(self, name: str) -> dict[str, Any]:
        p = self.store.projects[name]
        return {
            "project_id": p.id,
            "name": p.name,
            "metadata": {"public": "true" if p.public else "false"},
            "repo_count": len(p.repositories),
        }

    def _repository(self, r: Repository) -> dict[str, Any]:
        return {
            "id": r.id,
            "name": r.name,
            "project_id": self.store.projects[r.project].id,
            "artifact_count": len(self.store.top_level(r)),
        }

    def _time(self, t: dt.datetime | None) -> str | None:
        return stamp(t) if t is not None else self.emu.zero_pull_time

    def _row(self, r: Repository, a: Artifact, with_tag: bool, with_accessory: bool) -> dict[str, Any]:
        refs = [
            {
                "parent_id": a.id,
                "child_id": r.artifacts[d].id,
                "child_digest": d,
                "platform": e.get("platform"),
                "annotations": e.get("annotations"),
                "urls": None,
            }
            for d, e in self.store.children(r, a)
        ]
        tags = [
            {
                "id": a.id * 100 + i,
                "repository_id": r.id,
                "artifact_id": a.id,
                "name": t,
                "push_time": stamp(a.created_at),
                "pull_time": self._time(a.pull_time),
                "immutable": self.emu.is_immutable(r, t),
            }
            for i, t in enumerate(a.tags)
        ]
        accessories = [
            {
                "id": acc.id * 10,
                "artifact_id": acc.id,
                "subject_artifact_id": a.id,
                "subject_artifact_digest": a.digest,
                "subject_artifact_repo": r.name,
                "digest": acc.digest,
                "size": len(self.store.content[acc.digest]),
                "type": acc.accessory_type,
                "creation_time": stamp(acc.created_at),
            }
            for acc in self.store.accessories(r, a.digest)
        ]
        return {
            "id": a.id,
            "type": "IMAGE",
            "manifest_media_type": a.media_type,
            "media_type": a.media_type,
            "project_id": self.store.projects[r.project].id,
            "repository_id": r.id,
            "repository_name": r.name,
            "digest": a.digest,
            "size": len(self.store.content[a.digest]),
            "push_time": stamp(a.created_at),
            "pull_time": self._time(a.pull_time),
            "extra_attrs": {},
            "annotations": None,
            "references": refs or None,
            "tags": (tags or None) if with_tag else None,
            "accessories": (accessories or None) if with_accessory else None,
            "labels": None,
        }

    # -- artifacts -----------------------------------------------------------------------------
    def _artifacts(self, req: Request, who: Account | None, p: dict[str, str | None]) -> Response:
        project = unquote(p["p"] or "")
        name = self._repo_name(p["r"] or "")
        if name is None:
            return harbor_error(404, "NOT_FOUND", f"no route for {req.method} {req.path}")
        action = "delete" if req.method == "DELETE" else "pull"
        refused = self._access(who, project, action)
        if refused:
            return refused
        repo = self.store.find(f"{project}/{name}")
        if repo is None:
            return harbor_error(404, "NOT_FOUND", f"repository {project}/{name} not found")
        with_tag = req.arg("with_tag") != "false"
        with_acc = req.arg("with_accessory") == "true"
        if p["ref"] is None:
            if req.method != "GET":
                return harbor_error(405, "METHOD_NOT_ALLOWED", "method not allowed")
            rows = sorted(self.store.top_level(repo), key=lambda a: a.id, reverse=True)
            rows = self._query(rows, req.arg("q"))
            return self._page(req, [self._row(repo, a, with_tag, with_acc) for a in rows])
        ref = unquote(p["ref"])
        a = repo.by_digest(ref) if ref.startswith("sha256:") else repo.by_tag(ref)
        if a is None:
            return harbor_error(404, "NOT_FOUND", f"artifact {project}/{name}@{ref} not found")
        if p["tags"] is None:
            if req.method == "GET":
                return json_response(200, self._row(repo, a, with_tag, with_acc))
            if req.method == "DELETE":
                return self._delete(repo, a)
        elif p["tag"] is None and req.method == "GET":
            return self._page(req, self._row(repo, a, True, False)["tags"] or [])
        elif p["tag"] is not None and req.method == "DELETE":
            return self._delete_tag(repo, a, unquote(p["tag"]))
        return harbor_error(405, "METHOD_NOT_ALLOWED", "method not allowed")

    def _query(self, rows: list[Artifact], q: str | None) -> list[Artifact]:
        if not q:
            return rows
        key, _, value = q.partition("=")
        if key == "tags":
            return [a for a in rows if (not a.tags) == (value == "nil")]
        if key == "digest":
            return [a for a in rows if a.digest == value]
        return rows

    def _delete(self, repo: Repository, a: Artifact) -> Response:
        parents = self.store.parents(repo, a.digest)
        if parents:
            return harbor_error(
                self.emu.referenced_child_status,
                "PRECONDITION",
                f"the deleting artifact is referenced by others: {parents[0].digest}",
            )
        locked = [t for t in a.tags if self.emu.is_immutable(repo, t)]
        if locked:
            return harbor_error(
                self.emu.immutable_status,
                "PRECONDITION",
                f"the operation isn't allowed on the immutable tag {locked[0]} (tag immutability rule)",
            )
        self.store.remove(
            repo,
            a,
            accessories=self.emu.accessories_follow_subject,
            children=self.emu.children_follow_index,
        )
        return Response(200)

    def _delete_tag(self, repo: Repository, a: Artifact, tag: str) -> Response:
        if tag not in a.tags:
            return harbor_error(404, "NOT_FOUND", f"tag {tag} not found on {a.digest}")
        if self.emu.is_immutable(repo, tag):
            return harbor_error(
                self.emu.immutable_status,
                "PRECONDITION",
                f"the operation isn't allowed on the immutable tag {tag} (tag immutability rule)",
            )
        a.tags.remove(tag)
        return Response(200)


def encode_repository(name: str) -> str:
    """What a client must put in the path: the name URL-encoded twice."""
    return quote(quote(name, safe=""), safe="")
