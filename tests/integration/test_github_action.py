"""The GitHub Action's entry step run as GitHub runs it, against the ghcr.io emulator.

The environment is built from action.yml itself: each `INPUT_*: ${{ inputs.x }}` of the entry
step gets the workflow's value or the input's declared default, as GitHub evaluates it. Then
`python -m regcollect.ghaction` runs in a subprocess with no stdin, with $GITHUB_OUTPUT,
$GITHUB_STEP_SUMMARY and $RUNNER_TEMP pointing at files of the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.ghcr.demo import PAT, Seeded, seed_demo
from tests.support.ghcr.server import GhcrEmulator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXPR = re.compile(r"^\$\{\{\s*([\w.-]+)\s*\}\}$")


@dataclass
class Step:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    files: list[Path]

    def doc(self) -> dict:
        return json.loads(Path(self.outputs["plan"]).read_text())


def entry_env(inputs: dict[str, str], github_token: str) -> dict[str, str]:
    """The entry step's `env:` as GitHub evaluates it for a workflow's `with:` values."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    declared = action["inputs"]
    unknown = set(inputs) - set(declared)
    assert not unknown, f"not inputs of action.yml: {unknown}"
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "regcollect")
    env = {}
    for key, value in step["env"].items():
        m = EXPR.match(str(value))
        if not m or not m.group(1).startswith("inputs."):
            continue
        name = m.group(1).removeprefix("inputs.")
        raw = inputs.get(name, str(declared[name].get("default", "")))
        d = EXPR.match(raw)
        env[key] = {"github.token": github_token}[d.group(1)] if d else raw
    return env


def parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT: `name=value` lines and `name<<DELIM` ... `DELIM` blocks."""
    out: dict[str, str] = {}
    it = iter(text.splitlines())
    for line in it:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            body = []
            for b in it:
                if b == delim:
                    break
                body.append(b)
            out[name] = "\n".join(body)
        elif line:
            name, value = line.split("=", 1)
            out[name] = value
    return out


@pytest.fixture
def emu() -> Iterator[tuple[GhcrEmulator, Seeded]]:
    with GhcrEmulator() as e:
        yield e, seed_demo(e)


@pytest.fixture
def step(emu, tmp_path: Path):  # type: ignore[no-untyped-def]
    e, _ = emu
    n = 0

    def run(github_token: str = PAT, **inputs: str) -> Step:
        nonlocal n
        n += 1
        base = tmp_path / f"step{n}"
        temp = base / "runner-temp"
        temp.mkdir(parents=True)
        output, summary = base / "github_output", base / "step_summary"
        output.touch()
        summary.touch()
        defaults = {"registry": e.registry_host, "api-url": e.api_url}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
        env.update(
            entry_env({**defaults, **inputs}, github_token),
            GITHUB_OUTPUT=str(output),
            GITHUB_STEP_SUMMARY=str(summary),
            RUNNER_TEMP=str(temp),
            GITHUB_ACTIONS="true",
        )
        r = subprocess.run(
            [sys.executable, "-m", "regcollect.ghaction"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            cwd=base,
            timeout=300,
        )
        files = [p for p in base.rglob("*") if p.is_file()]
        return Step(
            r.returncode, r.stdout, r.stderr, parse_outputs(output.read_text()), summary.read_text(), files
        )

    return run


def active(e: GhcrEmulator, repo: str) -> dict[str, list[str]]:
    return {v.digest: sorted(v.tags) for v in e.package(repo).active()}


RELEASES = {"repositories": "acme/app", "keep-last": "2", "keep-tags": "v*\nlatest\n", "untagged": "true"}


def test_a_plan_only_run_changes_nothing_and_sets_the_outputs(emu, step) -> None:
    e, _ = emu
    before = active(e, "acme/app")
    r = step(**RELEASES)
    assert r.code == 0, r.stdout + r.stderr
    assert active(e, "acme/app") == before
    assert not [x for x in e.rest_log if x.method == "DELETE"]
    doc = r.doc()
    assert doc["dry_run"] is True and "outcome" not in doc
    assert "runner-temp" in r.outputs["plan"]
    s = doc["summary"]
    assert int(r.outputs["deleted"]) == s["delete"] > 0
    assert r.outputs["untagged"] == str(s["untag"])
    assert r.outputs["kept"] == str(s["keep"])
    assert r.outputs["reclaimed-bytes"] == str(s["reclaimable_bytes"])
    assert "journal" not in r.outputs
    assert r.summary.count("| action | repository |") == 1 and "(dry run)" in r.summary
    assert "delete" in r.stdout and "Traceback" not in r.stderr  # the plan is in the log too


def test_an_apply_run_deletes_and_the_outputs_match_the_registry(emu, step) -> None:
    e, s = emu
    before = active(e, "acme/app")
    r = step(**RELEASES, apply="true")
    assert r.code == 0, r.stdout + r.stderr
    after = active(e, "acme/app")
    assert int(r.outputs["deleted"]) == len(before) - len(after) > 0
    assert r.outputs["untagged"] == "0"
    assert int(r.outputs["kept"]) == len(after)
    doc = r.doc()
    assert doc["outcome"]["failed"] == 0
    assert int(r.outputs["reclaimed-bytes"]) == doc["outcome"]["reclaimed_bytes"] > 0
    assert s.refs["app:v1.2.0"] in after and s.refs["app:orphan"] not in after
    journal = Path(r.outputs["journal"])
    assert journal.exists() and "runner-temp" in str(journal)
    assert r.summary.count("| action | repository |") == 1 and "(applied)" in r.summary


def test_a_refused_deletion_fails_the_step_with_githubs_reason_and_outputs_still_set(emu, step) -> None:
    e, s = emu
    e.version("octo/tool", s.refs["tool:0.0"]).downloads = 6000  # public: past the 5,000 rule
    r = step(repositories="octo/tool", **{"keep-last": "1"}, apply="true")
    assert r.code == 1, r.stdout + r.stderr
    assert r.outputs["deleted"] == "1"
    errors = [line for line in r.stdout.splitlines() if line.startswith("::error::")]
    assert errors and "5,000" in errors[0]


def test_the_token_is_never_shown_except_to_be_masked(emu, step) -> None:
    r = step(repositories="octo/tool", **{"keep-last": "1"}, apply="true")
    assert r.code == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == f"::add-mask::{PAT}"
    rest = "\n".join(r.stdout.splitlines()[1:])
    assert PAT not in rest and PAT not in r.stderr
    assert len(r.files) >= 4  # outputs, summary, plan, journal
    for f in r.files:
        assert PAT not in f.read_text(errors="replace"), f"token in {f.name}"


def test_the_workflow_token_is_the_default(emu, step) -> None:
    """No `token:` in the workflow: action.yml's default, the workflow's token, is used."""
    r = step(github_token=PAT, repositories="octo/tool", **{"keep-last": "1"})
    assert r.code == 0, r.stdout + r.stderr
    assert r.outputs["deleted"] == "2"
    wrong = step(github_token="ghp_" + "x" * 36, repositories="octo/tool", **{"keep-last": "1"})
    assert wrong.code == 3, wrong.stdout + wrong.stderr


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"keep-last": "three"}, "keep-last"),
        ({"keep-last": "-1"}, "keep-last"),
        ({"keep-last": "2", "apply": "yes"}, "apply"),
        ({"keep-last": "2", "untagged": "maybe"}, "untagged"),
        ({"keep-last": "2", "repositories": ""}, "repositories"),
    ],
)
def test_a_bad_input_is_one_error_line_and_nothing_is_contacted(emu, step, inputs, named) -> None:
    e, _ = emu
    before = active(e, "acme/app")
    r = step(**{"repositories": "acme/app", **inputs})
    assert r.code == 2, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"::error::input {named}:"), r.stdout
    assert e.rest_log == [] and e.registry_log == []
    assert active(e, "acme/app") == before
    assert "Traceback" not in r.stderr
