"""The api.github.com side: users, packages and package versions (hosted-registries.md 1.2-1.8)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

from tests.support.ghcr.httpbase import Request, Response, json_response
from tests.support.ghcr.model import Owner, Package, Version, iso
from tests.support.ghcr.server import INVALID, Token

if TYPE_CHECKING:
    from tests.support.ghcr.server import GhcrEmulator

DOCS = "https://docs.github.com/rest/packages/packages"


def _error(status: int, message: str, docs: str = DOCS) -> Response:
    return json_response(status, {"message": message, "documentation_url": docs})


def _route(segments: list[str]) -> tuple[str, dict[str, str]] | None:
    """Raw path segments -> (endpoint template, parameters). The package name is ONE segment."""
    s = segments
    if s == ["user"]:
        return "/user", {}
    if s == ["rate_limit"]:
        return "/rate_limit", {}
    if len(s) == 2 and s[0] == "users":
        return "/users/{username}", {"login": unquote(s[1])}
    if s[:1] == ["user"]:
        base, params, rest = "/user", {"form": "user"}, s[1:]
    elif len(s) >= 2 and s[0] in ("orgs", "users"):
        base, rest = f"/{s[0]}/{{owner}}", s[2:]
        params = {"form": s[0], "owner": unquote(s[1])}
    else:
        return None
    if rest == ["packages"]:
        return base + "/packages", params
    if len(rest) < 3 or rest[:2] != ["packages", "container"]:
        return None
    params["name"] = unquote(rest[2])
    tail = rest[3:]
    t = base + "/packages/container/{package_name}"
    if not tail:
        return t, params
    if tail == ["versions"]:
        return t + "/versions", params
    if len(tail) in (2, 3) and tail[0] == "versions" and tail[1].isdigit():
        params["id"] = tail[1]
        if len(tail) == 2:
            return t + "/versions/{package_version_id}", params
        if tail[2] == "restore":
            return t + "/versions/{package_version_id}/restore", params
    return None


class RestSide:
    def __init__(self, emu: GhcrEmulator):
        self.emu = emu
        self.store = emu.store

    def handle(self, req: Request) -> Response:
        emu = self.emu
        path = req.path
        if emu.api_prefix and path.startswith(emu.api_prefix + "/"):
            path = path[len(emu.api_prefix) :]
        route = _route([p for p in path.split("/")[1:]])
        token = emu.authenticate(req.headers.get("Authorization"))
        key, limit = emu.rate_limit_for(token)
        endpoint = f"{req.method} {route[0] if route else path}"
        if route and route[0] == "/rate_limit":
            refusal, headers = None, emu.limits.headers(key, limit)
        else:
            refusal, headers = emu.limits.check(key, limit, req.method, endpoint)
        if token is INVALID:
            resp = _error(401, "Bad credentials", "https://docs.github.com/rest")
        elif refusal is not None:
            resp = refusal
        elif route is None:
            resp = _error(404, "Not Found", "https://docs.github.com/rest")
        else:
            resp = self._dispatch(req, token, route[0], route[1], path)
        if token is not None and token.kind == "actions" and not emu.actions_rate_headers:
            headers = {}
        resp.headers.update(headers)
        if token is not None and token.kind == "classic":
            resp.headers["X-OAuth-Scopes"] = ", ".join(sorted(token.scopes))
        resp.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        return resp

    # -- dispatch ------------------------------------------------------------------------------
    def _dispatch(
        self, req: Request, token: Token | None, template: str, p: dict[str, str], path: str
    ) -> Response:
        m = req.method
        if template == "/users/{username}" and m == "GET":
            o = self.store.owners.get(p["login"])
            return json_response(200, self._owner_json(o)) if o else _error(404, "Not Found")
        if template == "/rate_limit" and m == "GET":
            return self._rate_limit(token)
        if token is None:
            return _error(401, "Requires authentication", "https://docs.github.com/rest")
        if template == "/user" and m == "GET":
            if token.kind == "actions":
                return _error(403, "Resource not accessible by integration")
            return json_response(200, self._owner_json(self.store.owners[token.login]))
        owner, refusal = self._owner(token, p)
        if refusal is not None:
            return refusal
        assert owner is not None
        if template.endswith("/packages"):
            return self._list_packages(req, token, owner, path) if m == "GET" else _error(404, "Not Found")
        if not token.has("read:packages") and token.kind == "classic":
            return _error(403, "You need at least read:packages scope to list packages.")
        pkg = owner.packages.get(p["name"])
        if pkg is None or not pkg.versions or not self.emu.can_read(token, pkg):
            return _error(404, "Package not found.")
        if template.endswith("{package_name}"):
            return json_response(200, self._package_json(pkg)) if m == "GET" else _error(404, "Not Found")
        if template.endswith("/versions"):
            return self._list_versions(req, pkg, path) if m == "GET" else _error(404, "Not Found")
        v = pkg.versions.get(int(p["id"]))
        if template.endswith("/restore"):
            return self._restore(token, pkg, v) if m == "POST" else _error(404, "Not Found")
        if m == "GET":
            if v is None or v.state != "active":
                return _error(404, "Not Found")
            return json_response(200, self._version_json(pkg, v))
        if m == "DELETE":
            return self._delete(token, pkg, v)
        return _error(404, "Not Found")

    def _owner(self, token: Token, p: dict[str, str]) -> tuple[Owner | None, Response | None]:
        """The path's owner form: /orgs/{org} must be an org, /users/{u} a user, /user the token's login."""
        if p["form"] == "user":
            if token.kind == "actions":
                return None, _error(403, "Resource not accessible by integration")
            return self.store.owners[token.login], None
        o = self.store.owners.get(p["owner"])
        wanted = "Organization" if p["form"] == "orgs" else "User"
        if o is None or o.type != wanted:
            return None, _error(404, "Not Found")
        return o, None

    # -- handlers ------------------------------------------------------------------------------
    def _list_packages(self, req: Request, token: Token, owner: Owner, path: str) -> Response:
        if token.kind == "actions":
            return _error(self.emu.actions_list_status, "Resource not accessible by integration")
        if not token.has("read:packages"):
            return _error(403, "You need at least read:packages scope to list packages.")
        kind = req.arg("package_type")
        if kind is None:
            return _error(422, "Validation Failed: package_type is required")
        wanted = req.arg("visibility")
        pkgs = [
            pkg
            for pkg in owner.packages.values()
            if kind == "container"
            and pkg.active()
            and self.emu.can_read(token, pkg)
            and wanted in (None, pkg.visibility)
        ]
        pkgs.sort(key=lambda x: x.name)
        page, link = self._paginate(req, pkgs, path)
        return json_response(200, [self._package_json(x) for x in page], {"Link": link} if link else {})

    def _list_versions(self, req: Request, pkg: Package, path: str) -> Response:
        state = req.arg("state") or "active"
        if state not in ("active", "deleted"):
            return _error(422, "Validation Failed: state must be active or deleted")
        versions = [v for v in pkg.versions.values() if v.state == state]
        versions.sort(key=lambda v: (v.created_at, v.id), reverse=self.emu.newest_first)
        page, link = self._paginate(req, versions, path)
        body = [self._version_json(pkg, v) for v in page]
        return json_response(200, body, {"Link": link} if link else {})

    def _delete(self, token: Token, pkg: Package, v: Version | None) -> Response:
        if token.kind == "classic" and not token.has("delete:packages"):
            return _error(
                403, "You need delete:packages and read:packages scopes to delete a package version."
            )
        if not self.emu.can_admin(token, pkg):
            return _error(403, "You must have admin permissions on this package to delete a package version.")
        if v is None or v.state != "active":
            return _error(404, "Not Found")
        if pkg.visibility == "public" and v.downloads > self.emu.download_limit:
            return _error(
                self.emu.download_limit_status,
                f"Publicly visible package versions with more than {self.emu.download_limit:,} downloads "
                "cannot be deleted. Contact GitHub support for further assistance.",
            )
        self.store.delete_version(v, self.emu.now())
        return Response(204)

    def _restore(self, token: Token, pkg: Package, v: Version | None) -> Response:
        if token.kind == "classic" and not token.has("write:packages"):
            return _error(
                403, "You need write:packages and read:packages scopes to restore a package version."
            )
        if not self.emu.can_admin(token, pkg):
            return _error(
                403, "You must have admin permissions on this package to restore a package version."
            )
        window = dt.timedelta(days=self.emu.restore_window_days)
        if (
            v is None
            or v.state != "deleted"
            or v.deleted_at is None
            or self.emu.now() - v.deleted_at > window
        ):
            return _error(404, "Not Found")
        self.store.restore_version(pkg, v)
        if self.emu.restore_status == 204:
            return Response(204)
        return json_response(self.emu.restore_status, self._version_json(pkg, v))

    def _rate_limit(self, token: Token | None) -> Response:
        key, limit = self.emu.rate_limit_for(token)
        h = self.emu.limits.headers(key, limit)
        core = {
            "limit": limit,
            "remaining": int(h["x-ratelimit-remaining"]),
            "used": int(h["x-ratelimit-used"]),
            "reset": int(h["x-ratelimit-reset"]),
            "resource": "core",
        }
        return json_response(200, {"resources": {"core": core}, "rate": core})

    # -- pagination and shapes -----------------------------------------------------------------
    def _paginate(self, req: Request, items: list[Any], path: str) -> tuple[list[Any], str | None]:
        """per_page (capped), 1-based page, and an RFC 5988 Link header as GitHub writes it."""
        emu = self.emu
        per_page = _int(req.arg("per_page"), emu.default_per_page)
        per_page = min(max(per_page, 1), emu.max_per_page)
        page = max(_int(req.arg("page"), 1), 1)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]

        def url(n: int) -> str:
            q = [(k, v) for k, v in req.query if k != "page"] + [("page", str(n))]
            return f"{emu.rest.url}{emu.api_prefix}{path}?{urlencode(q)}"

        links = []
        if page > 1:
            links.append(f'<{url(min(page - 1, last))}>; rel="prev"')
        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
        return chunk, ", ".join(links) or None

    def _owner_json(self, o: Owner) -> dict[str, Any]:
        return {
            "login": o.login,
            "id": o.id,
            "type": o.type,
            "site_admin": False,
            "url": f"{self.emu.api_url}/users/{o.login}",
            "html_url": f"{self.emu.html_base}/{o.login}",
        }

    def _bases(self, pkg: Package) -> tuple[str, str]:
        """(REST base, HTML base) of the package, in the form GitHub uses for its owner's type."""
        o = self.store.owners[pkg.owner]
        form = "orgs" if o.type == "Organization" else "users"
        return f"{self.emu.api_url}/{form}/{o.login}", f"{self.emu.html_base}/{form}/{o.login}"

    def _package_json(self, pkg: Package) -> dict[str, Any]:
        api, html = self._bases(pkg)
        enc = quote(pkg.name, safe="")
        return {
            "id": pkg.id,
            "name": pkg.name,
            "package_type": "container",
            "owner": self._owner_json(self.store.owners[pkg.owner]),
            "version_count": len(pkg.active()),
            "visibility": pkg.visibility,
            "url": f"{api}/packages/container/{enc}",
            "html_url": f"{html}/packages/container/package/{enc}",
            "created_at": iso(pkg.created_at),
            "updated_at": iso(pkg.updated_at()),
        }

    def _version_json(self, pkg: Package, v: Version) -> dict[str, Any]:
        api, html = self._bases(pkg)
        enc = quote(pkg.name, safe="")
        doc: dict[str, Any] = {
            "id": v.id,
            "name": v.digest,
            "url": f"{api}/packages/container/{enc}/versions/{v.id}",
            "package_html_url": f"{html}/packages/container/package/{enc}",
            "html_url": f"{html}/packages/container/{enc}/{v.id}",
            "created_at": iso(v.created_at),
            "updated_at": iso(v.updated_at),
            "metadata": {"package_type": "container", "container": {"tags": list(v.tags)}},
        }
        if v.state == "deleted" and v.deleted_at is not None and self.emu.deleted_at_in_listing:
            doc["deleted_at"] = iso(v.deleted_at)
        return doc


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
