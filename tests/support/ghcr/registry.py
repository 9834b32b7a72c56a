"""The ghcr.io side: /v2 with the token exchange, manifests, blobs and tags (hosted-registries.md 1.9).

What ghcr.io lacks is modelled too: manifest DELETE is 405 UNSUPPORTED, there is no referrers API,
and a manifest GET counts as a download of its version.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from typing import TYPE_CHECKING
from urllib.parse import quote

from tests.support.ghcr.httpbase import Request, Response, json_response, oci_error, v2_routes
from tests.support.ghcr.model import MANIFEST_TYPES, Package, digest_of
from tests.support.ghcr.server import INVALID, RegistryGrant, Token

if TYPE_CHECKING:
    from tests.support.ghcr.server import GhcrEmulator

ROUTES = v2_routes()


class RegistrySide:
    def __init__(self, emu: GhcrEmulator):
        self.emu = emu
        self.store = emu.store
        self.uploads: dict[str, tuple[str, bytearray]] = {}
        self.lock = threading.Lock()

    def handle(self, req: Request) -> Response:
        if req.path == "/token":
            return self._token(req) if req.method == "GET" else Response(405, b"method not allowed\n")
        if req.path in ("/v2", "/v2/"):
            grant = self._grant(req)
            if grant is None:
                return self._challenge(None)
            return json_response(200, {}, {"Docker-Distribution-API-Version": "registry/2.0"})
        for kind, rx in ROUTES:
            m = rx.match(req.path)
            if m:
                return self._resource(req, kind, m.groupdict())
        return Response(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})

    # -- auth ----------------------------------------------------------------------------------
    def _challenge(self, scope: str | None) -> Response:
        value = f'Bearer realm="{self.emu.registry_url}/token",service="{self.emu.registry_service}"'
        if scope:
            value += f',scope="{scope}"'
        return oci_error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": value})

    def _grant(self, req: Request) -> RegistryGrant | None:
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not value:
            return None
        grant = self.emu.grants.get(value)
        if grant is not None:
            return grant if grant.expires > self.emu.clock() else None
        if self.emu.accept_base64_pat:
            token = self.emu.token_from_base64(value)
            if token is not None:
                return RegistryGrant(token, direct=True)
        return None

    def _allowed(self, grant: RegistryGrant, repo: str, action: str) -> bool:
        if grant.direct:
            return action in self._actions(grant.token, repo, {action})
        return action in grant.granted.get(repo, set())

    def _actions(self, token: Token | None, repo: str, wanted: set[str]) -> set[str]:
        owner = repo.partition("/")[0]
        pkg = self.store.find(repo)
        out = set()
        if "pull" in wanted:
            if pkg is not None and self.emu.can_read(token, pkg):
                out.add("pull")
            elif (
                pkg is None and token is not None and (token.kind != "classic" or token.has("read:packages"))
            ):
                out.add("pull")  # the answer will be NAME_UNKNOWN
        if "push" in wanted and owner in self.store.owners and self.emu.can_push(token, owner, pkg):
            out.add("push")
        return out

    def _token(self, req: Request) -> Response:
        """GET /token?service=&scope=repository:OWNER/PKG:pull,push with Basic ANY:PAT (1.9, approach 1)."""
        token: Token | None = None
        auth = req.headers.get("Authorization") or ""
        if auth:
            scheme, _, value = auth.partition(" ")
            try:
                _, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                secret = ""
            token = self.emu.tokens.get(secret) if scheme.lower() == "basic" else None
            if token is None or token is INVALID:
                return oci_error(401, "UNAUTHORIZED", "authentication required")
        grant = RegistryGrant(token, expires=self.emu.clock() + self.emu.registry_token_ttl)
        for scope in req.args("scope"):
            for one in scope.split(" "):
                kind, _, rest = one.partition(":")
                repo, _, actions = rest.rpartition(":")
                if kind != "repository" or not repo:
                    continue
                wanted = set(actions.split(","))
                grant.requested.setdefault(repo, set()).update(wanted)
                grant.granted.setdefault(repo, set()).update(self._actions(token, repo, wanted))
        value = "ghcr_emu_" + secrets.token_urlsafe(24)
        self.emu.grants[value] = grant
        body: dict[str, object] = {"token": value}
        if self.emu.token_expires_in is not None:
            body["expires_in"] = self.emu.token_expires_in
        return json_response(200, body)

    # -- resources -----------------------------------------------------------------------------
    def _resource(self, req: Request, kind: str, p: dict[str, str]) -> Response:
        repo = p["name"]
        write = req.method in ("PUT", "POST", "PATCH")
        action = "push" if write else "pull"
        grant = self._grant(req)
        if grant is None:
            return self._challenge(f"repository:{repo}:{'pull,push' if write else 'pull'}")
        if not self._allowed(grant, repo, action):
            if action in grant.requested.get(repo, set()):
                msg = "permission_denied: The token provided does not match expected scopes."
                return oci_error(403, "DENIED", msg)
            return self._challenge(f"repository:{repo}:{'pull,push' if write else 'pull'}")
        if req.method == "DELETE":
            return oci_error(405, "UNSUPPORTED", "The operation is unsupported.")
        if kind == "referrers":
            return Response(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})
        pkg = self.store.find(repo)
        if write:
            owner, _, name = repo.partition("/")
            pkg = pkg or self.store.package(owner, name, created=self.emu.now())
        if pkg is None:
            return oci_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        if kind == "manifest":
            if req.method == "PUT":
                return self._put_manifest(req, pkg, p["ref"])
            return self._get_manifest(req, pkg, p["ref"])
        if kind == "blob":
            if p["ref"] not in pkg.blobs:
                return oci_error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            d = p["ref"]
            return Response(
                200,
                self.store.content[d],
                {"Content-Type": "application/octet-stream", "Docker-Content-Digest": d},
            )
        if kind == "upload":
            return self._upload(req, pkg, p["uuid"])
        if kind == "tags":
            return self._tags(req, pkg)
        return Response(404)

    def _get_manifest(self, req: Request, pkg: Package, ref: str) -> Response:
        if req.method not in ("GET", "HEAD"):
            return oci_error(405, "UNSUPPORTED", "The operation is unsupported.")
        with self.store.lock:
            v = self.store.manifest(pkg, ref)
            if v is None:
                return oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            if req.method == "GET" or self.emu.head_counts_download:
                v.downloads += 1
            data = self.store.content[v.digest]
        return Response(200, data, {"Content-Type": v.media_type, "Docker-Content-Digest": v.digest})

    def _put_manifest(self, req: Request, pkg: Package, ref: str) -> Response:
        media_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            doc = json.loads(req.body)
        except ValueError:
            return oci_error(400, "MANIFEST_INVALID", "manifest invalid: not JSON")
        if media_type not in MANIFEST_TYPES or doc.get("mediaType", media_type) != media_type:
            return oci_error(400, "MANIFEST_INVALID", f"manifest invalid: media type {media_type!r}")
        digest = digest_of(req.body)
        if ref.startswith("sha256:") and ref != digest:
            return oci_error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        with self.store.lock:
            if "manifests" in doc:
                missing = [m["digest"] for m in doc["manifests"] if pkg.by_digest(m["digest"]) is None]
            else:
                refs = [doc.get("config", {}), *doc.get("layers", [])]
                missing = [d["digest"] for d in refs if d.get("digest") not in pkg.blobs]
            if missing:
                return oci_error(400, "MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {missing[0]}")
            tag = None if ref.startswith("sha256:") else ref
            self.store.put_manifest(
                pkg,
                req.body,
                media_type,
                tag,
                self.emu.now(),
                touch_on_tag_move=self.emu.tag_move_touches_updated_at,
            )
        location = f"/v2/{pkg.owner}/{pkg.name}/manifests/{digest}"
        return Response(201, b"", {"Location": location, "Docker-Content-Digest": digest})

    def _upload(self, req: Request, pkg: Package, uuid: str) -> Response:
        repo = f"{pkg.owner}/{pkg.name}"
        if req.method == "POST" and not uuid:
            digest = req.arg("digest")
            if digest is not None:  # monolithic POST
                return self._finish(pkg, bytearray(req.body), digest)
            uuid = secrets.token_hex(16)
            with self.lock:
                self.uploads[uuid] = (repo, bytearray())
            headers = {
                "Location": f"/v2/{repo}/blobs/uploads/{uuid}",
                "Docker-Upload-UUID": uuid,
                "Range": "0-0",
            }
            return Response(202, b"", headers)
        with self.lock:
            entry = self.uploads.get(uuid)
        if entry is None or entry[0] != repo:
            return oci_error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        entry[1].extend(req.body)
        if req.method == "PATCH":
            headers = {"Location": f"/v2/{repo}/blobs/uploads/{uuid}", "Range": f"0-{len(entry[1]) - 1}"}
            return Response(202, b"", headers)
        if req.method != "PUT":
            return oci_error(405, "UNSUPPORTED", "The operation is unsupported.")
        with self.lock:
            self.uploads.pop(uuid, None)
        return self._finish(pkg, entry[1], req.arg("digest") or "")

    def _finish(self, pkg: Package, data: bytearray, digest: str) -> Response:
        if digest_of(bytes(data)) != digest:
            return oci_error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        self.store.add_blob(pkg, bytes(data))
        headers = {"Location": f"/v2/{pkg.owner}/{pkg.name}/blobs/{digest}", "Docker-Content-Digest": digest}
        return Response(201, b"", headers)

    def _tags(self, req: Request, pkg: Package) -> Response:
        repo = f"{pkg.owner}/{pkg.name}"
        with self.store.lock:
            tags = pkg.tags()
        last = req.arg("last")
        if last is not None:
            tags = [t for t in tags if t > last]
        n = req.arg("n")
        headers = {}
        if n is not None and n.isdigit() and int(n) < len(tags):
            tags = tags[: int(n)]
            if tags:
                headers["Link"] = f'</v2/{repo}/tags/list?n={n}&last={quote(tags[-1])}>; rel="next"'
        return json_response(200, {"name": repo, "tags": tags}, headers)
