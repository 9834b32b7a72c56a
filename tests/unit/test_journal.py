"""The undo journal: private (it holds manifests of private registries) and durable record by record."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest

from regcollect import journal as journal_mod
from regcollect.journal import Journal, default_path
from regcollect.model import Artifact
from regcollect.planner import Action, Decision

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
IMAGE = "sha256:" + "ab" * 32


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def decision() -> Decision:
    art = Artifact(repository="team/app", digest=IMAGE, tags=("v1",))
    return Decision(artifact=art, action=Action.DELETE, reason="test", remove_tags=("v1",))


@pytest.fixture
def synced(monkeypatch):
    """The paths os.fsync was called on, each with the file's bytes at that moment."""
    calls: list[tuple[str, bytes | None]] = []
    real = os.fsync

    def spy(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        calls.append((path, None if os.path.isdir(path) else open(path, "rb").read()))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_default_journal_is_private_whatever_the_umask(tmp_path, monkeypatch, umask):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    old = os.umask(umask)
    try:
        j = Journal(default_path(NOW), "engine")
        j.local(decision(), "done")
        j.close()
    finally:
        os.umask(old)
    assert mode(tmp_path / "state") == 0o700  # created by us, so ours
    assert mode(tmp_path / "state" / "regcollect") == 0o700
    assert mode(j.path) == 0o600


def test_default_journal_directory_left_open_by_an_old_version_is_tightened(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    (tmp_path / "regcollect").mkdir(mode=0o755)
    os.chmod(tmp_path / "regcollect", 0o755)
    Journal(default_path(NOW), "engine").close()
    assert mode(tmp_path / "regcollect") == 0o700


def test_journal_in_a_directory_of_the_users_choice(tmp_path):
    """--journal PATH: the file is 0600, missing directories are made 0700, the user's own stay."""
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "new" / "deeper" / "undo.jsonl"
    Journal(path, "engine").close()
    assert mode(path) == 0o600
    assert mode(tmp_path / "new") == mode(tmp_path / "new" / "deeper") == 0o700
    assert mode(tmp_path) == 0o755


def test_appending_to_an_existing_world_readable_journal_tightens_it(tmp_path):
    path = tmp_path / "undo.jsonl"
    path.write_text('{"type":"local"}\n')
    os.chmod(path, 0o644)
    Journal(path, "engine").close()
    assert mode(path) == 0o600


def test_new_journal_file_is_synced_into_its_directory(tmp_path, synced):
    """A crash right after the first record must not lose the journal file itself."""
    path = tmp_path / "undo.jsonl"
    Journal(path, "engine").close()
    assert str(tmp_path) in [p for p, _ in synced]


def test_local_record_is_synced_after_it_is_written(tmp_path, synced):
    path = tmp_path / "undo.jsonl"
    j = Journal(path, "engine")
    synced.clear()
    j.local(decision(), "done")
    assert synced, "the local record was never fsync'd"
    file_path, content = synced[-1]
    assert file_path == str(path)
    assert content is not None and b'"type":"local"' in content and IMAGE.encode() in content
    j.close()
    assert [r["type"] for r in journal_mod.read(path)] == ["local"]
