"""The state both sides of the ghcr emulator share: owners -> packages -> versions, and content.

A version is one manifest digest in one package (hosted-registries.md 1.1). The /v2 side only sees
active versions, so deleting a version makes its manifest and tags vanish from /v2 and a restore
brings them back, without copying any bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import threading
from dataclasses import dataclass, field

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Version:
    id: int
    digest: str
    media_type: str
    tags: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime
    state: str = "active"  # or "deleted"
    deleted_at: dt.datetime | None = None
    downloads: int = 0


@dataclass
class Package:
    id: int
    owner: str
    name: str
    visibility: str  # "private" | "public"
    created_at: dt.datetime
    versions: dict[int, Version] = field(default_factory=dict)
    blobs: set[str] = field(default_factory=set)
    admins: set[str] = field(default_factory=set)  # logins with the admin role on this package

    def active(self) -> list[Version]:
        return [v for v in self.versions.values() if v.state == "active"]

    def by_digest(self, digest: str) -> Version | None:
        return next((v for v in self.active() if v.digest == digest), None)

    def by_tag(self, tag: str) -> Version | None:
        return next((v for v in self.active() if tag in v.tags), None)

    def tags(self) -> list[str]:
        return sorted(t for v in self.active() for t in v.tags)

    def updated_at(self) -> dt.datetime:
        return max([self.created_at, *(v.updated_at for v in self.versions.values())])


@dataclass
class Owner:
    login: str
    type: str  # "User" | "Organization"
    id: int
    admins: set[str] = field(default_factory=set)  # logins that administer every package of the owner
    members: set[str] = field(default_factory=set)  # logins that may read its private packages
    packages: dict[str, Package] = field(default_factory=dict)


class Store:
    """All state, guarded by one lock (the servers are threaded)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.owners: dict[str, Owner] = {}
        self.content: dict[str, bytes] = {}  # manifests and blobs, by digest
        self._ids = itertools.count(1001)
        self._version_ids = itertools.count(100_000_001)

    # -- owners and packages -----------------------------------------------------------------
    def owner(
        self,
        login: str,
        type: str = "Organization",
        admins: tuple[str, ...] = (),
        members: tuple[str, ...] = (),
    ) -> Owner:
        with self.lock:
            if login not in self.owners:
                self.owners[login] = Owner(login, type, next(self._ids))
            o = self.owners[login]
            o.admins.update(admins)
            o.members.update(members)
            return o

    def package(
        self, owner: str, name: str, *, visibility: str = "private", created: dt.datetime | None = None
    ) -> Package:
        with self.lock:
            o = self.owners[owner]
            if name not in o.packages:
                when = created or dt.datetime.now(dt.UTC)
                o.packages[name] = Package(next(self._ids), owner, name, visibility, when)
            return o.packages[name]

    def find(self, repo: str) -> Package | None:
        """The package a /v2 repository name ("owner/team/app") means, if any."""
        owner, _, name = repo.partition("/")
        o = self.owners.get(owner)
        return o.packages.get(name) if o else None

    def is_admin(self, login: str, pkg: Package) -> bool:
        o = self.owners[pkg.owner]
        return login in pkg.admins or login in o.admins or (o.type == "User" and login == o.login)

    def is_member(self, login: str, owner: str) -> bool:
        o = self.owners.get(owner)
        return o is not None and (login == o.login or login in o.admins or login in o.members)

    # -- content -----------------------------------------------------------------------------
    def add_blob(self, pkg: Package, data: bytes) -> str:
        d = digest_of(data)
        with self.lock:
            self.content[d] = data
            pkg.blobs.add(d)
        return d

    def put_manifest(
        self,
        pkg: Package,
        data: bytes,
        media_type: str,
        tag: str | None,
        now: dt.datetime,
        *,
        touch_on_tag_move: bool = True,
    ) -> Version:
        """Store a manifest as a version (new unless the digest is already active) and move the tag."""
        d = digest_of(data)
        with self.lock:
            self.content[d] = data
            v = pkg.by_digest(d)
            if v is None:
                v = Version(next(self._version_ids), d, media_type, [], now, now)
                pkg.versions[v.id] = v
            if tag is not None and tag not in v.tags:
                old = pkg.by_tag(tag)
                if old is not None:
                    old.tags.remove(tag)
                    if touch_on_tag_move:
                        old.updated_at = now
                v.tags.append(tag)
                if touch_on_tag_move:
                    v.updated_at = max(v.updated_at, now)
            return v

    # -- versions ----------------------------------------------------------------------------
    def delete_version(self, v: Version, now: dt.datetime) -> None:
        with self.lock:
            v.state = "deleted"
            v.deleted_at = now

    def restore_version(self, pkg: Package, v: Version) -> None:
        """Back to active. A tag another active version holds now stays there (the namespace was reused)."""
        with self.lock:
            taken = {t for other in pkg.active() for t in other.tags}
            v.tags = [t for t in v.tags if t not in taken]
            v.state = "active"
            v.deleted_at = None

    def manifest(self, pkg: Package, reference: str) -> Version | None:
        with self.lock:
            if reference.startswith("sha256:"):
                return pkg.by_digest(reference)
            return pkg.by_tag(reference)
