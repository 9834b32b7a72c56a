"""The regcollect command lines in examples/recipes/ run as written against real services."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.support.images import ts, unique

pytestmark = pytest.mark.integration
RECIPES = Path(__file__).resolve().parents[2] / "examples" / "recipes"
LINE = re.compile(r"(?:\| *)?(?:/usr/local/bin/)?regcollect (remote|apply|local)\b[^\n]*")


def commands(path: Path) -> list[tuple[list[str], str | None, bool]]:
    """(argv, stdout file, reads password from stdin) for each regcollect line."""
    text = re.sub(r"\n\s+--", " --", path.read_text())  # YAML-folded continuation lines
    out = []
    for m in LINE.finditer(text):
        line = m.group(0).lstrip("| ").removeprefix("/usr/local/bin/")
        stdout = None
        if " > " in line:
            line, stdout = line.split(" > ", 1)
        argv = shlex.split(line)[1:]
        out.append((argv, stdout.strip() if stdout else None, "--password-stdin" in argv))
    return out


def test_every_recipe_has_commands():
    for f in RECIPES.iterdir():
        if f.suffix != ".timer":
            assert commands(f), f"{f.name} has no regcollect command"


@pytest.mark.parametrize("recipe", ["github-actions.yml", "gitlab-ci.yml", "kubernetes-cronjob.yaml"])
def test_registry_recipes(recipe, registry, pusher, run, tmp_path, monkeypatch):
    host = registry("open")["host"]
    p = pusher("open")
    repo = unique("arecipe") + "/app"  # starts with a: inside the [a-m] Kubernetes shard
    for i in range(4):
        p.image(repo, f"v{i}", created=ts(40 - i))
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[[rules]]\nrepositories = ["{repo}"]\nkeep_last = 2\n')
    monkeypatch.chdir(tmp_path)
    for argv, stdout, password in commands(RECIPES / recipe):
        argv = [host if a in ("$REGISTRY", "registry.example.com") else a for a in argv]
        argv = [str(policy) if a.endswith("policy.toml") else a for a in argv]
        argv = ["ci" if a == "$REGISTRY_USER" else a for a in argv]
        r = run(*argv, input="secret\n" if password else None)
        assert r.code == 0, (argv, r.out, r.err)
        if stdout:
            (tmp_path / stdout).write_text(r.out)
    if recipe == "gitlab-ci.yml":
        assert "| delete |" in (tmp_path / "plan.md").read_text()
    assert p.tags(repo) == ["v2", "v3"]


def test_systemd_recipe_lines_are_valid(engine, run):
    for argv, _, _ in commands(RECIPES / "regcollect-local.service"):
        argv = ["--dry-run" if a == "--yes" else a for a in argv]  # the engine is shared by tests
        r = run(*argv)
        assert r.code == 0, (argv, r.out, r.err)
