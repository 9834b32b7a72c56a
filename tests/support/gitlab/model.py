"""The state both sides of the GitLab emulator share: groups, projects, registry repositories.

A registry repository (path group/project[/name]) holds manifests by digest and tags by name; a
tag points at one manifest. Deleting a tag leaves the manifest stored, untagged, until `gc()`
(GitLab's garbage collection). The method names the ghcr emulator's /v2 side and seed Builder
call (find, package, manifest, put_manifest, add_blob, content, by_digest, by_tag, tags) are
kept, so both are reused as they are.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from dataclasses import dataclass, field

from tests.support.ghcr.model import digest_of


@dataclass
class Entry:
    """One stored manifest (`downloads`, `created_at`, `updated_at`: what the ghcr side sets)."""

    digest: str
    media_type: str
    created_at: dt.datetime
    updated_at: dt.datetime
    downloads: int = 0


@dataclass
class Tag:
    name: str
    digest: str
    created_at: dt.datetime  # when the tag was pushed (last moved)


@dataclass
class Project:
    id: int
    path: str
    visibility: str  # "private" | "public"


@dataclass
class Repo:
    id: int
    project: Project
    path: str
    created_at: dt.datetime
    manifests: dict[str, Entry] = field(default_factory=dict)
    tag_map: dict[str, Tag] = field(default_factory=dict)
    blobs: set[str] = field(default_factory=set)

    @property
    def owner(self) -> str:
        return self.path.partition("/")[0]

    @property
    def name(self) -> str:
        """The path after the first segment: "{owner}/{name}" is the /v2 name."""
        return self.path.partition("/")[2]

    @property
    def short_name(self) -> str:
        """GitLab's `name`: the part after the project path ("" for the project's own)."""
        return self.path[len(self.project.path) :].lstrip("/")

    def by_digest(self, digest: str) -> Entry | None:
        return self.manifests.get(digest)

    def by_tag(self, tag: str) -> Entry | None:
        t = self.tag_map.get(tag)
        return self.manifests.get(t.digest) if t else None

    def tags(self) -> list[str]:
        return sorted(self.tag_map)

    def tagged(self, digest: str) -> list[str]:
        return sorted(t.name for t in self.tag_map.values() if t.digest == digest)


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.content: dict[str, bytes] = {}
        self.groups: dict[str, int] = {}  # path -> id (subgroups included)
        self.projects: dict[str, Project] = {}
        self.repos: dict[str, Repo] = {}
        self._ids = itertools.count(11)

    @property
    def owners(self) -> set[str]:
        """Top-level namespaces (the ghcr /v2 side asks `owner in store.owners` before a push)."""
        return {p.split("/")[0] for p in [*self.groups, *self.projects]}

    def group(self, path: str) -> int:
        with self.lock:
            parts = path.split("/")
            for n in range(1, len(parts) + 1):
                self.groups.setdefault("/".join(parts[:n]), next(self._ids))
            return self.groups[path]

    def project(self, path: str, visibility: str = "private") -> Project:
        with self.lock:
            if path not in self.projects:
                self.group(path.rpartition("/")[0])
                self.projects[path] = Project(next(self._ids), path, visibility)
            return self.projects[path]

    def project_of(self, path: str) -> Project | None:
        parts = path.split("/")
        for n in range(len(parts), 1, -1):
            p = self.projects.get("/".join(parts[:n]))
            if p is not None:
                return p
        return None

    def package(
        self, owner: str, name: str, *, visibility: str | None = None, created: dt.datetime | None = None
    ) -> Repo:
        """The repository at owner/name, made on first use inside its (existing) project."""
        path = f"{owner}/{name}"
        with self.lock:
            if path not in self.repos:
                project = self.project_of(path)
                if project is None:
                    raise KeyError(f"no GitLab project holds {path}")
                when = created or dt.datetime.now(dt.UTC)
                self.repos[path] = Repo(next(self._ids), project, path, when)
            return self.repos[path]

    def find(self, path: str) -> Repo | None:
        return self.repos.get(path)

    def repo_by_id(self, rid: int) -> Repo | None:
        return next((r for r in self.repos.values() if r.id == rid), None)

    def add_blob(self, repo: Repo, data: bytes) -> str:
        d = digest_of(data)
        with self.lock:
            self.content[d] = data
            repo.blobs.add(d)
        return d

    def put_manifest(
        self,
        repo: Repo,
        data: bytes,
        media_type: str,
        tag: str | None,
        now: dt.datetime,
        *,
        touch_on_tag_move: bool = True,
    ) -> Entry:
        d = digest_of(data)
        with self.lock:
            self.content[d] = data
            e = repo.manifests.setdefault(d, Entry(d, media_type, now, now))
            if tag is not None and (tag not in repo.tag_map or repo.tag_map[tag].digest != d):
                repo.tag_map[tag] = Tag(tag, d, now)
            return e

    def manifest(self, repo: Repo, reference: str) -> Entry | None:
        with self.lock:
            return repo.by_digest(reference) if reference.startswith("sha256:") else repo.by_tag(reference)

    def gc(self, *, keep_referrers: bool = True) -> list[str]:
        """GitLab's garbage collection: untagged manifests nothing tagged reaches go, then the
        blobs no manifest names. Returns the digests of the manifests removed."""
        removed = []
        with self.lock:
            for repo in self.repos.values():
                live, stack = set(), [t.digest for t in repo.tag_map.values()]
                while stack:
                    d = stack.pop()
                    if d in live or d not in repo.manifests:
                        continue
                    live.add(d)
                    doc = json.loads(self.content[d])
                    stack.extend(m["digest"] for m in doc.get("manifests") or [])
                    if keep_referrers:
                        stack.extend(
                            e.digest
                            for e in repo.manifests.values()
                            if (json.loads(self.content[e.digest]).get("subject") or {}).get("digest") == d
                        )
                for d in [d for d in repo.manifests if d not in live]:
                    del repo.manifests[d]
                    removed.append(d)
                used: set[str] = set()
                for d in repo.manifests:
                    doc = json.loads(self.content[d])
                    used.update(
                        x["digest"] for x in [doc.get("config") or {}, *(doc.get("layers") or [])] if x
                    )
                repo.blobs &= used
        return removed
