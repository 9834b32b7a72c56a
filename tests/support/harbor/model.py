"""The state of the Harbor emulator: projects -> repositories -> artifacts, and content.

An artifact is one manifest digest in one repository (hosted-registries.md section 4). Which
artifacts are index children (listed inside their parent's `references`) and which are accessories
(signatures, SBOMs: listed inside their subject's `accessories`) is decided as Harbor does at push
time: a manifest with `subject`, or cosign's `sha256-<hex>.sig|.att|.sbom` tag, is an accessory of
that subject; a digest some index in the repository names is a child.

The store keeps the interface of the ghcr emulator's store that tests/support/ghcr/seed.Builder
writes through (package, add_blob, put_manifest), so the same builders seed both emulators.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
from dataclasses import dataclass, field

from tests.support.ghcr.model import digest_of

COSIGN_TAG = re.compile(r"^sha256-([0-9a-f]{64})\.(sig|att|sbom)$")
COSIGN_TYPES = {"sig": "signature.cosign", "att": "attestation.cosign", "sbom": "sbom.cosign"}


@dataclass
class Artifact:
    id: int
    digest: str
    media_type: str
    tags: list[str]
    created_at: dt.datetime  # Harbor's push_time (the name Builder sets)
    updated_at: dt.datetime
    pull_time: dt.datetime | None = None  # None: never pulled (sent as the zero time)
    subject: str | None = None  # accessory of this digest
    accessory_type: str | None = None

    def doc(self, content: dict[str, bytes]) -> dict[str, object]:
        try:
            d = json.loads(content[self.digest])
        except ValueError:
            return {}
        return d if isinstance(d, dict) else {}


@dataclass
class Repository:
    id: int
    project: str
    name: str  # "project/rest", as on /v2
    blobs: set[str] = field(default_factory=set)
    artifacts: dict[str, Artifact] = field(default_factory=dict)  # digest -> artifact

    def by_digest(self, digest: str) -> Artifact | None:
        return self.artifacts.get(digest)

    def by_tag(self, tag: str) -> Artifact | None:
        return next((a for a in self.artifacts.values() if tag in a.tags), None)

    def tags(self) -> list[str]:
        return sorted(t for a in self.artifacts.values() for t in a.tags)

    @property
    def short(self) -> str:
        return self.name.partition("/")[2]


@dataclass
class Project:
    id: int
    name: str
    public: bool
    repositories: dict[str, Repository] = field(default_factory=dict)  # full name -> repository


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.projects: dict[str, Project] = {}
        self.content: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._artifact_ids = itertools.count(101)

    # -- projects and repositories -----------------------------------------------------------
    def project(self, name: str, public: bool = False) -> Project:
        with self.lock:
            if name not in self.projects:
                self.projects[name] = Project(next(self._ids), name, public)
            return self.projects[name]

    def package(
        self, owner: str, name: str, *, visibility: str = "private", created: dt.datetime | None = None
    ) -> Repository:
        """Builder's name for a repository: `owner` is the project, `name` the rest."""
        with self.lock:
            p = self.projects.get(owner) or self.project(owner, public=visibility == "public")
            full = f"{owner}/{name}"
            if full not in p.repositories:
                p.repositories[full] = Repository(next(self._ids), owner, full)
            return p.repositories[full]

    def find(self, repo: str) -> Repository | None:
        p = self.projects.get(repo.partition("/")[0])
        return p.repositories.get(repo) if p else None

    # -- content -----------------------------------------------------------------------------
    def add_blob(self, repo: Repository, data: bytes) -> str:
        d = digest_of(data)
        with self.lock:
            self.content[d] = data
            repo.blobs.add(d)
        return d

    def put_manifest(
        self, repo: Repository, data: bytes, media_type: str, tag: str | None, now: dt.datetime
    ) -> Artifact:
        d = digest_of(data)
        with self.lock:
            self.content[d] = data
            a = repo.by_digest(d)
            if a is None:
                a = Artifact(next(self._artifact_ids), d, media_type, [], now, now)
                repo.artifacts[d] = a
                subject = a.doc(self.content).get("subject")
                if isinstance(subject, dict) and isinstance(subject.get("digest"), str):
                    a.subject, a.accessory_type = subject["digest"], "subject.accessory"
            if tag is not None and tag not in a.tags:
                old = repo.by_tag(tag)
                if old is not None:
                    old.tags.remove(tag)
                a.tags.append(tag)
                m = COSIGN_TAG.match(tag)
                if m and a.subject is None:
                    a.subject, a.accessory_type = f"sha256:{m.group(1)}", COSIGN_TYPES[m.group(2)]
            return a

    # -- relations ---------------------------------------------------------------------------
    def children(self, repo: Repository, a: Artifact) -> list[tuple[str, dict[str, object]]]:
        """(child digest, descriptor) for each child an index names that the repository holds."""
        entries = a.doc(self.content).get("manifests")
        out = []
        for e in entries if isinstance(entries, list) else []:
            if isinstance(e, dict) and e.get("digest") in repo.artifacts:
                out.append((str(e["digest"]), e))
        return out

    def parents(self, repo: Repository, digest: str) -> list[Artifact]:
        return [a for a in repo.artifacts.values() if any(d == digest for d, _ in self.children(repo, a))]

    def accessories(self, repo: Repository, digest: str) -> list[Artifact]:
        return [a for a in repo.artifacts.values() if a.subject == digest]

    def top_level(self, repo: Repository) -> list[Artifact]:
        """What the artifact list shows as rows: neither a child nor an accessory."""
        named = {d for a in repo.artifacts.values() for d, _ in self.children(repo, a)}
        return [a for a in repo.artifacts.values() if a.digest not in named and a.subject is None]

    def remove(self, repo: Repository, a: Artifact, *, accessories: bool, children: bool) -> list[str]:
        """Delete an artifact; with it its accessories and the children no other index names."""
        with self.lock:
            gone = [a.digest]
            kids = [d for d, _ in self.children(repo, a)]
            repo.artifacts.pop(a.digest, None)
            if accessories:
                for acc in self.accessories(repo, a.digest):
                    gone += self.remove(repo, acc, accessories=True, children=children)
            if children:
                for d in kids:
                    child = repo.artifacts.get(d)
                    if child is not None and not child.tags and not self.parents(repo, d):
                        gone += self.remove(repo, child, accessories=accessories, children=True)
            return gone
