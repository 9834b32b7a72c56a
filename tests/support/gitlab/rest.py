"""The REST side: /api/v4 registry endpoints (hosted-registries.md section 3) and /jwt/auth."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from tests.support.ghcr.httpbase import Request, Response, json_response
from tests.support.ghcr.model import iso
from tests.support.gitlab.model import Project, Repo
from tests.support.gitlab.server import Token

if TYPE_CHECKING:
    from tests.support.gitlab.server import GitLabEmulator

ID = r"(?P<id>[^/]+)"
RID = r"(?P<rid>\d+)"
ROUTES = [
    ("project_repos", re.compile(rf"^/api/v4/projects/{ID}/registry/repositories$")),
    ("group_repos", re.compile(rf"^/api/v4/groups/{ID}/registry/repositories$")),
    ("repo", re.compile(rf"^/api/v4/registry/repositories/{RID}$")),
    ("tags", re.compile(rf"^/api/v4/projects/{ID}/registry/repositories/{RID}/tags$")),
    ("tag", re.compile(rf"^/api/v4/projects/{ID}/registry/repositories/{RID}/tags/(?P<tag>[^/]+)$")),
]
INVALID = Token("", "", "invalid")


def _message(status: int, text: str) -> Response:
    return json_response(status, {"message": text})


class RestSide:
    def __init__(self, emu: GitLabEmulator):
        self.emu = emu
        self.store = emu.store

    def handle(self, req: Request) -> Response:
        if req.path == "/jwt/auth":
            return self.emu.registry_side.jwt_auth(req)
        token = self._token(req)
        refused, headers = self.emu.limits.check(token.value if token else "anonymous")
        if refused is not None:
            return refused
        resp = self._route(req, token)
        resp.headers.update(headers)
        return resp

    def _token(self, req: Request) -> Token | None:
        for name in ("PRIVATE-TOKEN", "JOB-TOKEN"):
            value = req.headers.get(name)
            if value is not None:
                t = self.emu.tokens.get(value.strip(), INVALID)
                return t if (t.kind == "job") == (name == "JOB-TOKEN") else INVALID
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            return self.emu.tokens.get(value.strip(), INVALID)
        return None

    def _route(self, req: Request, token: Token | None) -> Response:
        if token is INVALID:
            return _message(401, "401 Unauthorized")
        for kind, rx in ROUTES:
            m = rx.match(req.path)
            if m:
                return getattr(self, "_" + kind)(req, token, m.groupdict())
        return json_response(404, {"error": "404 Not Found"})

    # -- lookups -------------------------------------------------------------------------------
    def _readable(self, token: Token | None, project: Project) -> bool:
        if token is not None and token.kind != "job" and not token.has(*self.emu.read_scopes):
            return False
        return self.emu.can_read_project(token, project)

    def _project(self, token: Token | None, ident: str) -> Project | None:
        key = unquote(ident)
        p = next((p for p in self.store.projects.values() if str(p.id) == key or p.path == key), None)
        return p if p is not None and self._readable(token, p) else None

    def _repo_json(self, req: Request, repo: Repo) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": repo.id,
            "name": repo.short_name,
            "path": repo.path,
            "project_id": repo.project.id,
            "location": f"{self.emu.registry_host}/{repo.path}",
            "created_at": iso(repo.created_at),
            "cleanup_policy_started_at": None,
        }
        if req.arg("tags_count") == "true":
            doc["tags_count"] = len(repo.tag_map)
        if req.arg("tags") == "true":
            doc["tags"] = [self._tag_json(repo, t, details=False) for t in repo.tags()]
        return doc

    def _tag_json(self, repo: Repo, tag: str, *, details: bool) -> dict[str, Any]:
        t = repo.tag_map[tag]
        doc: dict[str, Any] = {
            "name": tag,
            "path": f"{repo.path}:{tag}",
            "location": f"{self.emu.registry_host}/{repo.path}:{tag}",
        }
        if not details:
            if self.emu.list_details:
                doc.update(digest=t.digest, created_at=iso(t.created_at))
            return doc
        m = json.loads(self.store.content[t.digest])
        config = m.get("config") or {}
        revision = config["digest"].removeprefix("sha256:") if config.get("digest") else None
        created: str | None = iso(t.created_at)
        if self.emu.created_at_source == "config":
            blob = self.store.content.get(config.get("digest", ""))
            created = json.loads(blob).get("created") if blob else None
        sizes = [x.get("size", 0) for x in [config, *(m.get("layers") or [])] if x]
        doc.update(
            revision=revision,
            short_revision=revision[:9] if revision else None,
            digest=t.digest,
            created_at=created,
            total_size=sum(sizes) if revision else None,
        )
        return doc

    # -- endpoints -----------------------------------------------------------------------------
    def _project_repos(self, req: Request, token: Token | None, p: dict[str, str]) -> Response:
        project = self._project(token, p["id"])
        if project is None:
            return _message(404, "404 Project Not Found")
        repos = sorted((r for r in self.store.repos.values() if r.project is project), key=lambda r: r.id)
        return self._page(req, [self._repo_json(req, r) for r in repos])

    def _group_repos(self, req: Request, token: Token | None, p: dict[str, str]) -> Response:
        key = unquote(p["id"])
        group = next((g for g, gid in self.store.groups.items() if key in (g, str(gid))), None)
        if group is None:
            return _message(404, "404 Group Not Found")
        deep = self.emu.group_includes_subgroups
        repos = [
            r
            for r in self.store.repos.values()
            if (r.project.path.rpartition("/")[0] == group or (deep and r.path.startswith(group + "/")))
            and self._readable(token, r.project)
        ]
        return self._page(req, [self._repo_json(req, r) for r in sorted(repos, key=lambda r: r.id)])

    def _repo(self, req: Request, token: Token | None, p: dict[str, str]) -> Response:
        repo = self.store.repo_by_id(int(p["rid"]))
        if repo is None or not self._readable(token, repo.project):
            return _message(404, "404 Repository Not Found")
        return json_response(200, self._repo_json(req, repo))

    def _tags(self, req: Request, token: Token | None, p: dict[str, str]) -> Response:
        found = self._find(token, p)
        if isinstance(found, Response):
            return found
        project, repo = found
        if req.method == "GET":
            return self._page(req, [self._tag_json(repo, t, details=False) for t in repo.tags()])
        if req.method != "DELETE":
            return _message(405, "405 Method Not Allowed")
        if token is None or not self.emu.can_delete(token, project):
            return _message(403, "403 Forbidden")
        params = dict(req.query)
        if "name_regex_delete" not in params and "name_regex" not in params:
            return json_response(400, {"error": "name_regex_delete is missing"})
        now = self.emu.clock()
        recent = [t for rid, t in self._bulk_times() if rid == repo.id and now - t < self.emu.bulk_interval]
        if recent:
            return _message(400, "This request has already been made. You can run this at most once an hour")
        self.emu.bulk_requests.append((repo.id, {**params, "_at": str(now)}))
        return Response(202, b"")

    def _bulk_times(self) -> list[tuple[int, float]]:
        return [(rid, float(p["_at"])) for rid, p in self.emu.bulk_requests]

    def _tag(self, req: Request, token: Token | None, p: dict[str, str]) -> Response:
        found = self._find(token, p)
        if isinstance(found, Response):
            return found
        project, repo = found
        tag = unquote(p["tag"])
        if tag not in repo.tag_map:
            return _message(404, "404 Tag Not Found")
        if req.method == "GET":
            return json_response(200, self._tag_json(repo, tag, details=True))
        if req.method != "DELETE":
            return _message(405, "405 Method Not Allowed")
        if token is None or not self.emu.can_delete(token, project):
            return _message(403, "403 Forbidden")
        self.emu.tag_deletes += 1
        after = self.emu.fail_delete_after
        if after is not None and self.emu.tag_deletes > after:
            self.emu.fail_delete_after = None
            return _message(500, "500 Internal Server Error")
        del repo.tag_map[tag]  # synchronous; the manifest stays until gc()
        return Response(200, b"")

    def _find(self, token: Token | None, p: dict[str, str]) -> tuple[Project, Repo] | Response:
        project = self._project(token, p["id"])
        if project is None:
            return _message(404, "404 Project Not Found")
        repo = self.store.repo_by_id(int(p["rid"]))
        if repo is None or repo.project is not project:
            return _message(404, "404 Repository Not Found")
        return project, repo

    def _page(self, req: Request, items: list[Any]) -> Response:
        """page/per_page with X-* headers and Link, as GitLab's offset pagination."""
        raw = req.arg("per_page") or ""
        per = (
            min(int(raw), self.emu.max_per_page)
            if raw.isdigit() and int(raw) > 0
            else self.emu.default_per_page
        )
        page = int(req.arg("page") or 1) if (req.arg("page") or "1").isdigit() else 1
        page = max(page, 1)
        pages = max(1, -(-len(items) // per))
        chunk = items[(page - 1) * per : page * per]
        nxt = str(page + 1) if page < pages else ""
        prev = str(page - 1) if page > 1 else ""
        headers = {"X-Page": str(page), "X-Per-Page": str(per), "X-Prev-Page": prev}
        if self.emu.next_page_header:
            headers["X-Next-Page"] = nxt
        if self.emu.totals:
            headers.update({"X-Total": str(len(items)), "X-Total-Pages": str(pages)})
        if self.emu.link_header:
            rest = [(k, v) for k, v in req.query if k != "page"]

            def link(n: int, rel: str) -> str:
                return (
                    f'<{self.emu.gitlab_url}{req.path}?{urlencode([*rest, ("page", str(n))])}>; rel="{rel}"'
                )

            links = ([link(page - 1, "prev")] if prev else []) + ([link(page + 1, "next")] if nxt else [])
            headers["Link"] = ", ".join([*links, link(1, "first"), link(pages, "last")])
        return json_response(200, chunk, headers)
