"""A dockerd of a test's own (data root, exec root, pid file and socket in a temporary directory),
for tests that must stop or restart the engine: the shared test engine is never restarted."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import docker


class PrivateDockerd:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rcd-", dir="/tmp"))  # short: unix socket paths
        self.sock = self.dir / "d.sock"
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.dir / "dockerd.log", "ab")  # noqa: SIM115 - the process keeps it
        self.proc = subprocess.Popen(
            [
                "dockerd",
                "--data-root",
                str(self.dir / "data"),
                "--exec-root",
                str(self.dir / "exec"),
                "--pidfile",
                str(self.dir / "pid"),
                "--host",
                self.host,
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
            ],  # fmt: skip
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                docker.APIClient(base_url=self.host, timeout=5).ping()
                return
            except Exception:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None:
                    break
                time.sleep(0.3)
        raise RuntimeError(f"private dockerd did not start: {(self.dir / 'dockerd.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        time.sleep(1)
        self.start()

    def __enter__(self) -> PrivateDockerd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        subprocess.run(["umount", "-R", str(self.dir / "data")], capture_output=True)
        subprocess.run(["umount", "-R", str(self.dir / "exec")], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
