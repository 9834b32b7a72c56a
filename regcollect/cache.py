"""A persistent cache of content-addressed facts: manifests and image-config facts by digest,
and engine images' layer lists by image id.

Content never changes under its digest, so entries are never stale; the cache is bounded by
count and trims the least recently written entries. One SQLite file (0600, in a 0700 directory)
in the XDG cache directory, shared by runs that may overlap: writes are batched into short
transactions (a run never holds the write lock while it plans), and the cache is only ever an
optimisation, so any SQLite error (locked past the busy timeout, a corrupt file, a full disk)
turns the cache off for the rest of the run: reads miss, writes are dropped, the run goes on.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from regcollect.fsutil import prepare_private_sqlite

DEFAULT_MAX_ENTRIES = 200_000
BUSY_TIMEOUT = 30.0  # seconds; other runs hold the lock only for one short batch
BATCH = 64  # writes per transaction


def default_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "regcollect" / "facts.sqlite"


class FactCache:
    def __init__(
        self,
        path: Path | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        busy_timeout: float = BUSY_TIMEOUT,
    ):
        self.path = path or default_path()
        self.max_entries = max_entries
        self.writes = 0
        self.error: str | None = None  # why the cache was turned off, for a note
        self.db: sqlite3.Connection | None = None
        # Written but not yet committed: (table, key) -> row; read back from here first.
        self.pending: dict[tuple[str, tuple[str, ...]], tuple[Any, ...]] = {}
        try:
            prepare_private_sqlite(self.path)
            # Autocommit: no implicit transaction is left open between statements.
            self.db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
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
        except (sqlite3.Error, OSError) as exc:
            self._off(exc)

    def _off(self, exc: Exception) -> None:
        self.error = f"cache {self.path} not used: {exc}"
        self.pending.clear()
        if self.db is not None:
            try:
                self.db.close()
            except sqlite3.Error:
                pass
        self.db = None

    def _select(self, sql: str, args: tuple[str, ...]) -> tuple[Any, ...] | None:
        if self.db is None:
            return None
        try:
            row = self.db.execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            self._off(exc)
            return None
        return tuple(row) if row else None

    def _write(self, table: str, key: tuple[str, ...], row: tuple[Any, ...]) -> None:
        if self.db is None:
            return
        self.pending[(table, key)] = row
        self.writes += 1
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Commit the pending writes in one short transaction."""
        if self.db is None or not self.pending:
            return
        facts = [row for (table, _), row in self.pending.items() if table == "facts"]
        hints = [row for (table, _), row in self.pending.items() if table == "tag_hints"]
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?)", facts)
                self.db.executemany("INSERT OR REPLACE INTO tag_hints VALUES (?, ?, ?, ?)", hints)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._off(exc)
            return
        self.pending.clear()

    def _get(self, digest: str, kind: str) -> tuple[bytes, str] | None:
        row = self.pending.get(("facts", (digest, kind)))
        if row is not None:
            return bytes(row[3]), row[2]
        found = self._select("SELECT data, media_type FROM facts WHERE digest=? AND kind=?", (digest, kind))
        if found is None or not isinstance(found[0], bytes | str) or not isinstance(found[1], str):
            return None
        data = found[0].encode() if isinstance(found[0], str) else bytes(found[0])
        return data, found[1]

    def _put(self, digest: str, kind: str, data: bytes, media_type: str) -> None:
        self._write("facts", (digest, kind), (digest, kind, media_type, data))

    def _get_json(self, digest: str, kind: str) -> Any:
        hit = self._get(digest, kind)
        if hit is None:
            return None
        try:
            return json.loads(hit[0])
        except ValueError:  # garbled row: a miss
            return None

    def manifest(self, digest: str) -> tuple[bytes, str] | None:
        return self._get(digest, "manifest")

    def put_manifest(self, digest: str, data: bytes, media_type: str) -> None:
        self._put(digest, "manifest", data, media_type)

    def config(self, digest: str) -> dict[str, Any] | None:
        facts = self._get_json(digest, "config")
        return facts if isinstance(facts, dict) else None

    def put_config(self, digest: str, facts: dict[str, Any]) -> None:
        self._put(digest, "config", json.dumps(facts).encode(), "")

    def image_layers(self, image_id: str) -> list[str] | None:
        """An engine image's layer diff ids: its id is the digest of the config that lists them."""
        layers = self._get_json(image_id, "image-layers")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            return None
        return layers

    def put_image_layers(self, image_id: str, layers: list[str]) -> None:
        self._put(image_id, "image-layers", json.dumps(layers).encode(), "")

    def fact(self, key: str, kind: str) -> Any:
        """A JSON fact a vendor module keeps under a kind of its own (GitLab: a tag's details by
        tag and digest); None when absent or garbled."""
        return self._get_json(key, kind)

    def put_fact(self, key: str, kind: str, value: Any) -> None:
        if kind in ("manifest", "config", "image-layers"):
            raise ValueError(f"kind {kind!r} is the cache's own")
        self._put(key, kind, json.dumps(value).encode(), "")

    def tag_hint(self, registry: str, repository: str, tag: str) -> str | None:
        """The digest a tag had when last seen: only a hint that HEAD is worth trying first."""
        row = self.pending.get(("tag_hints", (registry, repository, tag)))
        if row is not None:
            return str(row[3])
        found = self._select(
            "SELECT digest FROM tag_hints WHERE registry=? AND repository=? AND tag=?",
            (registry, repository, tag),
        )
        return str(found[0]) if found else None

    def put_tag_hint(self, registry: str, repository: str, tag: str, digest: str) -> None:
        self._write("tag_hints", (registry, repository, tag), (registry, repository, tag, digest))

    def close(self) -> None:
        self.flush()
        if self.db is None:
            return
        try:
            if self.writes:
                self._trim("facts")
                self._trim("tag_hints")
            self.db.close()
        except sqlite3.Error as exc:
            self._off(exc)
        self.db = None

    def _trim(self, table: str) -> None:
        assert self.db is not None
        (count,) = self.db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - fixed names
        if count > self.max_entries:
            self.db.execute(
                f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY rowid LIMIT ?)",  # noqa: S608
                (count - self.max_entries,),
            )
