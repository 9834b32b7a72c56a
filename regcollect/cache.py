"""A persistent cache of content-addressed facts: manifests and image-config facts by digest,
and engine images' layer lists by image id.

Content never changes under its digest, so entries are never stale; the cache is bounded by
count and trims the least recently written entries. One SQLite file in the XDG cache directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

DEFAULT_MAX_ENTRIES = 200_000


def default_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "regcollect" / "facts.sqlite"


class FactCache:
    def __init__(self, path: Path | None = None, max_entries: int = DEFAULT_MAX_ENTRIES):
        self.path = path or default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS facts (digest TEXT, kind TEXT, media_type TEXT, "
            "data BLOB, PRIMARY KEY (digest, kind))"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS tag_hints (registry TEXT, repository TEXT, tag TEXT, "
            "digest TEXT, PRIMARY KEY (registry, repository, tag))"
        )
        self.max_entries = max_entries
        self.writes = 0

    def _get(self, digest: str, kind: str) -> tuple[bytes, str] | None:
        row = self.db.execute(
            "SELECT data, media_type FROM facts WHERE digest=? AND kind=?", (digest, kind)
        ).fetchone()
        return (bytes(row[0]), row[1]) if row else None

    def _put(self, digest: str, kind: str, data: bytes, media_type: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?)", (digest, kind, media_type, data))
        self.writes += 1

    def manifest(self, digest: str) -> tuple[bytes, str] | None:
        return self._get(digest, "manifest")

    def put_manifest(self, digest: str, data: bytes, media_type: str) -> None:
        self._put(digest, "manifest", data, media_type)

    def config(self, digest: str) -> dict[str, Any] | None:
        hit = self._get(digest, "config")
        return json.loads(hit[0]) if hit else None

    def put_config(self, digest: str, facts: dict[str, Any]) -> None:
        self._put(digest, "config", json.dumps(facts).encode(), "")

    def image_layers(self, image_id: str) -> list[str] | None:
        """An engine image's layer diff ids: its id is the digest of the config that lists them."""
        hit = self._get(image_id, "image-layers")
        return json.loads(hit[0]) if hit else None

    def put_image_layers(self, image_id: str, layers: list[str]) -> None:
        self._put(image_id, "image-layers", json.dumps(layers).encode(), "")

    def tag_hint(self, registry: str, repository: str, tag: str) -> str | None:
        """The digest a tag had when last seen: only a hint that HEAD is worth trying first."""
        row = self.db.execute(
            "SELECT digest FROM tag_hints WHERE registry=? AND repository=? AND tag=?",
            (registry, repository, tag),
        ).fetchone()
        return str(row[0]) if row else None

    def put_tag_hint(self, registry: str, repository: str, tag: str, digest: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO tag_hints VALUES (?, ?, ?, ?)", (registry, repository, tag, digest)
        )
        self.writes += 1

    def close(self) -> None:
        if self.writes:
            (count,) = self.db.execute("SELECT count(*) FROM facts").fetchone()
            if count > self.max_entries:
                self.db.execute(
                    "DELETE FROM facts WHERE rowid IN (SELECT rowid FROM facts ORDER BY rowid LIMIT ?)",
                    (count - self.max_entries,),
                )
            (hints,) = self.db.execute("SELECT count(*) FROM tag_hints").fetchone()
            if hints > self.max_entries:
                self.db.execute(
                    "DELETE FROM tag_hints WHERE rowid IN "
                    "(SELECT rowid FROM tag_hints ORDER BY rowid LIMIT ?)",
                    (hints - self.max_entries,),
                )
        self.db.commit()
        self.db.close()
