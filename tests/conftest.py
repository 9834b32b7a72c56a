"""Fixtures over the real services (tests/support/services.py) and a CLI runner.

Integration tests use the `services` fixture. Outside CI, if the services cannot start (not root,
no packages), those tests skip; under CI=true they fail instead, so a missing install step shows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from regcollect.cli import cli
from tests.support import services as svc
from tests.support.images import Pusher

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's docker config, cache or state."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.delenv("DOCKER_AUTH_CONFIG", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(scope="session")
def services() -> dict[str, Any]:
    path = os.environ.get("REGCOLLECT_SERVICES")
    if path and Path(path).exists():
        return json.loads(Path(path).read_text())
    try:
        return svc.start(svc.DEFAULT_STATE, svc.DEFAULT_PORT_BASE)
    except Exception as exc:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"test services could not start under CI: {exc}")
        pytest.skip(f"test services unavailable: {exc}")


@pytest.fixture
def registry(services: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
    return lambda name: services["registries"][name]


@pytest.fixture
def pusher(services: dict[str, Any]) -> Iterator[Callable[..., Pusher]]:
    made: list[Pusher] = []

    def make(name: str = "open") -> Pusher:
        reg = services["registries"][name]
        if name == "basic":
            p = Pusher(reg["host"], basic=(reg["username"], reg["password"]))
        elif name == "token":
            admin = services["token_users"]["admin"]
            p = Pusher(reg["host"], token_user=("admin", admin["password"]))
        else:
            p = Pusher(reg["host"])
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@dataclass
class Run:
    result: Result

    @property
    def code(self) -> int:
        return self.result.exit_code

    @property
    def out(self) -> str:
        return self.result.stdout

    @property
    def err(self) -> str:
        return self.result.stderr

    def json(self) -> dict[str, Any]:
        return json.loads(self.result.stdout)


@pytest.fixture
def run() -> Callable[..., Run]:
    """Run `regcollect ARGS` in-process, stdin not a TTY, as a CI job would."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Run:
        runner = CliRunner()
        return Run(runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=False))

    from regcollect import commands  # noqa: F401 - registers subcommands

    return invoke


@pytest.fixture
def remote_as(run: Callable[..., Run]) -> Callable[..., Run]:
    """`regcollect remote HOST ARGS -u USER --password-stdin`, the password on stdin as CI passes it."""

    def invoke(reg: dict[str, Any], *args: str, user: str | None = None, password: str | None = None) -> Run:
        user = user or reg["username"]
        secret = reg["password"] if password is None else password
        return run("remote", reg["host"], *args, "-u", user, "--password-stdin", input=secret + "\n")

    return invoke


@pytest.fixture
def engine(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch):
    """A docker client on our own engine; regcollect finds it through DOCKER_HOST as users' does."""
    import docker

    monkeypatch.setenv("DOCKER_HOST", services["docker_host"])
    client = docker.DockerClient(base_url=services["docker_host"])
    yield client
    client.close()
