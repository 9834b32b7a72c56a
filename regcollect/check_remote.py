"""The remote half of `regcollect check`: walk a repository through the RegistryApi seam and the
Registry API (GET manifests by digest, HEAD subjects and blobs, never GET a layer) into findings.

Per repository: read every manifest a tag or the API's version list reaches, and every child an
index names (discovery for planning skips a missing child; here it is the finding); HEAD the
subject of every referrer; with `blobs`, HEAD every config and layer blob. Orphan children need
evidence that an index named them: a journal of regcollect's own deletes (docs/check.md says
what plain distribution can and cannot show).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from regcollect.check import (
    BROKEN_INDEX,
    MISSING_BLOB,
    ORPHAN_CHILD,
    ORPHAN_REFERRER,
    UNREADABLE,
    Finding,
)
from regcollect.errors import AuthError, ConnectError, NotFound, RegcollectError, RegistryError
from regcollect.model import Artifact, Kind, subject_from_tag
from regcollect.registry.api import RegistryApi
from regcollect.registry.client import INDEX_TYPES, Manifest, is_digest


@dataclass
class Node:
    manifest: Manifest
    doc: dict[str, Any]
    tags: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)  # indexes that name it
    listed: bool = False  # the API listed it as a version (GitHub), not only reached

    @property
    def children(self) -> list[str]:
        return _digests(self.doc.get("manifests"))

    @property
    def subject(self) -> str | None:
        s = self.doc.get("subject")
        d = s.get("digest") if isinstance(s, dict) else None
        return d if isinstance(d, str) else next(filter(None, map(subject_from_tag, self.tags)), None)

    @property
    def blobs(self) -> list[str]:
        return _digests([self.doc.get("config"), *(_list(self.doc.get("layers")))])


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _digests(entries: Any) -> list[str]:
    """Descriptor digests; an entry that names no valid digest makes the manifest unreadable."""
    out = []
    for e in _list(entries):
        if isinstance(e, dict) and "digest" in e:
            if not isinstance(e["digest"], str) or not is_digest(e["digest"]):
                raise ValueError(f"a descriptor names an invalid digest {str(e['digest'])[:80]!r}")
            out.append(e["digest"])
    return out


def deleted_indexes(records: Iterable[dict[str, Any]], host: str) -> dict[str, dict[str, list[str]]]:
    """repo -> deleted index digest -> its children, from journal intents (pure)."""
    out: dict[str, dict[str, list[str]]] = {}
    for r in records:
        children = r.get("children")
        if (
            r.get("type") == "intent"
            and r.get("source") == "remote"
            and r.get("registry") == host
            and r.get("action") == "delete"
            and isinstance(r.get("repository"), str)
            and isinstance(r.get("digest"), str)
            and isinstance(children, list)
            and children
        ):
            kids = [c for c in children if isinstance(c, str) and is_digest(c)]
            out.setdefault(r["repository"], {})[r["digest"]] = kids
    return out


class RemoteCheck:
    def __init__(self, api: RegistryApi, *, blobs: bool = False, journal: Iterable[dict[str, Any]] = ()):
        self.api = api
        self.client = api.client
        self.blobs = blobs
        self.deleted = deleted_indexes(journal, self.client.host)
        self.errors: list[str] = []
        self.warnings: list[str] = []

    async def run(self, patterns: list[str]) -> list[Finding]:
        await self.client.ping()
        repos = await self.api.repositories(patterns or ["**"])
        results = await asyncio.gather(*(self.repository(r) for r in repos), return_exceptions=True)
        findings: list[Finding] = []
        for repo, res in zip(repos, results, strict=True):
            if isinstance(res, list):
                findings.extend(res)
            elif isinstance(res, RegcollectError) and not isinstance(res, AuthError | ConnectError):
                self.errors.append(f"repository {repo} could not be checked: {res}")
            else:
                raise res
        return findings

    async def repository(self, repo: str) -> list[Finding]:
        listing = await self.api.listing(repo)
        nodes: dict[str, Node] = {}
        found: list[Finding] = []

        async def read(ref: str, tag: str | None = None) -> Node | None:
            try:
                m = await self.client.get_manifest(repo, ref)
                doc = m.json()
                node = nodes.setdefault(m.digest, Node(m, doc))
                _ = (node.children, node.subject, node.blobs)  # parse the descriptors here
                return node
            except NotFound:
                return None
            except (RegistryError, ValueError) as exc:
                if isinstance(exc, RegistryError) and exc.status is not None:
                    raise
                if "schema1" in str(exc):
                    self.warnings.append(f"{repo}: {ref}: schema1 manifest not checked")
                    return None
                digest = ref if is_digest(ref) else await self._digest_of(repo, ref)
                found.append(Finding(UNREADABLE, repo, digest, (tag,) if tag else (), str(exc)))
                return None

        tags = list(listing.tags)
        refs = [listing.tags[t] or t for t in tags]
        for tag, node in zip(
            tags, await asyncio.gather(*(read(r, t) for t, r in zip(tags, refs, strict=True))), strict=True
        ):
            if node is not None:
                node.tags.append(tag)
        listed = [d for d in listing.versions if d not in nodes]
        for node in filter(None, await asyncio.gather(*(read(d) for d in listed))):
            node.listed = True
        await self._children(repo, nodes, read, found)
        await asyncio.gather(*(self._subject(repo, d, n, nodes, found) for d, n in list(nodes.items())))
        if self.blobs:
            await self._blobs(repo, nodes, found)
        found.extend(await self._orphan_children(repo, nodes))
        for f in found:  # APIs that delete by version id (GitHub) need it for --fix
            if f.artifact is not None and f.digest in listing.versions:
                f.artifact.version_id = listing.versions[f.digest].id
        return found

    async def _digest_of(self, repo: str, tag: str) -> str:
        """The digest a tag names, from HEAD alone (its content is what cannot be read)."""
        try:
            return await self.client.head_manifest(repo, tag) or ""
        except (RegistryError, ValueError):
            return ""

    async def _children(self, repo: str, nodes: dict[str, Node], read: Any, found: list[Finding]) -> None:
        """Every index at any depth: a child that is gone is the finding."""
        todo = [d for d, n in nodes.items() if n.children]
        while todo:
            nxt: list[str] = []
            for parent in todo:
                p = nodes[parent]
                kids = [c for c in p.children if c not in nodes]
                got = await asyncio.gather(*(read(c) for c in kids))
                missing = [c for c, n in zip(kids, got, strict=True) if n is None]
                missing = [c for c in missing if not any(f.digest == c for f in found)]
                if missing:
                    found.append(
                        Finding(
                            BROKEN_INDEX,
                            repo,
                            parent,
                            tuple(p.tags),
                            f"child {', '.join(missing)} is missing",
                        )
                    )
                for c in p.children:
                    if c in nodes:
                        nodes[c].parents.append(parent)
                nxt += [c for c, n in zip(kids, got, strict=True) if n is not None and n.children]
            todo = nxt

    async def _subject(
        self, repo: str, digest: str, n: Node, nodes: dict[str, Node], found: list[Finding]
    ) -> None:
        subject = n.subject
        if subject is None or subject in nodes or not is_digest(subject):
            return
        if await self.client.head_manifest(repo, subject) is None:
            found.append(
                Finding(
                    ORPHAN_REFERRER,
                    repo,
                    digest,
                    tuple(n.tags),
                    f"subject {subject} does not exist",
                    artifact=_artifact(repo, digest, n, Kind.REFERRER, subject),
                )
            )

    async def _blobs(self, repo: str, nodes: dict[str, Node], found: list[Finding]) -> None:
        wanted = sorted({b for n in nodes.values() for b in n.blobs})
        there = dict(
            zip(
                wanted, await asyncio.gather(*(self.client.blob_exists(repo, b) for b in wanted)), strict=True
            )
        )
        for d, n in nodes.items():
            gone = [b for b in n.blobs if not there[b]]
            if gone:
                found.append(Finding(MISSING_BLOB, repo, d, tuple(n.tags), f"blob {', '.join(gone)} is gone"))

    async def _orphan_children(self, repo: str, nodes: dict[str, Node]) -> list[Finding]:
        """Children of indexes a journal shows deleted, now untagged and named by nothing visible."""
        out: list[Finding] = []
        named = {c for n in nodes.values() for c in n.children} | {n.subject for n in nodes.values()}
        for index, kids in sorted(self.deleted.get(repo, {}).items()):
            if index in nodes or await self.client.head_manifest(repo, index) is not None:
                continue  # the index is back (restored or re-pushed): its children are not orphans
            for c in kids:
                n = nodes.get(c)
                if n is None:
                    try:
                        m = await self.client.get_manifest(repo, c)
                        n = Node(m, m.json())
                    except NotFound:
                        continue  # gone as well: nothing left over
                    except (RegistryError, ValueError):
                        continue  # not readable: not something to delete blind
                if n.tags or c in named or n.subject or any(f.digest == c for f in out):
                    continue
                art = _artifact(repo, c, n, Kind.INDEX if n.children else Kind.IMAGE, None)
                out.append(
                    Finding(ORPHAN_CHILD, repo, c, (), f"child of deleted index {index}", artifact=art)
                )
        return out


def _artifact(repo: str, digest: str, n: Node, kind: Kind, subject: str | None) -> Artifact:
    m = n.manifest
    return Artifact(
        repository=repo,
        digest=digest,
        kind=kind,
        media_type=m.media_type,
        tags=tuple(sorted(n.tags)),
        subject=subject,
        children=tuple(n.children) if m.media_type in INDEX_TYPES or n.children else (),
        raw=m.data,
        size=len(m.data),
    )
