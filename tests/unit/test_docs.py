"""The documentation users read stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import click

from regcollect.cli import cli
from regcollect.clidoc import render

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current():
    """Fails when a command or option is added, removed or changed without regenerating."""
    assert (ROOT / "docs/cli.md").read_text() == render(), (
        "docs/cli.md is stale: run python -m regcollect.clidoc > docs/cli.md"
    )


def test_every_command_and_option_is_in_the_reference():
    text = (ROOT / "docs/cli.md").read_text()
    from regcollect import commands  # noqa: F401

    for name, cmd in cli.commands.items():
        assert f"## regcollect {name}" in text
        assert cmd.help, f"{name} has no help"
        for p in cmd.params:
            if isinstance(p, click.Option):
                assert f"`{p.opts[0]}`" in text, f"{name} {p.opts[0]} missing from docs/cli.md"
                assert p.help, f"{name} {p.opts[0]} has no help text"


def test_policy_reference_names_every_key():
    from regcollect.policy import RULE_KEYS

    text = (ROOT / "docs/policy.md").read_text()
    for key in RULE_KEYS:
        assert f"`{key}`" in text, f"docs/policy.md does not document {key}"


def test_docs_links_resolve():
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+?)\)", md.read_text()):
            if "://" in target:
                continue
            assert (md.parent / target).exists(), f"{md.relative_to(ROOT)} links to missing {target}"


def test_completion_scripts_are_produced(run):
    for shell, marker in (("bash", "complete"), ("zsh", "compdef"), ("fish", "complete")):
        r = run("completion", shell)
        assert r.code == 0 and marker in r.out and "_REGCOLLECT_COMPLETE" in r.out
