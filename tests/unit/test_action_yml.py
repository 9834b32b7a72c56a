"""action.yml stays wired to its entry step: a workflow's `with:` reaches regcollect, and every
output the action declares is one the entry step sets. GitHub does not check this for composite
actions: an input missing from the step's env is silently ignored, an unset output is empty."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from regcollect import ghaction

ROOT = Path(__file__).resolve().parents[2]
EXPR = re.compile(r"^\$\{\{\s*([\w.-]+)\s*\}\}$")


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def entry(action: dict[str, Any]) -> dict[str, Any]:
    steps = [s for s in action["runs"]["steps"] if "regcollect.ghaction" in s.get("run", "")]
    assert len(steps) == 1, "exactly one step runs python -m regcollect.ghaction"
    return steps[0]


def test_it_is_a_composite_action_that_installs_from_its_own_checkout(action) -> None:
    assert action["runs"]["using"] == "composite"
    install = action["runs"]["steps"][0]
    assert "${{ github.action_path }}" in install["env"].values()
    assert "pip install" in install["run"] and "$ACTION_PATH" in install["run"]
    for s in action["runs"]["steps"]:
        assert s.get("shell"), f"composite run steps need a shell: {s.get('id')}"


def test_every_input_reaches_the_entry_step_under_the_name_it_reads(action) -> None:
    env = entry(action)["env"]
    wired = {}
    for key, value in env.items():
        m = EXPR.match(str(value))
        if key.startswith("INPUT_"):
            assert m and m.group(1).startswith("inputs."), f"{key} is not set from an input: {value}"
            wired[key] = m.group(1).removeprefix("inputs.")
    assert sorted(wired.values()) == sorted(action["inputs"]), "an input is not passed to the entry step"
    assert set(wired) == {ghaction.env_name(n) for n in ghaction.INPUTS}, "entry reads other INPUT_ names"
    for key, name in wired.items():
        assert key == ghaction.env_name(name)


def test_the_entry_step_defaults_agree_with_action_yml(action) -> None:
    for name, spec in action["inputs"].items():
        default = str(spec.get("default", ""))
        if name == "token":
            continue  # an expression GitHub evaluates; the entry never needs a default for it
        assert ghaction.INPUTS[name] == default, f"input {name}: action.yml {default!r}"


def test_the_token_defaults_to_the_workflow_token_and_apply_to_a_plan_only(action) -> None:
    assert action["inputs"]["token"]["default"] == "${{ github.token }}"
    assert action["inputs"]["apply"]["default"] == "false"
    assert action["inputs"]["registry"]["default"] == "ghcr.io"


def test_every_output_is_set_by_the_entry_step(action) -> None:
    step_id = entry(action)["id"]
    for name, spec in action["outputs"].items():
        assert spec["value"] == f"${{{{ steps.{step_id}.outputs.{name} }}}}", name
    assert set(action["outputs"]) == set(ghaction.OUTPUTS)


def test_the_entry_reads_no_input_action_yml_does_not_declare() -> None:
    with pytest.raises(KeyError):
        ghaction.read({}, "keep_last")


def test_the_token_goes_to_stdin_never_to_the_command_line() -> None:
    env = {
        "INPUT_REPOSITORIES": "acme/app\n\n  acme/team/*  \n",
        "INPUT_KEEP-LAST": "3",
        "INPUT_KEEP-TAGS": "v*\nlatest",
        "INPUT_TOKEN": "ghp_secret",
    }
    args, token = ghaction.command(env, "/tmp/j.jsonl")
    assert token == "ghp_secret" and not any("ghp_secret" in a for a in args)
    assert args[:4] == ["remote", "ghcr.io", "--api", "github"]
    assert args.count("--repo") == 2 and "acme/team/*" in args
    assert "--dry-run" in args and "--yes" not in args and "--password-stdin" in args


def test_a_multiline_token_is_refused_since_only_its_first_line_could_be_masked() -> None:
    with pytest.raises(ghaction.BadInput, match="one line"):
        ghaction.command({"INPUT_REPOSITORIES": "a/b", "INPUT_KEEP-LAST": "1", "INPUT_TOKEN": "a\nb"}, "j")
