"""The /v2 side of the Harbor emulator: Harbor's token service, manifests, blobs, tags, referrers.

Harbor's registry answers 401 with `Bearer realm=<origin>/service/token,service="harbor-registry"`;
the token service takes HTTP Basic (users and robot accounts alike). A manifest GET updates the
artifact's pull_time (HEAD does not, by default); DELETE by digest works (202), by tag it is
UNSUPPORTED (goharbor/harbor PR #11971). A manifest PUT records index children and accessories
as Harbor does (tests/support/harbor/model.py).
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

from tests.support.ghcr.httpbase import Request, Response, json_response, v2_routes
from tests.support.ghcr.model import MANIFEST_TYPES, OCI_INDEX, digest_of
from tests.support.harbor.model import Repository
from tests.support.harbor.server import INVALID, Account, harbor_error

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborEmulator

ROUTES = v2_routes(r"sha256:[0-9a-f]{64}")
TOKEN_TTL = 1800


class RegistrySide:
    def __init__(self, emu: HarborEmulator):
        self.emu = emu
        self.store = emu.store
        self.uploads: dict[str, tuple[str, bytearray]] = {}

    def handle(self, req: Request) -> Response:
        if req.path == "/service/token":
            return self._token(req) if req.method == "GET" else Response(405, b"method not allowed\n")
        who = self._bearer(req)
        if req.path in ("/v2", "/v2/"):
            if who is INVALID:
                return self._challenge(None)
            return json_response(200, {}, {"Docker-Distribution-API-Version": "registry/2.0"})
        for kind, rx in ROUTES:
            m = rx.match(req.path)
            if m:
                return self._resource(req, who, kind, m.groupdict())
        return harbor_error(404, "NOT_FOUND", "not found")

    # -- auth ----------------------------------------------------------------------------------
    def _challenge(self, scope: str | None) -> Response:
        value = f'Bearer realm="{self.emu.url}/service/token",service="harbor-registry"'
        if scope:
            value += f',scope="{scope}"'
        return harbor_error(401, "UNAUTHORIZED", "unauthorized", {"WWW-Authenticate": value})

    def _bearer(self, req: Request) -> Account | None:
        """The account a Bearer token stands for; None: anonymous token; INVALID: none or expired."""
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        entry = self.emu.tokens.get(value) if scheme.lower() == "bearer" else None
        if entry is None or entry[1] < self.emu.clock():
            return INVALID
        return entry[0]

    def _token(self, req: Request) -> Response:
        who = self.emu.basic(req.headers.get("Authorization"))
        if who is INVALID:
            return harbor_error(401, "UNAUTHORIZED", "unauthorized")
        value = "harbor_emu_" + secrets.token_urlsafe(24)
        self.emu.tokens[value] = (who, self.emu.clock() + TOKEN_TTL)
        return json_response(200, {"token": value, "access_token": value, "expires_in": TOKEN_TTL})

    # -- resources -----------------------------------------------------------------------------
    def _resource(self, req: Request, who: Account | None, kind: str, p: dict[str, str]) -> Response:
        name = p["name"]
        project = name.partition("/")[0]
        write = req.method in ("PUT", "POST", "PATCH")
        action = "push" if write else "delete" if req.method == "DELETE" else "pull"
        scope = f"repository:{name}:{'pull,push' if write else 'delete' if action == 'delete' else 'pull'}"
        if who is INVALID:
            return self._challenge(scope)
        if not self.emu.can(who, project, action):
            if who is None:
                return self._challenge(scope)
            return harbor_error(403, "DENIED", "requested access to the resource is denied")
        repo = self.store.find(name)
        if write and repo is None and project in self.store.projects:
            repo = self.store.package(project, name.partition("/")[2])
        if repo is None:
            return harbor_error(404, "NAME_UNKNOWN", f"repository name not known to registry: {name}")
        if kind == "manifest":
            return self._manifest(req, repo, p["ref"])
        if kind == "blob":
            if p["ref"] not in repo.blobs:
                return harbor_error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            data = self.store.content[p["ref"]]
            return Response(
                200, data, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": p["ref"]}
            )
        if kind == "upload":
            return self._upload(req, repo, p["uuid"])
        if kind == "tags":
            tags, headers = self._tag_page(req, repo)
            return json_response(200, {"name": repo.name, "tags": tags}, headers)
        if not self.emu.referrers_api:
            return harbor_error(404, "NOT_FOUND", "not found")
        found = [a for a in self.store.accessories(repo, p["ref"]) if a.accessory_type == "subject.accessory"]
        manifests = []
        for a in found:
            doc = a.doc(self.store.content)
            entry = {"mediaType": a.media_type, "digest": a.digest, "size": len(self.store.content[a.digest])}
            if doc.get("artifactType"):
                entry["artifactType"] = doc["artifactType"]
            manifests.append(entry)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return Response(200, json.dumps(index).encode(), {"Content-Type": OCI_INDEX})

    def _tag_page(self, req: Request, repo: Repository) -> tuple[list[str], dict[str, str]]:
        tags = repo.tags()
        last = req.arg("last")
        if last is not None:
            tags = [t for t in tags if t > last]
        n = req.arg("n")
        headers = {}
        if n is not None and n.isdigit() and int(n) < len(tags):
            tags = tags[: int(n)]
            if tags:
                headers["Link"] = f'</v2/{repo.name}/tags/list?n={n}&last={tags[-1]}>; rel="next"'
        return tags, headers

    def _manifest(self, req: Request, repo: Repository, ref: str) -> Response:
        if req.method == "PUT":
            return self._put(req, repo, ref)
        a = repo.by_digest(ref) if ref.startswith("sha256:") else repo.by_tag(ref)
        if req.method == "DELETE":
            if not ref.startswith("sha256:"):
                return harbor_error(400, "UNSUPPORTED", "The operation is unsupported.")
            if a is None:
                return harbor_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            self.store.remove(
                repo,
                a,
                accessories=self.emu.accessories_follow_subject,
                children=self.emu.children_follow_index,
            )
            return Response(202)
        if req.method not in ("GET", "HEAD"):
            return harbor_error(405, "UNSUPPORTED", "The operation is unsupported.")
        if a is None:
            return harbor_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        if (req.method == "GET" and self.emu.get_updates_pull_time) or (
            req.method == "HEAD" and self.emu.head_updates_pull_time
        ):
            a.pull_time = self.emu.now()
        return Response(
            200,
            self.store.content[a.digest],
            {"Content-Type": a.media_type, "Docker-Content-Digest": a.digest},
        )

    def _put(self, req: Request, repo: Repository, ref: str) -> Response:
        media_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            doc = json.loads(req.body)
        except ValueError:
            return harbor_error(400, "MANIFEST_INVALID", "manifest invalid: not JSON")
        if media_type not in MANIFEST_TYPES or not isinstance(doc, dict):
            return harbor_error(400, "MANIFEST_INVALID", f"manifest invalid: media type {media_type!r}")
        digest = digest_of(req.body)
        if ref.startswith("sha256:") and ref != digest:
            return harbor_error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        if "manifests" in doc:
            missing = [
                m.get("digest") for m in doc["manifests"] if repo.by_digest(m.get("digest", "")) is None
            ]
        else:
            refs = [doc.get("config") or {}, *(doc.get("layers") or [])]
            missing = [d.get("digest") for d in refs if d.get("digest") not in repo.blobs]
        if missing:
            return harbor_error(400, "MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {missing[0]}")
        tag = None if ref.startswith("sha256:") else ref
        self.store.put_manifest(repo, req.body, media_type, tag, self.emu.now())
        return Response(
            201, b"", {"Location": f"/v2/{repo.name}/manifests/{digest}", "Docker-Content-Digest": digest}
        )

    def _upload(self, req: Request, repo: Repository, uuid: str) -> Response:
        if req.method == "POST" and not uuid:
            if req.arg("digest") is not None:
                return self._finish(repo, bytearray(req.body), req.arg("digest") or "")
            uuid = secrets.token_hex(16)
            self.uploads[uuid] = (repo.name, bytearray())
            return Response(202, b"", {"Location": f"/v2/{repo.name}/blobs/uploads/{uuid}", "Range": "0-0"})
        entry = self.uploads.get(uuid)
        if entry is None or entry[0] != repo.name:
            return harbor_error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        entry[1].extend(req.body)
        if req.method == "PATCH":
            return Response(
                202,
                b"",
                {"Location": f"/v2/{repo.name}/blobs/uploads/{uuid}", "Range": f"0-{len(entry[1]) - 1}"},
            )
        self.uploads.pop(uuid, None)
        return self._finish(repo, entry[1], req.arg("digest") or "")

    def _finish(self, repo: Repository, data: bytearray, digest: str) -> Response:
        if digest_of(bytes(data)) != digest:
            return harbor_error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        self.store.add_blob(repo, bytes(data))
        return Response(
            201, b"", {"Location": f"/v2/{repo.name}/blobs/{digest}", "Docker-Content-Digest": digest}
        )
