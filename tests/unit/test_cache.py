"""The fact cache: two runs at once both finish, and a broken cache is only a slower run."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from regcollect.cache import FactCache

CONFIG = {"created": "2024-01-01T00:00:00Z", "labels": {"a": "b"}}


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_two_runs_share_one_cache_file(tmp_path):
    """The second of two concurrent runs used to die with "database is locked" after 5 s,
    because the first held a write transaction from its first write until it closed."""
    path = tmp_path / "facts.sqlite"
    first, second = FactCache(path), FactCache(path)
    first.put_manifest("sha256:a", b"A", "m/a")
    second.put_manifest("sha256:b", b"B", "m/b")  # must neither wait for `first` nor raise
    second.put_config("sha256:c", CONFIG)
    first.put_image_layers("sha256:d", ["sha256:l1"])
    assert first.manifest("sha256:a") == (b"A", "m/a")  # own writes are read back at once
    first.close()
    assert second.manifest("sha256:a") == (b"A", "m/a")  # what a finished run wrote is shared
    assert second.image_layers("sha256:d") == ["sha256:l1"]
    second.close()
    third = FactCache(path)
    assert third.manifest("sha256:b") == (b"B", "m/b")
    assert third.config("sha256:c") == CONFIG
    third.close()


def test_writes_are_committed_while_the_run_goes_on(tmp_path):
    """A long run does not keep its facts (and a write lock) to itself until it ends."""
    path = tmp_path / "facts.sqlite"
    run = FactCache(path)
    for i in range(500):
        run.put_tag_hint("reg", "repo", f"t{i}", f"sha256:{i}")
    other = FactCache(path)
    assert other.tag_hint("reg", "repo", "t0") == "sha256:0"
    other.put_tag_hint("reg", "repo", "x", "sha256:x")  # the file is not left write-locked
    other.close()
    run.close()


def test_corrupt_cache_file_is_a_miss_not_an_abort(tmp_path):
    path = tmp_path / "facts.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = FactCache(path)
    assert cache.manifest("sha256:a") is None
    cache.put_manifest("sha256:a", b"A", "m")
    assert cache.config("sha256:c") is None
    cache.close()


def test_locked_cache_file_is_a_miss_not_an_abort(tmp_path):
    path = tmp_path / "facts.sqlite"
    FactCache(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        cache = FactCache(path, busy_timeout=0.1)
        assert cache.manifest("sha256:a") is None
        cache.put_manifest("sha256:a", b"A", "m")
        cache.put_tag_hint("r", "p", "t", "sha256:a")
        cache.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_garbled_rows_are_misses(tmp_path):
    path = tmp_path / "facts.sqlite"
    FactCache(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO facts VALUES ('sha256:c', 'config', '', ?)", (b"{not json",))
    db.execute("INSERT INTO facts VALUES ('sha256:i', 'image-layers', '', ?)", (b"\xff\xfe",))
    db.commit()
    db.close()
    cache = FactCache(path)
    assert cache.config("sha256:c") is None
    assert cache.image_layers("sha256:i") is None
    cache.close()


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_cache_files_are_private_whatever_the_umask(tmp_path, monkeypatch, umask):
    """Manifests and tag names of private registries: 0600 files (WAL and SHM too) in a 0700 dir."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    old = os.umask(umask)
    try:
        cache = FactCache()
        cache.put_manifest("sha256:a", b"A" * 10_000, "m")
        cache.flush()
        directory = tmp_path / "xdg" / "regcollect"
        assert mode(directory) == 0o700
        files = sorted(p.name for p in directory.iterdir())
        assert "facts.sqlite-wal" in files and "facts.sqlite-shm" in files
        assert {p.name: mode(p) for p in directory.iterdir()} == dict.fromkeys(files, 0o600)
        cache.close()
    finally:
        os.umask(old)


def test_an_old_world_readable_cache_is_tightened(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    directory = tmp_path / "xdg" / "regcollect"
    directory.mkdir(parents=True, mode=0o755)
    os.chmod(directory, 0o755)
    db = sqlite3.connect(directory / "facts.sqlite")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    os.chmod(directory / "facts.sqlite", 0o644)
    FactCache().close()
    assert mode(directory) == 0o700
    assert mode(directory / "facts.sqlite") == 0o600
