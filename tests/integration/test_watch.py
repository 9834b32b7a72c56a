"""`regcollect local watch` (issue 18) against the real engine: the watcher runs as a process, as
under systemd, and logs JSON lines on stderr. Every run is scoped with --repo (the engine is
shared); the reconnect test uses a private dockerd of its own, since the shared one must not stop."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker
import pytest

from tests.support.dockertar import busybox_layer, layer_tar, load_image
from tests.support.images import ts, unique
from tests.support.privatedockerd import PrivateDockerd

pytestmark = pytest.mark.integration


class WatchProc:
    def __init__(self, *args: str, env: dict[str, str] | None = None):
        cmd = [sys.executable, "-m", "regcollect", "local", "watch", "-o", "json", "--debounce", "0.5", *args]
        self.proc = subprocess.Popen(
            cmd,
            env=dict(os.environ, **(env or {})),
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict] = []
        self.raw: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            try:
                self.events.append(json.loads(line))
            except ValueError:
                continue

    def wait_for(self, event: str, timeout: float = 60, after: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events[after:] if e.get("event") == event]
            if found:
                return found[0]
            if self.proc.poll() is not None and not found:
                time.sleep(0.2)
                if not [e for e in self.events[after:] if e.get("event") == event]:
                    raise AssertionError(f"watcher exited {self.proc.returncode}: {''.join(self.raw)}")
            time.sleep(0.1)
        raise AssertionError(f"no {event!r} within {timeout}s: {''.join(self.raw)}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def exists(engine, ref: str) -> bool:
    try:
        engine.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def recorded(image_id: str) -> list[tuple[str, str]]:
    db = Path(os.environ["XDG_STATE_HOME"]) / "regcollect" / "state.sqlite"
    if not db.exists():
        return []
    with sqlite3.connect(db) as c:
        return c.execute("SELECT used, source FROM last_use WHERE image=?", (image_id,)).fetchall()


def wait_until(pred, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def run_once(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "regcollect", "local", "watch", "--once", "-o", "json", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_container_start_seen_by_the_watcher_reorders_eviction_after_a_restart(engine):
    repo = unique("wuse") + "/app"
    busy = busybox_layer()
    imgs = [
        load_image(
            engine, f"{repo}:v{i}", created=ts(60 - 10 * i), layers=[busy, layer_tar(os.urandom(200_000))]
        )
        for i in range(3)
    ]
    w = WatchProc("--repo", repo, "--max-size", "100GB", "--interval", "1h")
    try:
        w.wait_for("check")
        c = engine.containers.run(imgs[0].id, ["/bin/true"], detach=True, network_mode="none")
        c.wait()
        c.remove()
        wait_until(lambda: any("container" in s for _, s in recorded(imgs[0].id)))
    finally:
        assert w.stop() == 0, "SIGTERM ends the watcher cleanly"
    assert w.wait_for("stopped")
    # A new watcher process (a restart): v0, oldest by creation, was used last, so v1 goes.
    sizes = {i["Id"]: i["Size"] - i["SharedSize"] for i in engine.df()["Images"]}
    over = sum(sizes[i.id] for i in imgs) + len(busy) - 100_000
    r = run_once("--repo", repo, "--max-size", str(over), "--low", str(over))
    assert r.returncode == 0, r.stderr
    assert [exists(engine, i.id) for i in imgs] == [True, False, True]
    evicted = [json.loads(x) for x in r.stderr.splitlines() if '"evicted"' in x]
    assert evicted[0]["image"] == imgs[1].id and evicted[0]["bytes"] > 0


def test_cleanup_stops_at_the_low_watermark_and_spares_containers_images(engine, tmp_path):
    repo = unique("wlow") + "/app"
    imgs = [load_image(engine, f"{repo}:v{i}", created=ts(50 - i), size=200_000) for i in range(5)]
    busy = busybox_layer()
    running = load_image(engine, f"{repo}:running", created=ts(90), layers=[busy], cmd=["/bin/sleep", "600"])
    stopped = load_image(engine, f"{repo}:stopped", created=ts(90), layers=[busy, layer_tar(b"s" * 500)])
    c1 = engine.containers.run(running.id, detach=True, network_mode="none")
    c2 = engine.containers.create(stopped.id, ["/bin/true"], network_mode="none")
    try:
        sizes = {i["Id"]: i["Size"] for i in engine.df()["Images"]}
        each = sizes[imgs[0].id]
        rest = sizes[stopped.id]  # busybox + its own layer; the running one's layer is busybox alone
        total = sum(sizes[i.id] for i in imgs) + rest
        high, low = total - each // 2, total - 2 * each - each // 2
        r = run_once("--repo", repo, "--max-size", str(high), "--low", str(low))
        assert r.returncode == 0, r.stderr
        # Just over the high watermark: the three oldest go (down to low), not only one.
        assert [exists(engine, i.id) for i in imgs] == [False, False, False, True, True]
        assert exists(engine, running.id) and exists(engine, stopped.id)
        journals = list((Path(os.environ["XDG_STATE_HOME"]) / "regcollect").glob("journal-*.jsonl"))
        assert len(journals) == 1, "one journal per cleanup"
        # Nothing left that may go: the budget cannot be met, exit 4, containers' images stay.
        r = run_once("--repo", repo, "--max-size", "1KB")
        assert r.returncode == 4, r.stderr
        assert "budget unreachable" in r.stderr
        assert exists(engine, running.id) and exists(engine, stopped.id)
    finally:
        c1.remove(force=True)
        c2.remove(force=True)


def test_two_watchers_on_one_state_directory_refuse(engine):
    w = WatchProc("--repo", unique("wlock") + "/none", "--max-size", "100GB", "--interval", "1h")
    try:
        w.wait_for("started")
        r = run_once("--repo", "x/none", "--max-size", "100GB")
        assert r.returncode == 1
        assert "another regcollect local watch" in r.stderr and "one watcher per state directory" in r.stderr
    finally:
        assert w.stop() == 0


def test_reconnects_after_the_engine_restarts(tmp_path):
    with PrivateDockerd() as d:
        client = docker.DockerClient(base_url=d.host)
        w = WatchProc("--max-size", "100GB", "--interval", "1h", env={"DOCKER_HOST": d.host})
        try:
            w.wait_for("check")
            d.restart()
            w.wait_for("disconnected")
            w.wait_for("reconnected", timeout=90)
            n = len(w.events)
            w.wait_for("check", after=n - 1)  # the image list is read again after reconnecting
            img = load_image(client, "after/restart:v1", created=ts(5), size=1000)
            wait_until(lambda: bool(recorded(img.id)), timeout=30)
        finally:
            assert w.stop() == 0
            client.close()


def test_the_systemd_watch_recipe_runs_as_written(engine):
    """examples/recipes/regcollect-watch.service: its command line, one dry pass (shared engine)."""
    from tests.integration.test_recipes import RECIPES, commands

    (argv, _, _), *_ = commands(RECIPES / "regcollect-watch.service")
    assert argv[:2] == ["local", "watch"]
    r = run_once(*argv[2:], "--dry-run")
    assert r.returncode == 0, r.stderr
