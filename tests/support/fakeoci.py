"""A small in-process OCI registry for unit tests, served through httpx.MockTransport.

Real bytes and real digests: images are a config blob and a manifest; indexes list manifests.
Tests change `tags`, `manifests`, `blobs` or hook `override` to make the registry misbehave
(serve other bytes, add Link headers, answer 500) and read `log` to see what was asked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class FakeRegistry:
    host: str = "registry.test"
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # repo -> tag -> digest
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # digest -> (bytes, type)
    blobs: dict[str, bytes] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    page_size: int = 1000
    override: Callable[[httpx.Request], httpx.Response | None] | None = None

    # content ------------------------------------------------------------------------------
    def image(self, repo: str, *tags: str, created: str = "2026-01-01T00:00:00Z", salt: str = "") -> str:
        config = canonical({"created": created, "architecture": "amd64", "os": "linux", "salt": salt})
        layer = f"layer {repo} {salt} {created}".encode()
        self.blobs[digest(config)] = config
        self.blobs[digest(layer)] = layer
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest(config), "size": len(config)},
            "layers": [
                {"mediaType": "application/octet-stream", "digest": digest(layer), "size": len(layer)}
            ],
        }
        return self.put(repo, canonical(doc), OCI_MANIFEST, *tags)

    def index(self, repo: str, children: list[str], *tags: str) -> str:
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": c, "size": len(self.manifests[c][0])} for c in children
            ],
        }
        return self.put(repo, canonical(doc), OCI_INDEX, *tags)

    def put(self, repo: str, data: bytes, media_type: str, *tags: str) -> str:
        d = digest(data)
        self.manifests[d] = (data, media_type)
        repo_tags = self.tags.setdefault(repo, {})
        for t in tags:
            repo_tags[t] = d
        return d

    # transport ----------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.log.append((request.method, request.url.raw_path.decode()))
        if self.override is not None:
            answer = self.override(request)
            if answer is not None:
                return answer
        path = request.url.path
        if path == "/v2/":
            return httpx.Response(200, json={})
        if path == "/v2/_catalog":
            return self._page(request, sorted(self.tags), "repositories")
        rest = path.removeprefix("/v2/")
        for kind in ("/tags/list", "/manifests/", "/blobs/", "/referrers/"):
            if kind in rest:
                repo, _, ref = rest.partition(kind)
                return self._serve(request, kind, repo, ref)
        return httpx.Response(404)

    def _page(self, request: httpx.Request, items: list[str], key: str) -> httpx.Response:
        last = request.url.params.get("last")
        start = items.index(last) + 1 if last in items else 0
        page = items[start : start + self.page_size]
        headers = {}
        if start + self.page_size < len(items):
            headers["Link"] = f'<{request.url.path}?n={self.page_size}&last={page[-1]}>; rel="next"'
        return httpx.Response(200, json={key: page}, headers=headers)

    def _serve(self, request: httpx.Request, kind: str, repo: str, ref: str) -> httpx.Response:
        repo_tags = self.tags.get(repo)
        if kind == "/tags/list":
            if repo_tags is None:
                return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})
            return self._page(request, sorted(repo_tags), "tags")
        if kind == "/referrers/":
            return httpx.Response(404, text="404 page not found")
        if kind == "/blobs/":
            data = self.blobs.get(ref)
            if data is None:
                return httpx.Response(404, json={"errors": [{"code": "BLOB_UNKNOWN"}]})
            return httpx.Response(200, content=b"" if request.method == "HEAD" else data)
        d = ref if ref.startswith("sha256:") else (repo_tags or {}).get(ref)
        if d is None or d not in self.manifests:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        if request.method == "DELETE":
            del self.manifests[d]
            for t in [t for t, x in (repo_tags or {}).items() if x == d]:
                del repo_tags[t]  # type: ignore[index]
            return httpx.Response(202)
        data, media_type = self.manifests[d]
        headers = {"Docker-Content-Digest": d, "Content-Type": media_type}
        return httpx.Response(200, content=b"" if request.method == "HEAD" else data, headers=headers)
