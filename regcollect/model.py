"""The inventory both sides produce: artifacts, their tags, what they reach, and the bytes they hold.

Remote: one artifact per (repository, manifest digest). Local: one artifact per (repository, image
id); an image tagged in two repositories appears twice with the same id, and `global_ids` tells the
planner that deleting that id deletes it everywhere (the engine's semantics).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import Enum

# cosign and the OCI referrers fallback name tags after the digest they belong to.
SUBJECT_TAG_RE = re.compile(r"^(sha256|sha512)-([a-f0-9]{64}|[a-f0-9]{128})(?:\.([a-z]+))?$")


class Kind(str, Enum):
    IMAGE = "image"
    INDEX = "index"
    REFERRER = "referrer"  # signature, attestation, SBOM, referrers fallback index


@dataclass(frozen=True)
class Blob:
    """A unit of storage: a layer, a config, or (local) a run of layers only ever used together."""

    digest: str
    size: int


@dataclass
class Artifact:
    repository: str
    digest: str
    kind: Kind = Kind.IMAGE
    media_type: str = ""
    tags: tuple[str, ...] = ()
    created: dt.datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    children: tuple[str, ...] = ()  # digests this needs: index children, or a local parent image
    subject: str | None = None  # the digest this one refers to (signature -> image)
    blobs: tuple[Blob, ...] = ()
    size: int = 0  # the manifest's own bytes (remote); 0 locally
    last_used: dt.datetime | None = None  # local: latest of created, LastTagTime, containers, watch
    last_used_source: str | None = None  # local: which of those it is (docs/local.md)
    platform: str = ""
    containers: tuple[ContainerUse, ...] = ()  # local: containers made from this image
    manifest_digests: tuple[str, ...] = ()  # local: registry digests it is known by (RepoDigests)
    raw: bytes | None = None  # remote: the manifest bytes as served (for the journal and restore)
    # Other evidence of age when `created` is not usable (a reproducible build's 1970): a push
    # time from a vendor API, and when regcollect first saw this digest (the state database).
    pushed: dt.datetime | None = None
    first_seen: dt.datetime | None = None
    version_id: str | None = None  # the vendor's id for this manifest (a GitHub package version)
    pulled: dt.datetime | None = None  # last pull (Docker Hub, Harbor; local last use); None: never

    @property
    def short(self) -> str:
        hexpart = self.digest.split(":", 1)[-1]
        return f"{self.digest.split(':', 1)[0]}:{hexpart[:12]}"

    def label(self) -> str:
        """How a person names it: its first tag, else its short digest."""
        return f"{self.repository}:{self.tags[0]}" if self.tags else f"{self.repository}@{self.short}"


@dataclass(frozen=True)
class ContainerUse:
    id: str
    name: str
    running: bool
    created: dt.datetime | None = None
    used: dt.datetime | None = None  # its last start or stop (inspect; only when last use matters)


@dataclass
class Inventory:
    source: str  # "remote" or "local"
    target: str  # registry host, or engine address
    artifacts: list[Artifact] = field(default_factory=list)
    global_ids: bool = False  # local: one id is one image across repositories
    repositories: list[str] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)  # other names a rule may match
    # Protected by the environment, whatever the policy says (a running container, --min-age).
    pinned: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what could not be read: left untouched
    unread: list[str] = field(default_factory=list)  # the repositories those errors are about
    pull_times: bool = False  # the source reports last pulls: `unpulled_for` can be answered


def subject_from_tag(tag: str) -> str | None:
    """`sha256-<hex>`, `sha256-<hex>.sig|.att|.sbom` name the digest they belong to."""
    m = SUBJECT_TAG_RE.match(tag)
    return f"{m.group(1)}:{m.group(2)}" if m else None
