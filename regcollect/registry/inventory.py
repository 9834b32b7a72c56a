"""Discover a registry's content into the shared Inventory: repositories, tags, manifests,
index children, referrers (API, fallback tag, cosign tags), config facts and blob sizes.

A repository whose content cannot be read completely is left out with a warning: regcollect only
deletes in repositories it fully understands, because deleting a digest removes every tag on it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from regcollect.cache import FactCache
from regcollect.errors import NotFound, RegcollectError, RegistryError
from regcollect.model import Artifact, Blob, Inventory, Kind, subject_from_tag
from regcollect.registry.api import Listing, RegistryApi
from regcollect.registry.client import CONFIG_CAP, INDEX_TYPES, Manifest, is_digest
from regcollect.units import parse_time

ProgressFn = Callable[[str, int], None]


class RemoteDiscovery:
    def __init__(
        self,
        api: RegistryApi,
        *,
        cache: FactCache | None = None,
        progress: ProgressFn | None = None,
    ):
        self.api = api
        self.client = api.client
        self.cache = cache
        self.progress = progress
        self.referrers_api: bool | None = None  # probed once per registry
        self._referrers_lock = asyncio.Lock()

    async def inventory(self, patterns: list[str]) -> Inventory:
        repos = await self.api.repositories(patterns)
        inv = Inventory(
            source="remote", target=self.client.host, repositories=repos, pull_times=self.api.pull_times
        )
        results = await asyncio.gather(*(self.repository(r) for r in repos), return_exceptions=True)
        for repo, result in zip(repos, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, RegcollectError) or _fatal(result):
                    raise result
                # Not a warning: the run did not do what was asked there, and the exit code says so.
                inv.errors.append(f"repository {repo} left untouched: {result}")
                inv.unread.append(repo)
                continue
            inv.artifacts.extend(result)
        for where, names in sorted(self.client.dropped.items()):
            shown = ", ".join(repr(n)[:80] for n in names[:3]) + (" ..." if len(names) > 3 else "")
            scope = "the catalog" if where == "<catalog>" else f"repository {where}"
            inv.warnings.append(
                f"{scope}: {len(names)} name(s) that are not valid tags or repository names were "
                f"ignored: {shown}"
            )
        return inv

    async def manifest(self, repo: str, ref: str, known_digest: str | None = None) -> Manifest:
        """By digest, content-addressed data comes from the cache when we have it."""
        digest = known_digest or (ref if ref.startswith("sha256:") else None)
        if digest and self.cache:
            hit = self.cache.manifest(digest)
            if hit is not None:
                return Manifest(hit[0], hit[1], digest)
        m = await self.client.get_manifest(repo, digest or ref)
        if self.cache:
            self.cache.put_manifest(m.digest, m.data, m.media_type)
        return m

    async def config_facts(self, repo: str, digest: str, size: int = 0) -> dict[str, Any]:
        """created and labels from the image config: read once, checked against its digest by
        the client before it is parsed or cached (facts are shared across registries)."""
        if self.cache:
            hit = self.cache.config(digest)
            if hit is not None:
                return hit
        if size > CONFIG_CAP:
            return {}  # not worth reading: its created time stays unknown
        raw = await self.client.get_blob(repo, digest)
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            doc = {}
        doc = doc if isinstance(doc, dict) else {}
        cfg = doc.get("config") if isinstance(doc.get("config"), dict) else {}
        facts = {
            "created": doc.get("created"),
            "labels": (cfg or {}).get("Labels") or {},
            "os": doc.get("os", ""),
            "architecture": doc.get("architecture", ""),
        }
        if self.cache:
            self.cache.put_config(digest, facts)
        return facts

    async def resolve_tag(self, repo: str, tag: str) -> Manifest | None:
        """Seen before (a hint in the cache): HEAD the tag and reuse the cached manifest when the
        digest is unchanged. Never seen: one GET. Tags move, so a hint is only ever a hint."""
        try:
            hint = self.cache.tag_hint(self.client.host, repo, tag) if self.cache else None
            if hint is not None:
                digest = await self.client.head_manifest(repo, tag)
                if digest is None:
                    return None
                return await self.manifest(repo, tag, known_digest=digest)
            m = await self.client.get_manifest(repo, tag)
            if self.cache:
                self.cache.put_manifest(m.digest, m.data, m.media_type)
            return m
        except NotFound:
            return None  # the tag vanished between listing and reading

    async def _by_digest(self, repo: str, digest: str) -> Manifest | None:
        try:
            return await self.manifest(repo, digest)
        except NotFound:
            return None  # listed, but gone by the time we read it

    async def repository(self, repo: str) -> list[Artifact]:
        listing = await self.api.listing(repo)
        read_at = time.monotonic()
        tags = list(listing.tags)
        # Where the API names a tag's digest, the manifest is read by digest (content-addressed,
        # so from the cache on a warm run: no request at all); elsewhere the tag is resolved.
        digests = sorted({d for d in listing.tags.values() if d})
        by_known = dict(
            zip(digests, await asyncio.gather(*(self._by_digest(repo, d) for d in digests)), strict=True)
        )
        unknown = [t for t in tags if listing.tags[t] is None]
        resolved = dict(
            zip(unknown, await asyncio.gather(*(self.resolve_tag(repo, t) for t in unknown)), strict=True)
        )
        by_digest: dict[str, tuple[Manifest, list[str]]] = {}
        for tag in tags:
            known = listing.tags[tag]
            m = by_known.get(known) if known else resolved.get(tag)
            if m is None:
                continue
            if self.cache and not known:
                self.cache.put_tag_hint(self.client.host, repo, tag, m.digest)
            by_digest.setdefault(m.digest, (m, []))[1].append(tag)
        # What this run saw, for verification to reuse while fresh (registry/backend.py): the
        # listing's time, the digests as resolved just after it.
        seen: dict[str, str | None] = {t: m.digest for m, ts in by_digest.values() for t in ts}
        self.client.recent[repo] = (read_at, Listing(tags=seen, versions=listing.versions))
        arts: dict[str, Artifact] = {}
        await asyncio.gather(*(self._add(repo, m, sorted(t), arts, None) for m, t in by_digest.values()))
        # Untagged versions the API lists and no tag reached (children of untagged indexes,
        # referrers, orphans of earlier cleanups): without them `untagged` could not see them.
        rest = [d for d in listing.versions if d not in arts]
        for m in await asyncio.gather(*(self._by_digest(repo, d) for d in rest)):
            if m is not None:
                await self._add(repo, m, [], arts, None)
        for a in arts.values():
            v = listing.versions.get(a.digest)
            if v is not None:
                a.version_id, a.pushed, a.pulled = v.id, v.pushed, v.pulled
        for m, t in by_digest.values():  # a tagged child may have been reached via its index first
            a = arts[m.digest]
            if not a.tags:
                a.tags = tuple(sorted(t))
                tag_subject = next((s for s in map(subject_from_tag, a.tags) if s), None)
                if a.subject is None and tag_subject:
                    a.subject, a.kind = tag_subject, Kind.REFERRER
        if self.progress:
            self.progress(repo, len(tags))
        return list(arts.values())

    async def _add(
        self,
        repo: str,
        m: Manifest,
        tags: list[str],
        arts: dict[str, Artifact],
        platform: str | None,
        subject_hint: str | None = None,
    ) -> None:
        if m.digest in arts:
            return
        try:
            doc = m.json()
        except ValueError:
            raise RegcollectError(f"manifest {repo}@{m.digest} is not a JSON object") from None
        subject = _descriptor_digest(doc.get("subject"))
        tag_subject = next((s for s in map(subject_from_tag, tags) if s), None)
        subject = subject or tag_subject or subject_hint
        a = Artifact(
            repository=repo,
            digest=m.digest,
            media_type=m.media_type,
            tags=tuple(tags),
            subject=subject,
            platform=platform or "",
            raw=m.data,
        )
        arts[m.digest] = a
        own = Blob(m.digest, len(m.data))
        if m.media_type in INDEX_TYPES or "manifests" in doc:
            a.kind = Kind.REFERRER if subject else Kind.INDEX
            children = [c for c in doc.get("manifests") or [] if isinstance(c, dict)]
            a.children = tuple(d for d in (_descriptor_digest(c) for c in children) if d)
            a.blobs = (own,)
            fetched = await asyncio.gather(
                *(self.manifest(repo, d) for d in a.children if d not in arts),
                return_exceptions=True,
            )
            child_meta = {_descriptor_digest(c): c for c in children}
            labels: dict[str, str] = {}
            for res in fetched:
                if isinstance(res, NotFound):
                    continue  # a broken index: its missing child is nothing to delete
                if isinstance(res, BaseException):
                    raise res
                meta = child_meta.get(res.digest) or {}
                await self._add(
                    repo,
                    res,
                    [],
                    arts,
                    _platform(meta.get("platform")),
                    subject_hint=subject if a.kind is Kind.REFERRER else None,
                )
            for d in a.children:
                if d in arts:
                    for k, v in arts[d].labels.items():
                        labels.setdefault(k, v)
            a.labels = labels
        else:
            layers = [x for x in doc.get("layers") or [] if isinstance(x, dict)]
            config = doc.get("config") if isinstance(doc.get("config"), dict) else None
            blobs = [own] + [
                Blob(dg, _size(x))
                for x in ([config] if config else []) + layers
                if (dg := _descriptor_digest(x))
            ]
            a.blobs = tuple(blobs)
            if subject:
                a.kind = Kind.REFERRER
            elif config and (cd := _descriptor_digest(config)):
                facts = await self.config_facts(repo, cd, _size(config))
                a.created = parse_time(facts.get("created"))
                raw_labels = facts.get("labels")
                if isinstance(raw_labels, dict):
                    a.labels = {str(k): str(v) for k, v in raw_labels.items()}
        if a.kind is not Kind.REFERRER:
            await self._referrers(repo, a, arts)

    async def _referrers(self, repo: str, a: Artifact, arts: dict[str, Artifact]) -> None:
        """The referrers API where the registry has it (probed once; without it, the fallback
        tag and cosign tags are ordinary tags and were listed already)."""
        if self.referrers_api is None:
            async with self._referrers_lock:
                if self.referrers_api is None:
                    # Settled only by a definitive answer: a transient failure raises (this
                    # repository is left untouched) and the next one asks again.
                    found = await self.client.referrers(repo, a.digest)
                    self.referrers_api = found is not None
                    await self._add_referrers(repo, a, arts, found or [])
                    return
        if self.referrers_api:
            await self._add_referrers(repo, a, arts, await self.client.referrers(repo, a.digest) or [])

    async def _add_referrers(
        self, repo: str, a: Artifact, arts: dict[str, Artifact], descs: list[dict[str, Any]]
    ) -> None:
        for desc in descs:
            d = _descriptor_digest(desc)
            if d and d not in arts:
                m = await self.manifest(repo, d)
                await self._add(repo, m, [], arts, None, subject_hint=a.digest)


def _descriptor_digest(desc: Any) -> str | None:
    """A descriptor's digest; one that is not a valid digest makes the manifest unreadable (it
    would go into a URL, and a child we cannot name is a child we cannot protect)."""
    if isinstance(desc, dict) and "digest" in desc:
        d = desc["digest"]
        if not isinstance(d, str) or not is_digest(d):
            raise RegistryError(f"a descriptor names an invalid digest {str(d)[:80]!r}")
        return d
    return None


def _size(desc: dict[str, Any]) -> int:
    raw = desc.get("size")
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 1 << 50 else 0


def _platform(p: Any) -> str:
    if not isinstance(p, dict):
        return ""
    out = f"{p.get('os', '')}/{p.get('architecture', '')}"
    return out + (f"/{p['variant']}" if p.get("variant") else "")


def _fatal(exc: RegcollectError) -> bool:
    """Auth and connection failures end the run; other per-repository errors leave it untouched."""
    from regcollect.errors import AuthError, ConnectError

    return isinstance(exc, AuthError | ConnectError)
