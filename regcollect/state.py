"""What regcollect remembers between runs (SQLite in $XDG_STATE_HOME/regcollect): when it first
saw each digest, the fallback age of images whose created time says nothing (regcollect/ages.py),
and when `local watch` last saw each local image used (engine events: a container started from an
image last tagged months ago), keyed by the engine's own ID.

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
    db.execute(
        "CREATE TABLE IF NOT EXISTS last_use (engine TEXT, image TEXT, used TEXT, source TEXT, "
        "PRIMARY KEY (engine, image))"
    )
    return db


def record_last_use(
    engine: str, uses: Iterable[tuple[str, dt.datetime, str]], *, path: Path | None = None
) -> bool:
    """Record (image id, time, what happened); an older time never replaces a newer one.
    False when the database could not be written (the use is then not remembered)."""
    rows = [(engine, image, when.astimezone(dt.UTC).isoformat(), source) for image, when, source in uses]
    try:
        db = _connect(path or default_path())
    except (OSError, sqlite3.Error):
        return False
    try:
        with db:
            db.executemany(
                "INSERT INTO last_use VALUES (?, ?, ?, ?) ON CONFLICT (engine, image) DO UPDATE SET "
                "used=excluded.used, source=excluded.source WHERE excluded.used > last_use.used",
                rows,
            )
        return True
    except sqlite3.Error:
        return False
    finally:
        db.close()


def recorded_last_use(
    engine: str, *, forget_except: Iterable[str] | None = None, path: Path | None = None
) -> dict[str, tuple[dt.datetime, str]]:
    """Image id -> (last use, what it was) as recorded; {} when unknown. forget_except: the images
    the engine has now (read whole): rows of others are dropped, so the table stays that size."""
    try:
        db = _connect(path or default_path())
    except (OSError, sqlite3.Error):
        return {}
    out: dict[str, tuple[dt.datetime, str]] = {}
    try:
        with db:
            rows = db.execute("SELECT image, used, source FROM last_use WHERE engine=?", (engine,)).fetchall()
            if forget_except is not None:
                present = set(forget_except)
                db.executemany(
                    "DELETE FROM last_use WHERE engine=? AND image=?",
                    [(engine, r[0]) for r in rows if r[0] not in present],
                )
        for image, used, source in rows:
            try:
                when = dt.datetime.fromisoformat(used)
            except (TypeError, ValueError):
                continue
            if when.tzinfo is not None:
                out[str(image)] = (when, str(source))
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    return out


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
