"""Push test images straight over the Registry HTTP API: no docker, no pulls, fast.

Independent of regcollect's own client on purpose, so tests do not use the code they check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def ts(days_ago: float, now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC)
    return now - dt.timedelta(days=days_ago)


@dataclass
class Pushed:
    repo: str
    digest: str
    media_type: str
    data: bytes
    tags: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    size: int = 0  # manifest + config + layers bytes
    arch: str = ""


class Pusher:
    """Writes to one registry; `token_user` for the token registry, `basic` for htpasswd."""

    def __init__(
        self,
        host: str,
        *,
        basic: tuple[str, str] | None = None,
        token_user: tuple[str, str] | None = None,
    ):
        self.base = f"http://{host}"
        self.basic = basic
        self.token_user = token_user
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self._tokens: dict[str, str] = {}
        self._blobs: set[tuple[str, str]] = set()

    def close(self) -> None:
        self.http.close()

    def _headers(self, repo: str) -> dict[str, str]:
        if self.basic:
            import base64

            raw = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        if self.token_user:
            if repo not in self._tokens:
                probe = self.http.get("/v2/")
                header = probe.headers["WWW-Authenticate"]
                params = dict(p.split("=", 1) for p in header.split(" ", 1)[1].replace('"', "").split(","))
                r = httpx.get(
                    params["realm"],
                    params={
                        "service": params["service"],
                        "scope": f"repository:{repo}:pull,push,delete",
                    },
                    auth=self.token_user,
                )
                r.raise_for_status()
                self._tokens[repo] = r.json()["token"]
            return {"Authorization": f"Bearer {self._tokens[repo]}"}
        return {}

    def blob(self, repo: str, data: bytes) -> str:
        d = digest_of(data)
        if (repo, d) in self._blobs:
            return d
        h = self._headers(repo)
        r = self.http.post(f"/v2/{repo}/blobs/uploads/", headers=h)
        r.raise_for_status()
        loc = r.headers["Location"]
        sep = "&" if "?" in loc else "?"
        r = self.http.put(f"{loc}{sep}digest={d}", content=data, headers=h)
        r.raise_for_status()
        self._blobs.add((repo, d))
        return d

    def manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        h = dict(self._headers(repo), **{"Content-Type": media_type})
        r = self.http.put(f"/v2/{repo}/manifests/{ref}", content=data, headers=h)
        if r.status_code >= 400:
            raise AssertionError(f"PUT manifest {repo}:{ref}: {r.status_code} {r.text}")
        return digest_of(data)

    def image(
        self,
        repo: str,
        tags: list[str] | str | None = None,
        *,
        created: dt.datetime | None = None,
        labels: dict[str, str] | None = None,
        layers: list[bytes] | None = None,
        oci: bool = False,
        arch: str = "amd64",
        subject: Pushed | None = None,
        artifact_type: str | None = None,
    ) -> Pushed:
        """One image manifest with its config and layers; tagged with each tag (or by digest)."""
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        layers = layers if layers is not None else [os.urandom(64)]
        config: dict[str, Any] = {
            "architecture": arch,
            "os": "linux",
            "config": {"Labels": labels or {}},
            "rootfs": {"type": "layers", "diff_ids": [digest_of(x) for x in layers]},
        }
        if created is not None:
            config["created"] = created.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        cfg = json.dumps(config).encode()
        cfg_d = self.blob(repo, cfg)
        layer_ds = [self.blob(repo, x) for x in layers]
        mt = OCI_MANIFEST if (oci or subject) else DOCKER_MANIFEST
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": mt,
            "config": {
                "mediaType": OCI_CONFIG if mt == OCI_MANIFEST else DOCKER_CONFIG,
                "digest": cfg_d,
                "size": len(cfg),
            },
            "layers": [
                {"mediaType": OCI_LAYER if mt == OCI_MANIFEST else DOCKER_LAYER, "digest": d, "size": len(x)}
                for d, x in zip(layer_ds, layers, strict=True)
            ],
        }
        if subject is not None:
            doc["subject"] = {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": len(subject.data),
            }
            doc["artifactType"] = artifact_type or "application/vnd.example.sbom"
        data = json.dumps(doc).encode()
        digest = digest_of(data)
        for tag in tags or [digest]:
            self.manifest(repo, tag, data, mt)
        return Pushed(
            repo, digest, mt, data, tags, layer_ds, len(data) + len(cfg) + sum(len(x) for x in layers), arch
        )

    def index(
        self, repo: str, tags: list[str] | str | None, children: list[Pushed], *, oci: bool = False
    ) -> Pushed:
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        mt = OCI_INDEX if oci else DOCKER_LIST
        doc = {
            "schemaVersion": 2,
            "mediaType": mt,
            "manifests": [
                {
                    "mediaType": c.media_type,
                    "digest": c.digest,
                    "size": len(c.data),
                    "platform": {"os": "linux", "architecture": c.arch or f"arch{i}"},
                }
                for i, c in enumerate(children)
            ],
        }
        data = json.dumps(doc).encode()
        digest = digest_of(data)
        for tag in tags or [digest]:
            self.manifest(repo, tag, data, mt)
        return Pushed(repo, digest, mt, data, tags)

    def cosign_signature(self, repo: str, subject: Pushed, suffix: str = "sig") -> Pushed:
        """cosign's older scheme: a tag sha256-<hex>.sig in the same repository."""
        tag = subject.digest.replace(":", "-") + f".{suffix}"
        return self.image(repo, tag, oci=True, labels={}, layers=[os.urandom(32)])

    def tags(self, repo: str) -> list[str]:
        r = self.http.get(f"/v2/{repo}/tags/list", headers=self._headers(repo))
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return sorted(r.json().get("tags") or [])

    def resolve(self, repo: str, ref: str) -> str | None:
        h = dict(self._headers(repo), Accept=ACCEPT)
        r = self.http.head(f"/v2/{repo}/manifests/{ref}", headers=h)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.headers["Docker-Content-Digest"]

    def exists(self, repo: str, digest: str) -> bool:
        return self.resolve(repo, digest) is not None
