"""The undo journal: JSON Lines, one intent record fsync'd before each change, one outcome after.

An intent holds what is needed to put a manifest back (registry, repository, digest, media type,
the raw manifest bytes in base64, the tags it had). Readers tolerate a torn last line, which is
what a process killed mid-write leaves. Local applies journal ids, tags and sizes for the record,
each synced after the change (the engine keeps no undo, so the record is all that is left).
The file is 0600 in a 0700 directory (manifests and names of private registries); a new file is
synced into its directory so a crash cannot lose the journal while keeping the changes.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from regcollect import fsutil
from regcollect.errors import UsageError
from regcollect.planner import Decision


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "regcollect"


def default_path(now: dt.datetime) -> Path:
    return default_dir() / f"journal-{now:%Y%m%dT%H%M%S%fZ}.jsonl"


class Journal:
    def __init__(self, path: Path, target: str):
        self.path = path
        self.target = target
        if path.parent.absolute() == default_dir().absolute():
            fsutil.private_dir(path.parent)  # ours: tightened if an older version left it open
        else:
            fsutil.make_dirs(path.parent)  # --journal: the user's directories stay as they are
        self.fh, created = fsutil.open_private_append(path)  # lives for the whole apply
        if created:
            fsutil.fsync_dir(path.parent)
        self.lock = threading.Lock()  # local applies write from worker threads: whole lines only
        # A torn line from a killed run must not glue onto our first record.
        if self.fh.tell() > 0:
            with open(path, "rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    self.fh.write(b"\n")

    def _write(self, record: dict[str, Any]) -> None:
        """Outcomes are flushed, not synced: one lost in a crash only makes restore re-PUT
        something harmlessly. Intents are synced by `before`."""
        record["ts"] = dt.datetime.now(dt.UTC).isoformat()
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        with self.lock:
            self.fh.write(line)
            self.fh.flush()

    async def before(self, d: Decision, client: Any, extra: dict[str, Any] | None = None) -> None:
        """`extra`: what the registry's API needs to undo this (its kind, ids, REST base)."""
        raw = d.artifact.raw
        if raw is None:
            raw = (await client.get_manifest(d.repository, d.digest)).data
        self._write(
            {
                **(extra or {}),
                "type": "intent",
                "source": "remote",
                "registry": self.target,
                "repository": d.repository,
                "digest": d.digest,
                "media_type": d.artifact.media_type,
                "manifest": base64.b64encode(raw).decode(),
                "tags": list(d.artifact.tags),
                "action": d.action.value,
                "remove_tags": list(d.remove_tags),
                "kind": d.artifact.kind.value,
                "subject": d.artifact.subject,
                "children": list(d.artifact.children),
            }
        )
        # Durable before the change is sent. In a worker thread, so other requests in flight
        # go on meanwhile; concurrent intents share the disk's flushes.
        await asyncio.to_thread(os.fsync, self.fh.fileno())

    def after(self, d: Decision, status: str, detail: str = "") -> None:
        self._write(
            {
                "type": "outcome",
                "repository": d.repository,
                "digest": d.digest,
                "action": d.action.value,
                "status": status,
                "detail": detail,
            }
        )

    def local(self, d: Decision, status: str, detail: str = "") -> None:
        """Called from the engine backend's worker threads, after the change: synced there."""
        self._write(
            {
                "type": "local",
                "engine": self.target,
                "repository": d.repository,
                "id": d.digest,
                "tags": list(d.artifact.tags),
                "action": d.action.value,
                "remove_tags": list(d.remove_tags),
                "bytes": d.bytes,
                "status": status,
                "detail": detail,
            }
        )
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


class Record(dict[str, Any]):
    """A journal record that knows its line in the file, for warnings about it."""

    line = 0


def read(path: str | Path) -> Iterator[Record]:
    """Every complete record; a torn or garbled line (a killed writer) is skipped."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"{p}: cannot read journal: {exc.strerror}") from None
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(rec, dict) and "type" in rec:
            record = Record(rec)
            record.line = number
            yield record
