"""Put deleted manifests back from a journal, until the registry's garbage collection has run.

Children before indexes, subjects before referrers; each manifest is re-PUT only after HEAD shows
every blob it needs is still there. A tag that now points at other content is never overwritten.
Running it twice changes nothing the second time: what is in place is reported as such.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from regcollect.registry.client import INDEX_TYPES, RegistryClient

IN_PLACE, RESTORE, BLOCKED = "in place", "restore", "cannot restore"


@dataclass
class RestoreItem:
    registry: str
    repository: str
    digest: str
    media_type: str
    data: bytes
    tags: list[str]
    kind: str
    subject: str | None = None
    status: str = ""
    detail: str = ""
    put_refs: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        name = f"{self.repository}:{','.join(self.tags)}" if self.tags else self.repository
        return f"{name}@{self.digest[:19]}"

    @property
    def order(self) -> int:
        """Children and plain images first, then indexes, then referrers."""
        if self.subject or self.kind == "referrer":
            return 2
        return 1 if self.media_type in INDEX_TYPES else 0


def items_from(records: list[dict[str, Any]]) -> list[RestoreItem]:
    items: dict[tuple[str, str, str], RestoreItem] = {}
    for r in records:
        if r["type"] != "intent" or r.get("source") != "remote":
            continue
        key = (r["registry"], r["repository"], r["digest"])
        tags = list((r.get("remove_tags") if r.get("action") == "untag" else r.get("tags")) or [])
        item = items.get(key)
        if item is None:
            items[key] = RestoreItem(
                registry=r["registry"],
                repository=r["repository"],
                digest=r["digest"],
                media_type=r.get("media_type") or "",
                data=base64.b64decode(r["manifest"]),
                tags=tags,
                kind=r.get("kind") or "image",
                subject=r.get("subject"),
            )
        else:
            item.tags = sorted(set(item.tags) | set(tags))
    return sorted(items.values(), key=lambda i: (i.order, i.repository, i.digest))


def _needs(item: RestoreItem) -> tuple[list[str], list[str]]:
    """(blobs, manifests) this manifest needs to exist."""
    doc = json.loads(item.data)
    if "manifests" in doc:
        return [], [m["digest"] for m in doc.get("manifests") or [] if isinstance(m, dict)]
    blobs = [x["digest"] for x in [doc.get("config")] + list(doc.get("layers") or []) if isinstance(x, dict)]
    return blobs, []


async def check(client: RegistryClient, items: list[RestoreItem]) -> None:
    """Decide each item: in place, restore (with the refs to PUT), or cannot restore and why."""
    coming = {(i.repository, i.digest) for i in items}
    for item in items:
        refs = item.tags or [item.digest]
        missing_refs, moved = [], []
        for ref in refs:
            now = await client.head_manifest(item.repository, ref)
            if now is None:
                missing_refs.append(ref)
            elif now != item.digest:
                moved.append(f"{ref} now points at {now[:19]}")
        blobs, manifests = _needs(item)
        gone_blobs = [b for b in blobs if not await client.blob_exists(item.repository, b)]
        gone_manifests = [
            m
            for m in manifests
            if (item.repository, m) not in coming and await client.head_manifest(item.repository, m) is None
        ]
        if gone_blobs or gone_manifests:
            what = ", ".join(gone_blobs + gone_manifests)
            item.status, item.detail = BLOCKED, f"needs {what}, gone (the registry's GC has run)"
        elif not missing_refs:
            item.status = IN_PLACE
            item.detail = "; ".join(moved)
        else:
            item.status, item.put_refs = RESTORE, missing_refs
            item.detail = "; ".join(f"tag {m} left alone" for m in moved)
        if item.status == BLOCKED:
            coming.discard((item.repository, item.digest))


async def restore(client: RegistryClient, items: list[RestoreItem]) -> list[str]:
    errors = []
    for item in items:
        if item.status != RESTORE:
            continue
        for ref in item.put_refs:
            try:
                await client.put_manifest(item.repository, ref, item.data, item.media_type)
            except Exception as exc:  # noqa: BLE001 - reported per item, the rest go on
                errors.append(f"{item.label}: {exc}")
                item.status, item.detail = BLOCKED, str(exc)
                break
    return errors
