"""Apply plan items to a registry through its RegistryApi: re-verify, delete, untag portably.

Re-verification, two parts. Per repository, refreshed when older than SNAPSHOT_AGE seconds: list
the tags again and resolve every tag that is new since the plan and every tag the plan keeps (from
the listing where the API names digests, else with a HEAD), or take this run's own listing and
resolutions when they are younger than that (a plan made seconds ago is not read twice); a
delete is skipped ("changed since plan") when such a tag now points at its digest (a rollback of
`latest` onto an old image), or at new content that needs it (an index whose children include
it). Per item, just before the change (`--verify item`, the default): every tag the plan saw on
the digest still points at it. `--verify repository` leaves out the per-item part for deletes,
which costs one HEAD per doomed tag (docs/performance.md); untags always check their tags, so a
throwaway never lands on new content.
Untag: push a unique throwaway manifest to the tag and delete the throwaway by digest (regclient's
way). Never DELETE by tag: the spec leaves its meaning open and some registries (zot did) delete the
manifest itself, every other tag with it. Afterwards the digest must still exist and the kept tags
must still resolve to it, or the item is reported failed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import defaultdict
from typing import Any

from regcollect.errors import NotFound, RegcollectError
from regcollect.planner import Action, Decision, Plan
from regcollect.registry.api import RegistryApi
from regcollect.registry.client import OCI_MANIFEST, sha256_digest

SNAPSHOT_AGE = 15.0  # seconds: a change to the tags older than this before a delete is always seen
EMPTY_CONFIG = b"{}"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
THROWAWAY_ARTIFACT = "application/vnd.regcollect.untag.v1"


def throwaway_manifest() -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": THROWAWAY_ARTIFACT,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": sha256_digest(EMPTY_CONFIG),
            "size": len(EMPTY_CONFIG),
        },
        "layers": [],
        "annotations": {"dev.regcollect.untag": secrets.token_hex(16)},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


class RemoteBackend:
    def __init__(self, api: RegistryApi, plan: Plan, journal: Any = None, verify: str = "repository"):
        self.api = api
        self.client = api.client
        self.journal = journal
        self.per_item = verify == "item"
        self.known_tags: dict[str, set[str]] = defaultdict(set)
        self.kept_tags: dict[str, dict[str, str]] = defaultdict(dict)  # repo -> tag -> digest
        self.known_digests: dict[str, set[str]] = defaultdict(set)
        for d in plan.decisions:
            self.known_tags[d.repository].update(d.artifact.tags)
            self.known_digests[d.repository].add(d.digest)
            for t in d.kept_tags:
                self.kept_tags[d.repository][t] = d.digest
        self._snapshot: dict[str, asyncio.Task[dict[str, str]]] = {}
        self._taken: dict[str, float] = {}
        self._moved: dict[str, dict[str, str]] = defaultdict(dict)  # repo -> digest -> why unsafe
        self._probed: dict[str, asyncio.Task[None]] = {}
        self.leftover_throwaways: list[str] = []

    # verification ---------------------------------------------------------------------------
    async def _take_snapshot(self, repo: str) -> dict[str, str]:
        """digest -> why deleting it is no longer safe, from tags that are new or kept."""
        self._taken[repo] = time.monotonic()
        recent = self.client.recent.pop(repo, None)
        if recent is not None and time.monotonic() - recent[0] < SNAPSHOT_AGE:
            listing = recent[1]
        else:
            listing = await self.api.listing(repo)
        watch = [t for t in listing.tags if t not in self.known_tags[repo] or t in self.kept_tags[repo]]
        now = await asyncio.gather(*(self._resolve(repo, t, listing.tags[t]) for t in watch))
        unsafe: dict[str, str] = {}
        for tag, digest in zip(watch, now, strict=True):
            if digest is None or self.kept_tags[repo].get(tag) == digest:
                continue
            unsafe.setdefault(digest, f"tag {tag} now points at it")
            if digest not in self.known_digests[repo]:
                for child in await self._needs(repo, digest):
                    unsafe.setdefault(child, f"new content tagged {tag} needs it")
        return unsafe

    async def _resolve(self, repo: str, tag: str, listed: str | None) -> str | None:
        return listed if listed is not None else await self.client.head_manifest(repo, tag)

    async def _needs(self, repo: str, digest: str) -> list[str]:
        try:
            doc = (await self.client.get_manifest(repo, digest)).json()
        except (NotFound, ValueError):
            return []
        out = [m.get("digest") for m in doc.get("manifests") or [] if isinstance(m, dict)]
        subject = doc.get("subject")
        if isinstance(subject, dict):
            out.append(subject.get("digest"))
        return [d for d in out if isinstance(d, str)]

    def _once(self, cache: dict[str, Any], repo: str, factory: Any) -> Any:
        if repo not in cache:
            cache[repo] = asyncio.ensure_future(factory(repo))
        return cache[repo]

    async def verify(self, d: Decision) -> str | None:
        repo, digest = d.repository, d.digest
        stale = time.monotonic() - self._taken.get(repo, time.monotonic()) > SNAPSHOT_AGE
        if stale:
            self._snapshot.pop(repo, None)  # refresh: a long run re-reads the repository
        unsafe = await self._once(self._snapshot, repo, self._take_snapshot)
        if d.action is Action.DELETE:
            if digest in unsafe:
                return unsafe[digest]
            if digest in self._moved[repo]:
                return self._moved[repo][digest]
            if not self.per_item:
                return None
        else:
            await self._once(self._probed, repo, self._probe_delete)
        # Just before the change: every tag the plan saw on this digest still points at it.
        tags = d.artifact.tags if d.action is Action.DELETE else d.remove_tags
        current = await asyncio.gather(*(self.client.head_manifest(repo, t) for t in tags))
        for tag, now in zip(tags, current, strict=True):
            if now is not None and now != digest:
                # Someone moved it on purpose: what it points at now is wanted, even if the
                # plan would delete that too.
                self._moved[repo].setdefault(now, f"tag {tag} was moved onto it since the plan")
                return f"tag {tag} now points at {now[:19]}"
        return None

    async def _probe_delete(self, repo: str) -> None:
        """Before the first untag (which writes a throwaway it must then delete): may we delete
        here at all? Asked without touching anything."""
        await self.api.probe_delete(repo)

    # changes --------------------------------------------------------------------------------
    async def delete(self, d: Decision) -> str | None:
        if self.journal:
            try:
                await self.journal.before(d, self.client, self._record(d))
            except NotFound:
                return "already gone"  # nothing to journal, nothing to delete
        try:
            gone_now = await self.api.delete(d.repository, d.digest, d.artifact.version_id, d.artifact.tags)
        except RegcollectError as exc:
            if self.journal:
                self.journal.after(d, "failed", str(exc))
            raise
        if self.journal:
            self.journal.after(d, "done", "" if gone_now else "already gone")
        return None if gone_now else "already gone"

    async def untag(self, d: Decision) -> str | None:
        if self.journal:
            await self.journal.before(d, self.client, self._record(d))
        notes = []
        for tag in d.remove_tags:
            note = await self._untag_one(d.repository, tag)
            if note:
                notes.append(note)
        if await self.client.head_manifest(d.repository, d.digest) is None:
            raise RegcollectError(
                f"after untagging, {d.repository}@{d.digest} no longer exists: the registry deleted "
                "the image, not only the tag (restore it from the journal)"
            )
        for tag in d.kept_tags:
            now = await self.client.head_manifest(d.repository, tag)
            if now != d.digest:
                raise RegcollectError(
                    f"after untagging, kept tag {d.repository}:{tag} resolves to {now} instead of {d.digest}"
                )
        if self.journal:
            self.journal.after(d, "done", "; ".join(notes))
        return "; ".join(notes) or None

    async def _untag_one(self, repo: str, tag: str) -> str | None:
        if self.api.tag_delete:
            await self.api.delete_tag(repo, tag)
            return None
        await self.client.put_blob(repo, EMPTY_CONFIG)
        data = throwaway_manifest()
        digest = await self.client.put_manifest(repo, tag, data, OCI_MANIFEST)
        try:
            await self.api.delete(repo, digest)
        except RegcollectError as exc:
            self.leftover_throwaways.append(f"{repo}@{digest}")
            return f"throwaway manifest {repo}@{digest} on tag {tag} could not be removed: {exc}"
        return None

    def _record(self, d: Decision) -> dict[str, Any]:
        return self.api.record(d.repository, d.digest, d.artifact.version_id)
