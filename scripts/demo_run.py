"""The demo behind scripts/demo: throwaway services, seeded images, plans, apply, undo."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
from pathlib import Path

import docker

from tests.support import services as svc
from tests.support.dockertar import busybox_layer, layer_tar, load_image
from tests.support.images import Pusher

STATE = Path(os.environ.get("REGCOLLECT_DEMO_DIR", "/tmp/regcollect-demo"))
PORT_BASE = int(os.environ.get("REGCOLLECT_DEMO_PORT_BASE", "15300"))
ROOT = Path(__file__).resolve().parents[1]


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def sh(*args: str, env: dict[str, str]) -> int:
    print("$ " + " ".join(shlex.quote(a) for a in args), flush=True)
    return subprocess.run(args, env=env, stdin=subprocess.DEVNULL).returncode


def ago(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days)


def seed_registry(host: str) -> None:
    p = Pusher(host)
    base = os.urandom(4096)
    for i in range(9):  # shop/api: a release every week; an old one is also "stable"
        img = p.image("shop/api", f"1.{i}.0", created=ago(63 - 7 * i), layers=[base, os.urandom(2048)])
        if i == 1:
            p.manifest("shop/api", "stable", img.data, img.media_type)
        if i % 3 == 0:
            p.cosign_signature("shop/api", img)
    for i in range(7):  # shop/web: multi-arch indexes whose children are untagged
        kids = [
            p.image("shop/web", None, created=ago(70 - 10 * i), arch=a, layers=[os.urandom(3000)])
            for a in ("amd64", "arm64")
        ]
        p.index("shop/web", f"2.{i}", kids, oci=True)
    for i in range(6):
        p.image("ci/build-cache", f"pr-{100 + i}", created=ago(6 - i))
    p.image("team/legacy", "2019", created=ago(400), labels={"keep": "forever"})
    p.image("team/legacy", "2020", created=ago(300))
    p.image("sandbox/play", "latest", created=ago(500))
    p.close()


def seed_engine(client: docker.DockerClient) -> None:
    base = layer_tar(os.urandom(300_000))
    for i in range(6):
        load_image(
            client,
            f"demo/app:v{i}",
            created=ago(30 - 5 * i),
            layers=[base, layer_tar(os.urandom(100_000 + 20_000 * i))],
        )
    for _ in range(3):
        load_image(client, None, created=ago(12), layers=[layer_tar(os.urandom(150_000))])
    run = load_image(
        client, "demo/runner:1", created=ago(40), layers=[busybox_layer()], cmd=["/bin/sleep", "3600"]
    )
    client.containers.run(run.tags[0], detach=True, network_mode="none", name="demo-runner")


def main() -> int:
    keep = "--keep" in sys.argv
    say("Starting throwaway services on loopback (a Docker Engine and registries)")
    info = svc.start(STATE, PORT_BASE)
    host = info["registries"]["open"]["host"]
    env = dict(
        os.environ,
        DOCKER_HOST=info["docker_host"],
        XDG_STATE_HOME=str(STATE / "xdg-state"),
        XDG_CACHE_HOME=str(STATE / "xdg-cache"),
    )
    rc = [sys.executable, "-m", "regcollect"]
    client = docker.DockerClient(base_url=info["docker_host"])
    try:
        say("Seeding the registry and the engine with a realistic mix")
        seed_registry(host)
        seed_engine(client)
        say("Remote: the plan for examples/policy.toml (dry run: nothing changes)")
        sh(*rc, "remote", host, "--policy", str(ROOT / "examples/policy.toml"), "--dry-run", env=env)
        say("Remote: apply it")
        journal = STATE / "demo-journal.jsonl"
        journal.unlink(missing_ok=True)
        sh(
            *rc,
            "remote",
            host,
            "--policy",
            str(ROOT / "examples/policy.toml"),
            "--yes",
            "--journal",
            str(journal),
            env=env,
        )
        say("Remote: what shop/api looks like now")
        print(Pusher(host).tags("shop/api"))
        say("Remote: undo (restore from the journal; works until the registry's GC runs)")
        sh(*rc, "restore", str(journal), "--dry-run", env=env)
        say("Local: docker's view before")
        sh("docker", "system", "df", env=env)
        say("Local: keep the 2 newest demo/app images and clean dangling ones (plans)")
        sh(*rc, "local", "--repo", "demo/*", "--keep-last", "2", "--dry-run", env=env)
        sh(*rc, "local", "--dangling", "--dry-run", env=env)
        say("Local: apply both")
        sh(*rc, "local", "--repo", "demo/*", "--keep-last", "2", "--yes", env=env)
        sh(*rc, "local", "--dangling", "--yes", env=env)
        say("Local: docker's view after (the running container's image is untouched)")
        sh("docker", "system", "df", env=env)
    finally:
        client.close()
        if not keep:
            say("Stopping the throwaway services")
            svc.stop(STATE)
            import shutil

            shutil.rmtree(STATE, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
