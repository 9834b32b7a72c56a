"""Apply plan items to a registry: re-verify, delete by digest, untag portably.

Before the first change in a repository, its tags are listed again; before each item, the item's
tags are resolved again (HEAD), and any tag that appeared since the plan is resolved too. A tag that
moved, or a new tag on a doomed digest, skips the item ("changed since plan").
Untag: DELETE by tag where the registry allows it, else push a unique throwaway manifest to the
tag and delete the throwaway by digest (regclient's way); then check the kept tags still resolve.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import defaultdict
from typing import Any

from regcollect.errors import AuthError, DeleteDisabled, RegcollectError, RegistryError
from regcollect.planner import Action, Decision, Plan
from regcollect.registry.client import OCI_MANIFEST, RegistryClient, sha256_digest

EMPTY_CONFIG = b"{}"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
THROWAWAY_ARTIFACT = "application/vnd.regcollect.untag.v1"
PROBE_DIGEST = "sha256:" + "0" * 64


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
    def __init__(self, client: RegistryClient, plan: Plan, journal: Any = None):
        self.client = client
        self.journal = journal
        self.known_tags: dict[str, set[str]] = defaultdict(set)
        for d in plan.decisions:
            self.known_tags[d.repository].update(d.artifact.tags)
        self._fresh: dict[str, asyncio.Task[dict[str, str | None]]] = {}
        self._probed: dict[str, asyncio.Task[None]] = {}
        self.delete_by_tag: bool | None = None
        self.leftover_throwaways: list[str] = []

    # verification ---------------------------------------------------------------------------
    async def _new_tags(self, repo: str) -> dict[str, str | None]:
        """Tags that appeared since the plan, and the digest each resolves to now."""
        tags = await self.client.tags(repo)
        new = [t for t in tags if t not in self.known_tags[repo]]
        digests = await asyncio.gather(*(self.client.head_manifest(repo, t) for t in new))
        return dict(zip(new, digests, strict=True))

    def _once(self, cache: dict[str, Any], repo: str, factory: Any) -> Any:
        if repo not in cache:
            cache[repo] = asyncio.ensure_future(factory(repo))
        return cache[repo]

    async def verify(self, d: Decision) -> str | None:
        repo, digest = d.repository, d.digest
        await self._once(self._probed, repo, self._probe_delete)
        new = await self._once(self._fresh, repo, self._new_tags)
        moved = [t for t, now in new.items() if now == digest]
        if moved and d.action is Action.DELETE:
            return f"new tag {', '.join(sorted(moved))} points at {d.artifact.short}"
        current = await asyncio.gather(*(self.client.head_manifest(repo, t) for t in d.artifact.tags))
        for tag, now in zip(d.artifact.tags, current, strict=True):
            if now is None and tag in d.remove_tags:
                continue  # already gone: nothing to undo there
            if now != digest:
                where = "was removed" if now is None else f"now points at {now[:19]}"
                return f"tag {tag} {where}"
        return None

    async def _probe_delete(self, repo: str) -> None:
        """DELETE a digest that cannot exist: 404 means deletes work here; nothing is touched."""
        try:
            await self.client.delete_manifest(repo, PROBE_DIGEST)
        except AuthError as exc:
            raise AuthError(
                f"missing permission: the credentials may not delete in repository {repo} "
                f"(action 'delete' needed; {exc})"
            ) from None
        except RegistryError as exc:
            if exc.status == 400 and exc.code in (None, "UNSUPPORTED"):
                raise DeleteDisabled(
                    f"the registry has deletion disabled ({exc}); "
                    "in distribution set storage.delete.enabled: true",
                    status=exc.status,
                    code=exc.code,
                ) from None
            if exc.status != 400:  # DIGEST_INVALID etc. on an impossible digest is fine
                raise

    # changes --------------------------------------------------------------------------------
    async def delete(self, d: Decision) -> str | None:
        if self.journal:
            await self.journal.before(d, self.client)
        try:
            gone_now = await self.client.delete_manifest(d.repository, d.digest)
        except RegcollectError as exc:
            if self.journal:
                self.journal.after(d, "failed", str(exc))
            raise
        if self.journal:
            self.journal.after(d, "done", "" if gone_now else "already gone")
        return None if gone_now else "already gone"

    async def untag(self, d: Decision) -> str | None:
        if self.journal:
            await self.journal.before(d, self.client)
        notes = []
        for tag in d.remove_tags:
            note = await self._untag_one(d.repository, tag)
            if note:
                notes.append(note)
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
        if self.delete_by_tag is not False:
            try:
                await self.client.delete_manifest(repo, tag)
                self.delete_by_tag = True
                return None
            except RegistryError as exc:
                if self.delete_by_tag is True or exc.status not in (400, 404, 405):
                    raise
                self.delete_by_tag = False
        await self.client.put_blob(repo, EMPTY_CONFIG)
        data = throwaway_manifest()
        digest = await self.client.put_manifest(repo, tag, data, OCI_MANIFEST)
        try:
            await self.client.delete_manifest(repo, digest)
        except RegcollectError as exc:
            self.leftover_throwaways.append(f"{repo}@{digest}")
            return f"throwaway manifest {repo}@{digest} on tag {tag} could not be removed: {exc}"
        return None
