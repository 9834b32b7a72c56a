"""The state both sides of the Docker Hub emulator share: namespaces -> repositories -> tags and
stored manifests, content by digest, accounts and their secrets.

A Repo has the methods tests/support/ghcr/seed.py's Builder calls on a store (package, add_blob,
put_manifest), so the ghcr builders push realistic content here too.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from dataclasses import dataclass, field

from tests.support.ghcr.model import MANIFEST_TYPES, digest_of

__all__ = ["MANIFEST_TYPES", "Account", "Repo", "Stored", "Store", "Tag", "digest_of"]


@dataclass
class Stored:
    """One manifest stored in a repository (tagged or not)."""

    digest: str
    media_type: str
    created_at: dt.datetime
    updated_at: dt.datetime
    last_pulled: dt.datetime | None = None
    pulls: int = 0  # manifest GETs: each one a pull against the quota


@dataclass
class Tag:
    id: int
    name: str
    digest: str
    last_pushed: dt.datetime
    last_pulled: dt.datetime | None = None


@dataclass
class Repo:
    namespace: str
    name: str
    private: bool
    created: dt.datetime
    tags: dict[str, Tag] = field(default_factory=dict)
    manifests: dict[str, Stored] = field(default_factory=dict)
    blobs: set[str] = field(default_factory=set)

    @property
    def full(self) -> str:
        return f"{self.namespace}/{self.name}"

    def tags_of(self, digest: str) -> list[str]:
        return sorted(t.name for t in self.tags.values() if t.digest == digest)

    def referenced(self, digest: str, content: dict[str, bytes]) -> bool:
        """Named by another stored manifest: an index's child or a referrer's subject."""
        for other in self.manifests:
            if other == digest:
                continue
            doc = json.loads(content[other])
            if any(m.get("digest") == digest for m in doc.get("manifests") or []):
                return True
            if (doc.get("subject") or {}).get("digest") == digest:
                return True
        return False


@dataclass
class Account:
    """A user or an organisation, and the secrets that log in as it: secret -> access
    ("admin" = Read, Write, Delete; "write"; "read"). A user's password is "admin"."""

    name: str
    org: bool = False
    secrets: dict[str, str] = field(default_factory=dict)
    member_of: set[str] = field(default_factory=set)  # namespaces it may administer
    two_factor: bool = False


def is_token(secret: str) -> bool:
    """Personal (dckr_pat_) and organisation (dckr_oat_) access tokens; anything else is a password."""
    return secret.startswith(("dckr_pat_", "dckr_oat_"))


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}
        self.content: dict[str, bytes] = {}
        self.accounts: dict[str, Account] = {}
        self._ids = itertools.count(5001)

    def account(self, name: str, *, org: bool = False, members: tuple[str, ...] = ()) -> Account:
        with self.lock:
            a = self.accounts.setdefault(name, Account(name, org))
            a.member_of.add(name)
            for m in members:
                self.account(m).member_of.add(name)
            return a

    def find(self, repo: str) -> Repo | None:
        return self.repos.get(repo)

    # Builder's store interface ----------------------------------------------------------------
    def package(self, owner: str, name: str, *, visibility: str = "public", created: dt.datetime) -> Repo:
        with self.lock:
            key = f"{owner}/{name}"
            if key not in self.repos:
                self.account(owner)
                self.repos[key] = Repo(owner, name, visibility == "private", created)
            return self.repos[key]

    def add_blob(self, repo: Repo, data: bytes) -> str:
        d = digest_of(data)
        with self.lock:
            self.content[d] = data
            repo.blobs.add(d)
        return d

    def put_manifest(
        self, repo: Repo, data: bytes, media_type: str, tag: str | None, now: dt.datetime
    ) -> Stored:
        d = digest_of(data)
        with self.lock:
            self.content[d] = data
            m = repo.manifests.get(d)
            if m is None:
                m = repo.manifests[d] = Stored(d, media_type, now, now)
            if tag is not None:
                old = repo.tags.get(tag)
                repo.tags[tag] = Tag(old.id if old else next(self._ids), tag, d, now)
            return m

    # what the Hub does -----------------------------------------------------------------------
    def delete_tag(self, repo: Repo, tag: str, *, drop_untagged: bool) -> bool:
        with self.lock:
            t = repo.tags.pop(tag, None)
            if t is None:
                return False
            if drop_untagged and not repo.tags_of(t.digest):
                repo.manifests.pop(t.digest, None)
            return True

    def purge(self) -> int:
        """The Hub's own garbage collection: blobs no stored manifest needs go."""
        with self.lock:
            dropped = 0
            for repo in self.repos.values():
                needed: set[str] = set()
                for d in repo.manifests:
                    doc = json.loads(self.content[d])
                    for x in [doc.get("config") or {}, *(doc.get("layers") or [])]:
                        if isinstance(x.get("digest"), str):
                            needed.add(x["digest"])
                dropped += len(repo.blobs - needed)
                repo.blobs &= needed
            return dropped
