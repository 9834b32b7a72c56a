"""`regcollect restore` with a damaged journal: bad lines are named and skipped, the rest come back."""

from __future__ import annotations

import json

import pytest

from tests.support.images import ts, unique

pytestmark = pytest.mark.integration


def test_restore_skips_garbled_lines_and_restores_the_rest(registry, pusher, run, tmp_path):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("garble") + "/app"
    old = p.image(repo, "v1", created=ts(10))
    p.image(repo, "v2", created=ts(1))
    journal = tmp_path / "j.jsonl"
    r = run("remote", host, "--repo", repo, "--keep-last", "1", "--yes", "--journal", str(journal))
    assert r.code == 0, r.out + r.err
    assert not p.exists(repo, old.digest)
    lines = journal.read_text().splitlines()
    intent = json.loads(next(x for x in lines if json.loads(x)["type"] == "intent"))
    bad = [
        {k: v for k, v in intent.items() if k != "registry"},
        {**intent, "manifest": "not base64!"},
        {**intent, "tags": {"v1": True}},
    ]
    journal.write_text("\n".join([json.dumps(b) for b in bad] + lines) + "\n")
    r = run("restore", str(journal), "--yes")
    assert r.code == 0, r.out + r.err
    assert "Traceback" not in r.err and "internal error" not in r.err
    warned = [x for x in r.err.splitlines() if x.startswith("warning: journal line")]
    assert [w.split(":")[1].strip() for w in warned] == ["journal line 1", "journal line 2", "journal line 3"]
    assert p.resolve(repo, "v1") == old.digest
