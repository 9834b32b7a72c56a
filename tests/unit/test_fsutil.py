"""The private-file helpers journals, the cache and the state database are made with."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from regcollect.fsutil import (
    create_private,
    make_dirs,
    open_private_append,
    prepare_private_sqlite,
    private_dir,
)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def test_private_dir_whatever_the_umask(tmp_path, open_umask):
    d = private_dir(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == mode(d) == 0o700


def test_make_dirs_leaves_existing_directories_alone(tmp_path):
    os.chmod(tmp_path, 0o755)
    make_dirs(tmp_path / "x")
    assert mode(tmp_path) == 0o755 and mode(tmp_path / "x") == 0o700


def test_private_files_whatever_the_umask(tmp_path, open_umask):
    assert create_private(tmp_path / "f") is True
    assert create_private(tmp_path / "f") is False
    fh, created = open_private_append(tmp_path / "g")
    fh.write(b"x")
    fh.close()
    assert created is True
    assert mode(tmp_path / "f") == mode(tmp_path / "g") == 0o600


def test_sqlite_side_files_inherit_the_private_mode(tmp_path, open_umask):
    """SQLite makes -wal and -shm with the database file's mode: 0600 if that file is made first."""
    path = prepare_private_sqlite(tmp_path / "state" / "state.sqlite")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["state.sqlite", "state.sqlite-shm", "state.sqlite-wal"]
    assert {n: mode(path.parent / n) for n in names} == dict.fromkeys(names, 0o600)
    assert mode(path.parent) == 0o700
    db.close()
