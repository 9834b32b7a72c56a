"""Put deleted manifests back from a journal, until the registry's garbage collection has run.

Children before indexes, subjects before referrers; each manifest is re-PUT only after HEAD shows
every blob it needs is still there. A tag that now points at other content is never overwritten.
Running it twice changes nothing the second time: what is in place is reported as such.
A journal record that is not usable (a key missing, bad base64, wrong types: a hand-edited or
damaged file) is skipped with one warning naming its line; the rest are restored.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable
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
    api: str = "distribution"  # how the registry deleted it, and so how it comes back
    api_url: str | None = None
    path: str | None = None  # github: /orgs/OWNER, /user or /users/OWNER
    version_id: str | None = None  # github: the deleted version, restored by id
    action: str = "delete"
    revive: bool = False  # github: POST .../restore before re-tagging

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


class BadRecord(ValueError):
    pass


def _text(r: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = r.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise BadRecord(f"'{key}' is missing or not a string")
    return value


def _strings(r: dict[str, Any], key: str) -> list[str]:
    value = r.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadRecord(f"'{key}' is not a list of strings")
    return list(value)


def _item(r: dict[str, Any]) -> RestoreItem:
    try:
        data = base64.b64decode(_text(r, "manifest") or "", validate=True)
    except binascii.Error:
        raise BadRecord("'manifest' is not base64") from None
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise BadRecord("'manifest' is not a JSON manifest")
    tags = _strings(r, "remove_tags") if r.get("action") == "untag" else _strings(r, "tags")
    return RestoreItem(
        registry=_text(r, "registry") or "",
        repository=_text(r, "repository") or "",
        digest=_text(r, "digest") or "",
        media_type=_text(r, "media_type", required=False) or "",
        data=data,
        tags=tags,
        kind=_text(r, "kind", required=False) or "image",
        subject=_text(r, "subject", required=False),
        api=_text(r, "api", required=False) or "distribution",
        api_url=_text(r, "api_url", required=False),
        path=_text(r, "path", required=False),
        version_id=str(r["version_id"]) if isinstance(r.get("version_id"), str | int) else None,
        action=_text(r, "action", required=False) or "delete",
    )


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def items_from(records: list[dict[str, Any]], warn: Callable[[str], None] | None = None) -> list[RestoreItem]:
    """The remote intents to restore, merged per manifest. `warn` gets one line per unusable
    record, "journal line N: skipped: why" (records from journal.read know their line)."""
    warn = warn or _warn
    items: dict[tuple[str, str, str], RestoreItem] = {}
    for n, r in enumerate(records, start=1):
        if r.get("type") != "intent" or r.get("source") != "remote":
            continue
        try:
            new = _item(r)
        except BadRecord as exc:
            where = f"journal line {getattr(r, 'line', n)}"
            warn(f"{where}: skipped: {exc}")
            continue
        key = (new.registry, new.repository, new.digest)
        item = items.get(key)
        if item is None:
            items[key] = new
        else:
            item.tags = sorted(set(item.tags) | set(new.tags))
            if new.action == "delete":
                item.action, item.version_id = "delete", new.version_id or item.version_id
    return sorted(items.values(), key=_restore_order(list(items.values())))


def _restore_order(items: list[RestoreItem]) -> Any:
    """What a manifest names must exist before it is PUT: a child before its index, an inner
    index before the outer one, a subject before its referrers. The key: (referrer?, how many
    levels of the journal's own manifests it stands on, repository, digest)."""
    named: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for i in items:
        _, manifests = _needs(i)
        named[(i.repository, i.digest)] = [(i.repository, m) for m in manifests]
    level: dict[tuple[str, str], int] = {}

    def depth(node: tuple[str, str], seen: frozenset[tuple[str, str]] = frozenset()) -> int:
        if node not in level:
            below = [c for c in named.get(node, []) if c in named and c not in seen]
            level[node] = 1 + max((depth(c, seen | {node}) for c in below), default=-1)
        return level[node]

    return lambda i: (i.order == 2, depth((i.repository, i.digest)), i.repository, i.digest)


def _needs(item: RestoreItem) -> tuple[list[str], list[str]]:
    """(blobs, manifests) this manifest needs to exist; odd entries name nothing."""
    doc = json.loads(item.data)
    if "manifests" in doc:
        entries = doc.get("manifests")
        return [], [m["digest"] for m in _dicts(entries) if isinstance(m.get("digest"), str)]
    entries = [doc.get("config"), *(doc.get("layers") if isinstance(doc.get("layers"), list) else [])]
    return [x["digest"] for x in _dicts(entries) if isinstance(x.get("digest"), str)], []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


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
        if item.api == "github" and item.action == "delete" and item.version_id:
            if await client.head_manifest(item.repository, item.digest) is None:
                # GitHub keeps a deleted version 30 days: it comes back by id, tags and all;
                # whichever tags are still missing afterwards are PUT again.
                item.status, item.revive, item.put_refs = RESTORE, True, [r for r in missing_refs]
                item.detail = f"restore version {item.version_id} through the GitHub API"
                if moved:
                    item.detail += "; " + "; ".join(f"tag {m} left alone" for m in moved)
                continue
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


async def restore(client: RegistryClient, items: list[RestoreItem], api: Any = None) -> list[str]:
    """`api`: the registry's RegistryApi where versions come back by id (GitHub)."""
    errors = []
    for item in items:
        if item.status != RESTORE:
            continue
        if item.revive:
            try:
                back = await api.restore_version(item.repository, item.version_id, item.path)
            except Exception as exc:  # noqa: BLE001 - reported per item, the rest go on
                back, exc_text = False, str(exc)
            else:
                exc_text = "GitHub no longer has it (deleted versions are kept 30 days)"
            if not back:
                errors.append(f"{item.label}: version {item.version_id}: {exc_text}")
                item.status, item.detail = BLOCKED, exc_text
                continue
        for ref in item.put_refs:
            if item.revive and await client.head_manifest(item.repository, ref) == item.digest:
                continue  # the restored version brought this tag back itself
            try:
                await client.put_manifest(item.repository, ref, item.data, item.media_type)
            except Exception as exc:  # noqa: BLE001 - reported per item, the rest go on
                errors.append(f"{item.label}: {exc}")
                item.status, item.detail = BLOCKED, str(exc)
                break
    return errors
