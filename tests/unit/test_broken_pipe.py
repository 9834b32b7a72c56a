"""`regcollect ... | head`: when the reader goes away, exit quietly as other CLIs do: no traceback,
no "Error:" line, exit status 141 (128 + SIGPIPE, what a shell shows for a command killed by it)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from regcollect.model import Artifact
from regcollect.planner import Action, Decision, Plan
from regcollect.report import dumps, plan_json

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@pytest.fixture
def big_plan(tmp_path):
    """A saved plan with 3,000 kept images: `apply` prints it (well over a pipe buffer) and, with
    nothing to change, contacts nobody."""
    plan = Plan(source="remote", target="127.0.0.1:9", now=NOW, policy={})
    for i in range(3000):
        a = Artifact(repository=f"team/app{i // 10}", digest=f"sha256:{i:064x}", tags=(f"v{i}",), created=NOW)
        plan.decisions.append(Decision(artifact=a, action=Action.KEEP, reason="kept: one of the newest"))
    path = tmp_path / "plan.json"
    path.write_text(dumps(plan_json(plan, dry_run=True)))
    return path


def test_reader_going_away_ends_the_run_quietly(big_plan, tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path)}
    env.pop("REGCOLLECT_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "regcollect", "apply", str(big_plan), "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = os.read(proc.stdout.fileno(), 100)  # like `head -c 100`: then the reader is gone
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert first
    assert err == ""
    assert code == 141
