"""Start and stop the real test services on loopback: a Docker Engine of our own and four
distribution registries (open, htpasswd Basic, deletes disabled, Bearer token) plus our token server.

Idempotent: a service already answering is left alone. Run as root, missing Debian packages are
installed. `start` writes services.json in the state directory and prints the environment to export.
Usage: python -m tests.support.services start|stop|env [--state DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PACKAGES = {
    "dockerd": "docker.io",
    "docker-registry": "docker-registry",
    "htpasswd": "apache2-utils",
    "busybox": "busybox-static",
}
USERS = {
    "admin": {"password": "admin-secret-pw", "actions": ["pull", "push", "delete"], "catalog": True},
    "puller": {"password": "puller-secret-pw", "actions": ["pull"], "catalog": True},
}
BASIC_USER = ("basicuser", "basic-secret-pw")
DEFAULT_STATE = Path(os.environ.get("REGCOLLECT_SERVICES_DIR", "/tmp/regcollect-services"))
DEFAULT_PORT_BASE = int(os.environ.get("REGCOLLECT_PORT_BASE", "15100"))


class ServiceError(RuntimeError):
    pass


def ensure_packages() -> None:
    missing = sorted({pkg for cmd, pkg in PACKAGES.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise ServiceError(f"missing Debian packages {missing} and not root to install them")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdin=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing],
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


def _alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def _spawn(cmd: list[str], log: Path, pidfile: Path, cwd: Path | None = None) -> None:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=cwd,
        )
    pidfile.write_text(str(proc.pid))


def _wait_http(url: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            import ssl

            ctx = ssl._create_unverified_context() if url.startswith("https") else None  # noqa: S323
            urllib.request.urlopen(url, timeout=2, context=ctx)  # noqa: S310 - loopback only
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer (401 included) means it serves
        except OSError:
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise ServiceError(f"{url} did not answer within {timeout:.0f}s; log {log}:\n{tail}")


def _wait_engine(sock: Path, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(sock))
                s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                if b"200 OK" in s.recv(1024):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise ServiceError(f"dockerd at {sock} did not answer within {timeout:.0f}s; log {log}:\n{tail}")


def registry_config(
    root: Path, port: int, *, delete: bool, auth: dict[str, Any] | None, tls: tuple[Path, Path] | None = None
) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root / 'data'}",
        "  delete:",
        f"    enabled: {'true' if delete else 'false'}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: regcollect-test-secret",
    ]
    if tls:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
    if auth:
        lines.append("auth:")
        for kind, settings in auth.items():
            lines.append(f"  {kind}:")
            lines.extend(f"    {k}: {v}" for k, v in settings.items())
    return "\n".join(lines) + "\n"


def start(state: Path, port_base: int) -> dict[str, Any]:
    ensure_packages()
    state.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"state": str(state), "registries": {}}

    # Docker Engine of our own.
    eng = state / "engine"
    eng.mkdir(exist_ok=True)
    sock = eng / "docker.sock"
    pidfile = eng / "dockerd.pid.run"
    if not _alive(pidfile):
        for stale in (sock, eng / "pid"):
            stale.unlink(missing_ok=True)
        _spawn(
            [
                "dockerd",
                "--data-root",
                str(eng / "data"),
                "--exec-root",
                str(eng / "exec"),
                "--pidfile",
                str(eng / "pid"),
                "--host",
                f"unix://{sock}",
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
            ],
            eng / "dockerd.log",
            pidfile,
        )
    _wait_engine(sock, eng / "dockerd.log")
    info["docker_host"] = f"unix://{sock}"
    info["busybox"] = shutil.which("busybox")

    # Token server key, certificate and users.
    tok = state / "token"
    tok.mkdir(exist_ok=True)
    if not (tok / "cert.pem").exists():
        from tests.support.tokenserver import make_key_and_cert

        make_key_and_cert(tok / "key.pem", tok / "cert.pem")
    token_port = port_base + 5
    token_conf = {
        "port": token_port,
        "key": str(tok / "key.pem"),
        "cert": str(tok / "cert.pem"),
        "issuer": "regcollect-test-issuer",
        "service": "regcollect-test-registry",
        "users": USERS,
        "anonymous_actions": ["pull"],
        "ttl": 300,
    }
    (tok / "config.json").write_text(json.dumps(token_conf, indent=2))
    if not _alive(tok / "pid"):
        repo_root = Path(__file__).resolve().parents[2]
        _spawn(
            [sys.executable, "-m", "tests.support.tokenserver", str(tok / "config.json")],
            tok / "log",
            tok / "pid",
            cwd=repo_root,
        )
    _wait_http(f"http://127.0.0.1:{token_port}/stats", tok / "log")
    info["token_server"] = f"http://127.0.0.1:{token_port}"
    info["token_users"] = USERS

    # htpasswd file for the Basic registry (bcrypt, as distribution requires).
    htp = state / "htpasswd"
    if not htp.exists():
        out = subprocess.run(
            ["htpasswd", "-Bbn", *BASIC_USER], check=True, capture_output=True, text=True
        ).stdout
        htp.write_text(out.strip() + "\n")

    if not (tok / "tls-cert.pem").exists():
        from tests.support.tokenserver import make_tls_cert

        make_tls_cert(tok / "tls-key.pem", tok / "tls-cert.pem")
    tls_files = (tok / "tls-cert.pem", tok / "tls-key.pem")
    specs: dict[str, tuple[int, bool, dict[str, Any] | None]] = {
        "open": (port_base + 1, True, None),
        "basic": (port_base + 2, True, {"htpasswd": {"realm": "regcollect-basic", "path": htp}}),
        "nodelete": (port_base + 3, False, None),
        "token": (
            port_base + 4,
            True,
            {
                "token": {
                    "realm": f"http://127.0.0.1:{token_port}/token",
                    "service": token_conf["service"],
                    "issuer": token_conf["issuer"],
                    "rootcertbundle": tok / "cert.pem",
                }
            },
        ),
    }
    specs["tls"] = (port_base + 6, True, None)
    for name, (port, delete, auth) in specs.items():
        root = state / f"registry-{name}"
        root.mkdir(exist_ok=True)
        tls = tls_files if name == "tls" else None
        (root / "config.yml").write_text(registry_config(root, port, delete=delete, auth=auth, tls=tls))
        if not _alive(root / "pid"):
            _spawn(["docker-registry", "serve", str(root / "config.yml")], root / "log", root / "pid")
        _wait_http(f"{'https' if tls else 'http'}://127.0.0.1:{port}/v2/", root / "log")
        entry: dict[str, Any] = {
            "host": f"127.0.0.1:{port}",
            "delete": delete,
            "pid": int((root / "pid").read_text()),
            "config": str(root / "config.yml"),
            "storage": str(root / "data"),
        }
        if name == "basic":
            entry["username"], entry["password"] = BASIC_USER
        if tls:
            entry["url"], entry["ca_cert"] = f"https://127.0.0.1:{port}", str(tls_files[0])
        info["registries"][name] = entry
    (state / "services.json").write_text(json.dumps(info, indent=2))
    return info


def stop(state: Path) -> None:
    for pidfile in [state / "engine" / "dockerd.pid.run", state / "token" / "pid"] + sorted(
        state.glob("registry-*/pid")
    ):
        if _alive(pidfile):
            pid = int(pidfile.read_text())
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _alive(pidfile):
                    break
                time.sleep(0.1)
        pidfile.unlink(missing_ok=True)


def env_lines(state: Path) -> list[str]:
    info = json.loads((state / "services.json").read_text())
    lines = [
        f"export REGCOLLECT_SERVICES={state / 'services.json'}",
        f"export REGCOLLECT_TEST_DOCKER_HOST={info['docker_host']}",
    ]
    for name, reg in info["registries"].items():
        lines.append(f"export REGCOLLECT_TEST_REGISTRY_{name.upper()}={reg['host']}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(prog="services")
    parser.add_argument("action", choices=["start", "stop", "env"])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    args = parser.parse_args()
    try:
        if args.action == "start":
            start(args.state, args.port_base)
            print("\n".join(env_lines(args.state)))
        elif args.action == "stop":
            stop(args.state)
        else:
            print("\n".join(env_lines(args.state)))
    except (ServiceError, subprocess.CalledProcessError, OSError) as exc:
        print(f"services: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
