"""The registry side (/v2): the ghcr emulator's Registry API, with GitLab's token flow.

The challenge names GitLab's realm (`<gitlab>/jwt/auth`, service `container_registry`); the
realm takes Basic user:secret where a job token must come with the user `gitlab-ci-token` and an
access token is checked, not the user name (unless `registry_checks_username`). Access follows
the project role: pull from Reporter (or a public project), push and delete from Developer.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from tests.support.ghcr.httpbase import Request, Response, json_response, oci_error
from tests.support.ghcr.registry import RegistrySide
from tests.support.ghcr.server import RegistryGrant
from tests.support.gitlab.server import DEVELOPER, Token

if TYPE_CHECKING:
    from tests.support.gitlab.server import GitLabEmulator

JOB_USER = "gitlab-ci-token"


class GitLabRegistrySide(RegistrySide):
    emu: GitLabEmulator  # type: ignore[assignment]

    def handle(self, req: Request) -> Response:
        if req.path == "/token":
            return Response(404, b"404 page not found\n")
        return super().handle(req)

    def _challenge(self, scope: str | None) -> Response:
        value = f'Bearer realm="{self.emu.gitlab_url}/jwt/auth",service="{self.emu.registry_service}"'
        if scope:
            value += f',scope="{scope}"'
        return oci_error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": value})

    def jwt_auth(self, req: Request) -> Response:
        """GET /jwt/auth?service=container_registry&scope=repository:PATH:pull,push (on GitLab)."""
        auth = req.headers.get("Authorization") or ""
        if auth:
            scheme, _, value = auth.partition(" ")
            try:
                user, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, secret = "", ""
            token = self.emu.tokens.get(secret) if scheme.lower() == "basic" else None
            wrong_user = token is not None and (
                (token.kind == "job" and user != JOB_USER)
                or (token.kind != "job" and self.emu.registry_checks_username and user != token.user)
            )
            if token is None or wrong_user:
                return json_response(
                    401, {"errors": [{"code": "UNAUTHORIZED", "message": "HTTP Basic: Access denied"}]}
                )
        return self._token(req)

    def _actions(self, token: Token | None, repo: str, wanted: set[str]) -> set[str]:  # type: ignore[override]
        r = self.store.find(repo)
        project = r.project if r is not None else self.store.project_of(repo)
        out = set()
        if project is None:
            return {"pull"} & wanted if token is not None else set()  # the answer will be NAME_UNKNOWN
        readable = self.emu.can_read_project(token, project) and (
            token is None or token.has("api", "read_registry", "write_registry")
        )
        if "pull" in wanted and (readable or project.visibility == "public"):
            out.add("pull")
        writer = (
            token is not None
            and token.has("api", "write_registry")
            and self.emu.level(token, project) >= DEVELOPER
        )
        if writer:
            out.update({"push", "delete"} & wanted)
        return out

    def _resource(self, req: Request, kind: str, p: dict[str, str]) -> Response:
        if req.method != "DELETE" or kind != "manifest":
            if req.method == "PUT" and self.store.find(p["name"]) is None:
                if self.store.project_of(p["name"]) is None:
                    return oci_error(404, "NAME_UNKNOWN", "repository name not known to registry")
            return super()._resource(req, kind, p)
        grant = self._grant(req)
        repo = p["name"]
        if grant is None or "delete" not in grant.granted.get(repo, set()):
            return self._challenge(f"repository:{repo}:delete")
        if not self.emu.v2_delete:
            return oci_error(405, "UNSUPPORTED", "The operation is unsupported.")
        r = self.store.find(repo)
        ref = p["ref"]
        if r is None or not ref.startswith("sha256:") or ref not in r.manifests:
            return oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        del r.manifests[ref]
        for t in r.tagged(ref):
            del r.tag_map[t]
        return Response(202, b"")

    def _allowed(self, grant: RegistryGrant, repo: str, action: str) -> bool:
        return action in grant.granted.get(repo, set())
