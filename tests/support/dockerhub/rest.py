"""The hub.docker.com side: login, repositories, tags (hosted-registries.md 2.1-2.3, 2.6)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from tests.support.dockerhub.model import Repo, Tag, is_token
from tests.support.ghcr.httpbase import Request, Response, json_response
from tests.support.ghcr.model import iso

if TYPE_CHECKING:
    from tests.support.dockerhub.server import HubEmulator, Jwt

SEG = r"([^/]+)"
REPOS = re.compile(rf"^/v2/namespaces/{SEG}/repositories/?$")
TAGS = re.compile(rf"^/v2/(?:namespaces/{SEG}/repositories|repositories/{SEG})/{SEG}/tags/?$")
TAG = re.compile(rf"^/v2/(?:namespaces/{SEG}/repositories|repositories/{SEG})/{SEG}/tags/{SEG}/?$")


def _detail(status: int, text: str, extra: dict[str, Any] | None = None) -> Response:
    return json_response(status, {"detail": text, "message": text, **(extra or {})})


def _body(req: Request) -> dict[str, Any]:
    try:
        doc = json.loads(req.body or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


class RestSide:
    def __init__(self, emu: HubEmulator):
        self.emu = emu
        self.store = emu.store

    def handle(self, req: Request) -> Response:
        refusal, headers = self.emu.api_rate()
        if refusal is not None:
            return refusal
        resp = self._route(req)
        resp.headers.update(headers)
        return resp

    def _route(self, req: Request) -> Response:
        path = req.path
        if path == "/v2/auth/token" and req.method == "POST":
            return self._auth_token(req) if self.emu.new_login else _detail(404, "Not found")
        if path == "/v2/users/login" and req.method == "POST":
            return self._legacy_login(req)
        who = self.emu.bearer(req.headers.get("Authorization"))
        if who is False:
            return _detail(401, "Authentication credentials were not provided or have expired.")
        jwt = who if who else None
        m = REPOS.match(path)
        if m and req.method == "GET":
            return self._repositories(req, unquote(m.group(1)), jwt)
        m = TAGS.match(path)
        if m and req.method == "GET":
            return self._tags(req, unquote(m.group(1) or m.group(2)), unquote(m.group(3)), jwt)
        m = TAG.match(path)
        if m and req.method == "DELETE":
            return self._delete_tag(
                unquote(m.group(1) or m.group(2)), unquote(m.group(3)), unquote(m.group(4)), jwt
            )
        return _detail(404, "Not found")

    # login ------------------------------------------------------------------------------------
    def _auth_token(self, req: Request) -> Response:
        doc = _body(req)
        name, secret = str(doc.get("identifier") or ""), str(doc.get("secret") or "")
        a = self.store.accounts.get(name)
        j = self.emu.login(name, secret)
        if j is None or (a is not None and a.two_factor and not is_token(secret)):
            return _detail(401, "Incorrect authentication credentials")
        return json_response(200, {"access_token": self.emu.issue(j)})

    def _legacy_login(self, req: Request) -> Response:
        doc = _body(req)
        name, secret = str(doc.get("username") or ""), str(doc.get("password") or "")
        a = self.store.accounts.get(name)
        if a is not None and a.two_factor and secret in a.secrets and not is_token(secret):
            return _detail(
                401, "Require secondary authentication on MFA enabled account", {"login_2fa_token": "x"}
            )
        j = self.emu.login(name, secret)
        if j is None:
            return _detail(401, "Incorrect authentication credentials")
        return json_response(200, {"token": self.emu.issue(j)})

    # listings ---------------------------------------------------------------------------------
    def _page(self, req: Request, items: list[dict[str, Any]]) -> Response:
        size_arg, page_arg = req.arg("page_size"), req.arg("page")
        size = int(size_arg) if size_arg and size_arg.isdigit() else self.emu.default_page_size
        if size < 1 or size > self.emu.max_page_size:
            return _detail(400, f"page_size must be between 1 and {self.emu.max_page_size}")
        page = int(page_arg) if page_arg and page_arg.isdigit() and int(page_arg) > 0 else 1
        chunk = items[(page - 1) * size : page * size]
        if not chunk and page > 1:
            return _detail(404, "That page contains no results")
        nxt = (
            f"{self.emu.rest.url}{req.path}?page={page + 1}&page_size={size}"
            if page * size < len(items)
            else None
        )
        prev = f"{self.emu.rest.url}{req.path}?page={page - 1}&page_size={size}" if page > 1 else None
        return json_response(200, {"count": len(items), "next": nxt, "previous": prev, "results": chunk})

    def _visible(self, repo: Repo | None, jwt: Jwt | None) -> Response | None:
        if repo is None or not self.emu.may(
            jwt.account if jwt else None, jwt.access if jwt else "", repo, "pull"
        ):
            return _detail(404, "Object not found")
        return None

    def _repositories(self, req: Request, ns: str, jwt: Jwt | None) -> Response:
        if ns not in self.store.accounts:
            return _detail(404, "Object not found")
        rows = [
            {"name": r.name, "namespace": r.namespace, "is_private": r.private, "repository_type": "image"}
            for r in sorted(self.store.repos.values(), key=lambda r: r.name)
            if r.namespace == ns and self._visible(r, jwt) is None
        ]
        return self._page(req, rows)

    def _tags(self, req: Request, ns: str, name: str, jwt: Jwt | None) -> Response:
        repo = self.store.find(f"{ns}/{name}")
        refused = self._visible(repo, jwt)
        if refused or repo is None:
            return refused or _detail(404, "Object not found")
        tags = sorted(repo.tags.values(), key=lambda t: t.name)
        if self.emu.newest_first:
            tags.sort(key=lambda t: t.last_pushed, reverse=True)
        return self._page(req, [self._tag_json(repo, t) for t in tags])

    def _tag_json(self, repo: Repo, t: Tag) -> dict[str, Any]:
        stored = repo.manifests[t.digest]
        images = self._images(repo, t.digest)
        return {
            "id": t.id,
            "name": t.name,
            "repository": 99,
            "creator": 7,
            "last_updater": 7,
            "last_updater_username": "ci-bot",
            "v2": "true",
            "digest": t.digest,
            "media_type": stored.media_type,
            "content_type": "image",
            "full_size": sum(i["size"] for i in images),
            "last_updated": iso(t.last_pushed),
            "tag_status": "active",
            "tag_last_pulled": iso(t.last_pulled) if t.last_pulled else None,
            "tag_last_pushed": iso(t.last_pushed),
            "images": images if self.emu.images_array else (images[0] if images else None),
        }

    def _images(self, repo: Repo, digest: str) -> list[dict[str, Any]]:
        doc = json.loads(self.store.content[digest])
        if "manifests" in doc:
            entries = [
                (m["digest"], m.get("platform") or {})
                for m in doc["manifests"]
                if (m.get("platform") or {}).get("os") not in (None, "unknown")
                and m["digest"] in repo.manifests
            ]
        else:
            cfg = json.loads(self.store.content[doc["config"]["digest"]])
            entries = [(digest, {"os": cfg.get("os"), "architecture": cfg.get("architecture")})]
        out = []
        for d, p in entries:
            s = repo.manifests[d]
            body = json.loads(self.store.content[d])
            size = sum(x.get("size", 0) for x in body.get("layers") or [])
            out.append(
                {
                    "architecture": p.get("architecture"),
                    "os": p.get("os"),
                    "variant": p.get("variant"),
                    "digest": d,
                    "size": size,
                    "status": "active",
                    "last_pulled": iso(s.last_pulled) if s.last_pulled else None,
                    "last_pushed": iso(s.created_at),
                    "features": "",
                    "os_features": "",
                    "os_version": None,
                }
            )
        return out

    # changes ----------------------------------------------------------------------------------
    def _delete_tag(self, ns: str, name: str, tag: str, jwt: Jwt | None) -> Response:
        repo = self.store.find(f"{ns}/{name}")
        if repo is None:
            return _detail(404, "Object not found")
        if jwt is None:
            return _detail(401, "Authentication credentials were not provided.")
        if not self.emu.may(jwt.account, jwt.access, repo, "delete"):
            return _detail(403, "You do not have permission to perform this action.")
        if not self.store.delete_tag(repo, tag, drop_untagged=self.emu.untag_deletes_manifest):
            return _detail(404, "Object not found")
        return Response(self.emu.tag_delete_status)
