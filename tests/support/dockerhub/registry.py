"""The registry-1.docker.io side: /v2 with its token service (auth.docker.io here at /token),
manifests, blobs, uploads and tags (hosted-registries.md 2.5, 2.6).

A manifest GET is a pull (counted per account, `ratelimit-*` headers, 429 past the limit); HEAD
is free. Manifest DELETE answers 202 for an unreferenced, untagged manifest, 403 otherwise, or
405 UNSUPPORTED where the emulator is told this Hub does not take it. No referrers API.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import TYPE_CHECKING

from tests.support.dockerhub.model import MANIFEST_TYPES, Repo, digest_of
from tests.support.dockerhub.server import Grant
from tests.support.ghcr.httpbase import Request, Response, json_response, oci_error, v2_routes

if TYPE_CHECKING:
    from tests.support.dockerhub.server import HubEmulator

ROUTES = v2_routes()
WINDOW = 21600


class RegistrySide:
    def __init__(self, emu: HubEmulator):
        self.emu = emu
        self.store = emu.store
        self.uploads: dict[str, tuple[str, bytearray]] = {}

    def handle(self, req: Request) -> Response:
        if req.path == "/token":
            return self._token(req)
        grant = self._grant(req)
        if req.path in ("/v2", "/v2/"):
            if grant is None:
                return self._challenge(None)
            return json_response(200, {}, {"Docker-Distribution-API-Version": "registry/2.0"})
        for kind, rx in ROUTES:
            m = rx.match(req.path)
            if m:
                return self._resource(req, kind, m.groupdict(), grant)
        return Response(404, b"404 page not found\n", {"Content-Type": "text/plain"})

    # auth -------------------------------------------------------------------------------------
    def _challenge(self, scope: str | None) -> Response:
        value = f'Bearer realm="{self.emu.registry.url}/token",service="registry.docker.io"'
        if scope:
            value += f',scope="{scope}"'
        return oci_error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": value})

    def _grant(self, req: Request) -> Grant | None:
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        g = self.emu.grants.get(value) if scheme.lower() == "bearer" else None
        return g if g is not None and g.expires > self.emu.clock() else None

    def _token(self, req: Request) -> Response:
        account, access = None, ""
        auth = req.headers.get("Authorization") or ""
        if auth:
            scheme, _, value = auth.partition(" ")
            try:
                user, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = secret = ""
            j = self.emu.login(user, secret) if scheme.lower() == "basic" else None
            if j is None:
                return json_response(401, {"details": "incorrect username or password"})
            account, access = j.account, j.access
        grant = Grant(account, access, expires=self.emu.clock() + self.emu.registry_token_ttl)
        for scope in req.args("scope"):
            for one in scope.split(" "):
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                if kind != "repository" or not name:
                    continue
                repo = self.store.find(name)
                ok = set()
                for action in actions.split(","):
                    if repo is None:
                        if (
                            account is not None
                            and action in ("pull", "push")
                            and name.split("/")[0] in account.member_of
                        ):
                            ok.add(action)
                    elif self.emu.may(account, access, repo, action):
                        ok.add(action)
                grant.granted.setdefault(name, set()).update(ok)
        value = "hub_reg_" + secrets.token_urlsafe(24)
        self.emu.grants[value] = grant
        return json_response(
            200, {"token": value, "access_token": value, "expires_in": self.emu.registry_token_ttl}
        )

    # resources --------------------------------------------------------------------------------
    def _resource(self, req: Request, kind: str, p: dict[str, str], grant: Grant | None) -> Response:
        name = p["name"]
        action = {"DELETE": "delete", "PUT": "push", "POST": "push", "PATCH": "push"}.get(req.method, "pull")
        scope = f"repository:{name}:{'pull,' + action if action != 'pull' else 'pull'}"
        if grant is None or action not in grant.granted.get(name, set()):
            if grant is not None and action == "pull":
                return oci_error(
                    401, "UNAUTHORIZED", "authentication required", self._challenge(scope).headers
                )
            return self._challenge(scope)
        if kind == "referrers":
            return Response(404, b"404 page not found\n", {"Content-Type": "text/plain"})
        repo = self.store.find(name)
        if repo is None and action == "push":
            ns, _, short = name.partition("/")
            repo = self.store.package(ns, short, visibility="public", created=self.emu.now())
        if repo is None:
            return oci_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        if kind == "manifest":
            if req.method == "PUT":
                return self._put_manifest(req, repo, p["ref"])
            if req.method == "DELETE":
                return self._delete_manifest(repo, p["ref"])
            return self._get_manifest(req, repo, p["ref"], grant)
        if kind == "blob":
            if p["ref"] not in repo.blobs:
                return oci_error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            return Response(200, self.store.content[p["ref"]], {"Docker-Content-Digest": p["ref"]})
        if kind == "upload":
            return self._upload(req, repo, p["uuid"])
        return json_response(200, {"name": name, "tags": sorted(repo.tags)})

    def _get_manifest(self, req: Request, repo: Repo, ref: str, grant: Grant) -> Response:
        who = grant.account.name if grant.account else "anonymous"
        limit = self.emu.pull_limit if grant.account else self.emu.anonymous_pull_limit
        used = self.emu.pulls_used.get(who, 0)
        tag = repo.tags.get(ref)
        digest = ref if ref.startswith("sha256:") else (tag.digest if tag else None)
        stored = repo.manifests.get(digest or "")
        if stored is None:
            return oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        if req.method == "GET":
            if used >= limit:
                return Response(
                    429, b"You have reached your pull rate limit.", {"Content-Type": "text/plain"}
                )
            used = self.emu.pulls_used[who] = used + 1
            stored.pulls += 1
            stored.last_pulled = self.emu.now()
            touched = [tag] if tag is not None else []
            if tag is None and self.emu.digest_pull_touches_tags:
                touched = [t for t in repo.tags.values() if t.digest == stored.digest]
            for t in touched:
                t.last_pulled = stored.last_pulled
        headers = {
            "Content-Type": stored.media_type,
            "Docker-Content-Digest": stored.digest,
            "ratelimit-limit": f"{limit};w={WINDOW}",
            "ratelimit-remaining": f"{max(0, limit - used)};w={WINDOW}",
        }
        return Response(200, self.store.content[stored.digest], headers)

    def _delete_manifest(self, repo: Repo, ref: str) -> Response:
        if self.emu.manifest_delete == 405:
            return oci_error(405, "UNSUPPORTED", "The operation is unsupported.")
        if not ref.startswith("sha256:"):
            return oci_error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        if ref not in repo.manifests:
            return oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        if self.emu.manifest_delete_500s > 0:
            self.emu.manifest_delete_500s -= 1
            return oci_error(500, "UNKNOWN", "unknown error")
        if repo.tags_of(ref) or repo.referenced(ref, self.store.content):
            return oci_error(403, "DENIED", "manifest is tagged or referenced and cannot be deleted")
        del repo.manifests[ref]
        return Response(202)

    def _put_manifest(self, req: Request, repo: Repo, ref: str) -> Response:
        media_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            doc = json.loads(req.body)
        except ValueError:
            return oci_error(400, "MANIFEST_INVALID", "manifest invalid")
        if media_type not in MANIFEST_TYPES:
            return oci_error(400, "MANIFEST_INVALID", f"manifest invalid: media type {media_type!r}")
        digest = digest_of(req.body)
        if ref.startswith("sha256:") and ref != digest:
            return oci_error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        if "manifests" in doc:
            missing = [m["digest"] for m in doc["manifests"] if m["digest"] not in repo.manifests]
        else:
            missing = [
                x["digest"]
                for x in [doc.get("config", {}), *doc.get("layers", [])]
                if x["digest"] not in repo.blobs
            ]
        if missing:
            return oci_error(400, "MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {missing[0]}")
        tag = None if ref.startswith("sha256:") else ref
        self.store.put_manifest(repo, req.body, media_type, tag, self.emu.now())
        return Response(
            201, b"", {"Location": f"/v2/{repo.full}/manifests/{digest}", "Docker-Content-Digest": digest}
        )

    def _upload(self, req: Request, repo: Repo, uuid: str) -> Response:
        if req.method == "POST" and not uuid:
            uuid = secrets.token_hex(16)
            self.uploads[uuid] = (repo.full, bytearray())
            return Response(202, b"", {"Location": f"/v2/{repo.full}/blobs/uploads/{uuid}", "Range": "0-0"})
        entry = self.uploads.pop(uuid, None)
        if entry is None or entry[0] != repo.full or req.method != "PUT":
            return oci_error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        data = bytes(entry[1] + req.body)
        if digest_of(data) != req.arg("digest"):
            return oci_error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        d = self.store.add_blob(repo, data)
        return Response(201, b"", {"Location": f"/v2/{repo.full}/blobs/{d}", "Docker-Content-Digest": d})
