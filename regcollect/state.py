"""What regcollect remembers between runs (SQLite in $XDG_STATE_HOME/regcollect): when it first
saw each digest, the fallback age of images whose created time says nothing (regcollect/ages.py).

Unlike the cache this is not disposable, but it is never load-bearing for safety: a first-seen time
can only make an image look younger than it is. A digest that disappears from a repository read
whole is forgotten, so a later re-push of the same digest (reproducible builds do that) starts
young again. Any SQLite failure (a locked or damaged file) means "not known", never an abort.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from regcollect.fsutil import prepare_private_sqlite
from regcollect.model import Inventory


def default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "regcollect" / "state.sqlite"


def _connect(path: Path) -> sqlite3.Connection:
    prepare_private_sqlite(path)  # 0600 in a 0700 directory before SQLite writes a byte
    db = sqlite3.connect(path, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS first_seen (target TEXT, repository TEXT, digest TEXT, seen TEXT, "
        "PRIMARY KEY (target, repository, digest))"
    )
    return db


def record_first_seen(
    inv: Inventory, now: dt.datetime, *, complete: Iterable[str], path: Path | None = None
) -> None:
    """Set each artifact's first_seen from the database, recording `now` for new digests, and
    forget digests gone from the repositories in `complete` (read whole this run)."""
    try:
        db = _connect(path or default_path())
    except (OSError, sqlite3.Error):
        return
    try:
        with db:
            rows = db.execute(
                "SELECT repository, digest, seen FROM first_seen WHERE target=?", (inv.target,)
            ).fetchall()
            known: dict[tuple[str, str], dt.datetime] = {}
            for repo, digest, seen in rows:
                try:
                    known[(repo, digest)] = dt.datetime.fromisoformat(seen)
                except (TypeError, ValueError):
                    continue
            present = {(a.repository, a.digest) for a in inv.artifacts}
            new = sorted(present - set(known))
            db.executemany(
                "INSERT OR IGNORE INTO first_seen VALUES (?, ?, ?, ?)",
                [(inv.target, r, d, now.isoformat()) for r, d in new],
            )
            done = set(complete)
            gone = [(r, d) for (r, d) in known if r in done and (r, d) not in present]
            db.executemany(
                "DELETE FROM first_seen WHERE target=? AND repository=? AND digest=?",
                [(inv.target, r, d) for r, d in gone],
            )
        for a in inv.artifacts:
            a.first_seen = known.get((a.repository, a.digest), now)
    except sqlite3.Error:
        return
    finally:
        db.close()
