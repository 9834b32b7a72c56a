"""What `regcollect restore` and a person reading the journal rely on: each record's fields, the
timestamp, and that a torn line left by a killed run does not swallow the next record (issue 21)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from pathlib import Path

import pytest

from regcollect.journal import Journal, default_dir, read
from regcollect.model import Artifact, Kind
from regcollect.planner import Action, Decision

RAW = b'{"schemaVersion":2}'


def decision(action: Action = Action.DELETE) -> Decision:
    art = Artifact(
        "team/app",
        "sha256:" + "a" * 64,
        tags=("v1", "latest"),
        media_type="application/vnd.oci.image.manifest.v1+json",
        raw=RAW,
        subject="sha256:" + "b" * 64,
        children=("sha256:" + "c" * 64,),
        kind=Kind.REFERRER,
    )
    return Decision(artifact=art, action=action, reason="r", remove_tags=("v1",), bytes=123)


def records(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [dict(r) for r in read(path)]


def test_an_intent_holds_everything_restore_needs(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = Journal(path, "reg.test")
    asyncio.run(j.before(decision(), client=None, extra={"api": "github"}))
    j.close()
    (rec,) = records(path)
    ts = rec.pop("ts")
    assert abs(dt.datetime.fromisoformat(ts) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert rec == {
        "api": "github",
        "type": "intent",
        "source": "remote",
        "registry": "reg.test",
        "repository": "team/app",
        "digest": "sha256:" + "a" * 64,
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "manifest": base64.b64encode(RAW).decode(),
        "tags": ["v1", "latest"],
        "action": "delete",
        "remove_tags": ["v1"],
        "kind": Kind.REFERRER.value,
        "subject": "sha256:" + "b" * 64,
        "children": ["sha256:" + "c" * 64],
    }


def test_an_intent_without_the_manifest_bytes_fetches_them_first(tmp_path: Path) -> None:
    class Client:
        async def get_manifest(self, repo: str, digest: str):  # type: ignore[no-untyped-def]
            assert (repo, digest) == ("team/app", "sha256:" + "a" * 64)
            return type("M", (), {"data": b"fetched"})()

    d = decision()
    d.artifact.raw = None
    j = Journal(tmp_path / "j.jsonl", "reg.test")
    asyncio.run(j.before(d, client=Client()))
    j.close()
    assert records(tmp_path / "j.jsonl")[0]["manifest"] == base64.b64encode(b"fetched").decode()


def test_outcome_and_local_records(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = Journal(path, "engine-1")
    j.after(decision(), "done")
    j.local(decision(Action.UNTAG), "failed", "in use")
    j.close()
    out, loc = records(path)
    out.pop("ts"), loc.pop("ts")
    assert out == {
        "type": "outcome",
        "repository": "team/app",
        "digest": "sha256:" + "a" * 64,
        "action": "delete",
        "status": "done",
        "detail": "",
    }
    assert loc == {
        "type": "local",
        "engine": "engine-1",
        "repository": "team/app",
        "id": "sha256:" + "a" * 64,
        "tags": ["v1", "latest"],
        "action": "untag",
        "remove_tags": ["v1"],
        "bytes": 123,
        "status": "failed",
        "detail": "in use",
    }
    j = Journal(path, "engine-1")
    j.local(decision(), "done")
    j.close()
    assert records(path)[-1]["detail"] == ""


@pytest.mark.parametrize("torn", [b'{"type":"intent","repo', b"x"])
def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path: Path, torn: bytes) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"type":"outcome","status":"done"}\n' + torn)
    j = Journal(path, "reg.test")
    j.after(decision(), "done")
    j.close()
    assert [r["type"] for r in records(path)] == ["outcome", "outcome"]
    assert path.read_bytes().count(b"\n") == 3  # no blank line added, none missing


def test_a_journal_ending_in_a_newline_gets_no_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"type":"outcome","status":"done"}\n')
    j = Journal(path, "reg.test")
    j.after(decision(), "done")
    j.close()
    assert b"\n\n" not in path.read_bytes()


def test_the_default_directory_is_xdg_state_home_or_local_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_dir() == tmp_path / "xdg" / "regcollect"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_dir() == tmp_path / ".local" / "state" / "regcollect"


def test_a_journal_holding_one_torn_byte_does_not_swallow_the_first_record(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"{")
    j = Journal(path, "reg.test")
    j.after(decision(), "done")
    j.close()
    assert [r["type"] for r in records(path)] == ["outcome"]


def test_lines_that_are_json_but_not_records_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'["type"]\n"type"\n{"no": "type"}\n\n{"type":"outcome"}\n')
    got = list(read(path))
    assert [(dict(r), r.line) for r in got] == [({"type": "outcome"}, 5)]


def test_an_unreadable_journal_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    from regcollect.errors import UsageError

    with pytest.raises(UsageError) as err:
        list(read(tmp_path / "missing.jsonl"))
    assert str(err.value) == f"{tmp_path / 'missing.jsonl'}: cannot read journal: No such file or directory"
