"""Private files and directories: journals, caches and state hold manifests, repository and tag
names of private registries, so they are 0600 files in 0700 directories whatever the umask.

`private_dir` is for regcollect's own directories (an existing one is tightened); `make_dirs` for a
path the user chose (only what it creates is 0700; their directories are left as they are).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def fsync_dir(path: str | Path) -> None:
    """Make a directory's entries (a file just created in it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: str | Path) -> Path:
    """Create `path` and its missing parents as 0700 (each new entry synced); existing ones stay."""
    p = Path(path)
    missing = []
    for d in [p, *p.parents]:
        if d.is_dir():
            break
        missing.append(d)
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs, not ours to change
        os.chmod(d, DIR_MODE)  # the umask may have taken bits away; never adds any
        fsync_dir(d.parent)
    return p


def private_dir(path: str | Path) -> Path:
    """regcollect's own directory: created 0700, or tightened to 0700 if it already exists."""
    p = make_dirs(path)
    if p.stat().st_mode & 0o777 != DIR_MODE:
        os.chmod(p, DIR_MODE)
    return p


def create_private(path: str | Path) -> bool:
    """Make sure `path` exists as a 0600 file (an existing one is tightened). True when created;
    the caller syncs the directory if the new entry must survive a crash."""
    fd, created = _open_private(Path(path), os.O_RDONLY)
    os.close(fd)
    return created


def open_private_append(path: str | Path) -> tuple[BinaryIO, bool]:
    """An append-only binary file that is 0600, and whether it was created by this call."""
    fd, created = _open_private(Path(path), os.O_WRONLY | os.O_APPEND)
    return os.fdopen(fd, "ab"), created


def _open_private(p: Path, flags: int) -> tuple[int, bool]:
    flags |= os.O_CLOEXEC
    try:
        fd = os.open(p, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
        created = True
    except FileExistsError:
        fd = os.open(p, flags)
        created = False
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd, created


def prepare_private_sqlite(path: str | Path) -> Path:
    """Before sqlite3.connect: a 0700 directory and a 0600 database file. SQLite gives its -wal,
    -shm and -journal files the database file's mode, so they are 0600 too; ones left by an older
    version are tightened here."""
    p = Path(path)
    private_dir(p.parent)
    if create_private(p):
        fsync_dir(p.parent)
    for suffix in SQLITE_SIDE_FILES:
        side = p.with_name(p.name + suffix)
        try:
            if side.stat().st_mode & 0o777 != FILE_MODE:
                os.chmod(side, FILE_MODE)
        except FileNotFoundError:
            continue
    return p
