"""Realistic ghcr content with real bytes: every digest is the sha256 of what /v2 serves.

Builders write straight into the store (no HTTP, so seeding costs nothing in the request logs or
download counters) and give each version the push time a real ghcr.io would show as created_at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.ghcr.model import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, digest_of
from tests.support.ghcr.server import GhcrEmulator

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def _stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2).encode()


@dataclass
class Manifest:
    digest: str
    media_type: str
    data: bytes
    tags: list[str] = field(default_factory=list)
    platform: dict[str, str] | None = None
    children: list[Manifest] = field(default_factory=list)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        if self.platform:
            d["platform"] = self.platform
        return {**d, **extra}


class Builder:
    """Pushes into one package, `owner/name` as on /v2."""

    def __init__(self, emu: GhcrEmulator, repo: str, *, visibility: str = "private", created: dt.datetime):
        owner, _, name = repo.partition("/")
        self.emu = emu
        self.repo = repo
        self.pkg = emu.store.package(owner, name, visibility=visibility, created=created)

    def blob(self, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": media_type,
            "digest": self.emu.store.add_blob(self.pkg, data),
            "size": len(data),
            **extra,
        }

    def push(self, doc: dict[str, Any], tags: list[str], pushed: dt.datetime, **kw: Any) -> Manifest:
        data = _dumps(doc)
        mt = doc["mediaType"]
        wanted: list[str | None] = list(tags) or [None]
        for tag in wanted:
            v = self.emu.store.put_manifest(self.pkg, data, mt, tag, pushed)
        v.created_at = v.updated_at = pushed
        return Manifest(digest_of(data), mt, data, list(tags), **kw)

    def image(
        self,
        built: dt.datetime,
        tags: list[str] | None = None,
        *,
        arch: str = "amd64",
        os: str = "linux",
        oci: bool = True,
        pushed: dt.datetime | None = None,
        labels: dict[str, str] | None = None,
    ) -> Manifest:
        """One platform image: a config with `created` = built, one layer unique to it."""
        layer = hashlib.sha256(f"{self.repo}/{arch}/{os}/{built.isoformat()}".encode()).digest() * 8
        config = {
            "architecture": arch,
            "os": os,
            "created": _stamp(built),
            "config": {"Labels": labels or {}},
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
            "history": [{"created": _stamp(built), "created_by": "COPY app /app # buildkit"}],
        }
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
            "config": self.blob(_dumps(config), OCI_CONFIG if oci else DOCKER_CONFIG),
            "layers": [self.blob(layer, OCI_LAYER if oci else DOCKER_LAYER)],
        }
        platform = {"architecture": arch, "os": os}
        return self.push(doc, tags or [], pushed or built + dt.timedelta(minutes=3), platform=platform)

    def attestation(self, subject: Manifest, built: dt.datetime) -> Manifest:
        """A buildx provenance manifest: platform unknown/unknown, an in-toto layer."""
        statement = {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "_", "digest": {"sha256": subject.digest[7:]}}],
        }
        layer = self.blob(
            _dumps(statement), IN_TOTO, annotations={"in-toto.io/predicate-type": statement["predicateType"]}
        )
        config = {
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
        }
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.blob(_dumps(config), OCI_CONFIG),
            "layers": [layer],
        }
        return self.push(
            doc, [], built + dt.timedelta(minutes=3), platform={"architecture": "unknown", "os": "unknown"}
        )

    def index(
        self,
        children: list[Manifest],
        tags: list[str],
        pushed: dt.datetime,
        *,
        oci: bool = True,
        attestations: list[Manifest] | None = None,
    ) -> Manifest:
        entries = [c.descriptor() for c in children]
        for att, child in zip(attestations or [], children, strict=False):
            entries.append(
                att.descriptor(
                    annotations={
                        "vnd.docker.reference.digest": child.digest,
                        "vnd.docker.reference.type": "attestation-manifest",
                    }
                )
            )
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX if oci else DOCKER_LIST, "manifests": entries}
        return self.push(doc, tags, pushed, children=[*children, *(attestations or [])])

    def multiarch(
        self,
        built: dt.datetime,
        tags: list[str],
        *,
        archs: tuple[str, ...] = ("amd64", "arm64"),
        attest: bool = True,
        oci: bool = True,
    ) -> Manifest:
        """What `docker buildx build --platform ... --push` leaves: untagged children, tagged index."""
        children = [self.image(built, arch=a, oci=oci) for a in archs]
        atts = [self.attestation(c, built) for c in children] if attest and oci else []
        return self.index(children, tags, built + dt.timedelta(minutes=4), oci=oci, attestations=atts)

    def cosign(self, subject: Manifest, suffix: str, pushed: dt.datetime) -> Manifest:
        """cosign's tag scheme: sha256-<hex>.sig / .att / .sbom in the same package."""
        kinds = {
            "sig": "application/vnd.dev.cosign.simplesigning.v1+json",
            "att": "application/vnd.dsse.envelope.v1+json",
            "sbom": "text/spdx+json",
        }
        payload = {
            "critical": {
                "identity": {"docker-reference": f"ghcr.io/{self.repo}"},
                "image": {"docker-manifest-digest": subject.digest},
                "type": f"cosign container image {suffix}",
            },
            "optional": None,
        }
        layer = self.blob(
            _dumps(payload),
            kinds[suffix],
            annotations={"dev.cosignproject.cosign/signature": "MEUCIQDemo" + suffix},
        )
        config = self.blob(
            _dumps(
                {
                    "architecture": "",
                    "os": "",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
                }
            ),
            OCI_CONFIG,
        )
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
        return self.push(doc, [subject.digest.replace(":", "-") + "." + suffix], pushed)

    def referrer(
        self, subject: Manifest, pushed: dt.datetime, artifact_type: str = SIGSTORE_BUNDLE
    ) -> Manifest:
        """An OCI 1.1 referrer: untagged, `subject` names the image (ghcr has no referrers API)."""
        bundle = {
            "mediaType": artifact_type,
            "verificationMaterial": {},
            "messageSignature": {"digest": subject.digest},
        }
        subject_descriptor = subject.descriptor()
        subject_descriptor.pop("platform", None)
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": self.blob(b"{}", OCI_EMPTY),
            "layers": [self.blob(_dumps(bundle), artifact_type)],
            "subject": subject_descriptor,
            "annotations": {"org.opencontainers.image.created": _stamp(pushed)},
        }
        return self.push(doc, [], pushed)
