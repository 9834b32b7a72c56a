"""The demo behind scripts/demo: throwaway services, seeded images, plans, apply, undo."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import docker
import httpx

from tests.support import services as svc
from tests.support.dockertar import busybox_layer, layer_tar, load_image
from tests.support.ghcr.demo import PAT, seed_demo
from tests.support.ghcr.server import GhcrEmulator
from tests.support.images import Pusher

STATE = Path(os.environ.get("REGCOLLECT_DEMO_DIR", "/tmp/regcollect-demo"))
PORT_BASE = int(os.environ.get("REGCOLLECT_DEMO_PORT_BASE", "15300"))
ROOT = Path(__file__).resolve().parents[1]


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def sh(*args: str, env: dict[str, str]) -> int:
    print("$ " + shlex.join(args), flush=True)
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


def pull_whole(v2: httpx.Client, repo: str, ref: str) -> str:
    """Pull an image as a client would (every manifest, HEAD every blob): what is missing, if any."""
    missing, manifests, blobs, platforms = [], 0, 0, []
    stack = [ref]
    while stack:
        r = v2.get(f"/v2/{repo}/manifests/{stack.pop()}", headers={"Accept": "*/*"})
        if r.status_code != 200:
            missing.append(f"manifest {r.request.url.path.rsplit('/', 1)[-1][:19]}: {r.status_code}")
            continue
        manifests += 1
        doc = r.json()
        for m in doc.get("manifests") or []:
            p = m.get("platform") or {}
            platforms.append(f"{p.get('os')}/{p.get('architecture')}")
            stack.append(m["digest"])
        for b in [doc["config"], *(doc.get("layers") or [])] if "config" in doc else []:
            blobs += 1
            if v2.head(f"/v2/{repo}/blobs/{b['digest']}").status_code != 200:
                missing.append(f"blob {b['digest'][:19]}")
    what = f"{manifests} manifests ({', '.join(platforms) or 'one platform'}), {blobs} blobs"
    return f"{what}: " + ("MISSING " + "; ".join(missing) if missing else "all present")


def quiet_json(rc: list[str], args: list[str], env: dict[str, str]) -> dict:
    """Run regcollect with -o json, show the command, return the document."""
    print("$ " + shlex.join([*rc, *args, "-o", "json"]), flush=True)
    out = subprocess.run([*rc, *args, "-o", "json"], env=env, capture_output=True, text=True)
    if out.returncode:
        print(out.stderr)
    return json.loads(out.stdout)


def demo_ghcr(rc: list[str], env: dict[str, str]) -> None:
    say("ghcr.io: an offline emulator of GitHub's Packages API and ghcr.io/v2 (tests/support/ghcr)")
    with GhcrEmulator() as emu:
        seeded = seed_demo(emu)
        print(
            "acme/app: 3 releases (v1.2.0 also v1.2 and latest) and 14 nightlies, each a buildx index "
            "of amd64 + arm64 + attestations; cosign signatures, an OCI 1.1 referrer, an untagged "
            f"orphan, a nested index: {len(emu.package('acme/app').active())} package versions"
        )
        genv = dict(env, GITHUB_TOKEN=PAT)  # the token comes from $GITHUB_TOKEN, as in a workflow
        args = [
            "remote",
            emu.registry_host,
            "--api",
            "github",
            "--api-url",
            emu.api_url,
            "--repo",
            "acme/app",
            "--keep-last",
            "2",
            "--keep-tag",
            "v*",
            "--keep-tag",
            "latest",
            "--untagged",
        ]
        say("ghcr.io: the plan for acme/app (dry run: nothing changes)")
        sh(*rc, *args, "--dry-run", env=genv)
        say("ghcr.io: apply it (deletes by version id through the REST API, parents before children)")
        doc = quiet_json(rc, [*args, "--yes", "--journal", str(STATE / "demo-ghcr-journal.jsonl")], genv)
        print(f"  outcome: {json.dumps(doc['outcome'])}")
        print("  " + "\n  ".join(doc["notes"]))
        say("ghcr.io: the kept multi-arch images still pull whole (every child, attestation and blob)")
        auth = {"Authorization": "Bearer " + base64.b64encode(PAT.encode()).decode()}
        with httpx.Client(base_url=emu.registry_url, headers=auth) as v2:
            for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
                print(f"  acme/app:{tag:<8} {pull_whole(v2, 'acme/app', tag)}")
            tags = v2.get("/v2/acme/app/tags/list", params={"n": 1000}).json()["tags"]
        sigs = sorted(t for t in tags if t.startswith("sha256-"))
        print(f"  signature tags kept: {len(sigs)} ({', '.join(t[-4:] for t in sigs)})")
        left = {v.digest for v in emu.package("acme/app").active()}
        print(f"  OCI 1.1 referrer of v1.2.0 kept: {seeded.refs['app:v1.2.0/referrer'] in left}")
        print(f"  untagged orphan deleted: {seeded.refs['app:orphan'] not in left}")
        print(
            f"  package versions left: {len(left)}; tags: {', '.join(t for t in tags if not t.startswith('sha256-'))}"
        )
        say("ghcr.io: a second dry run reads no manifest again (each GET counts as a download)")
        print("  stats: " + json.dumps(quiet_json(rc, [*args, "--dry-run"], genv)["stats"]))


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
        demo_ghcr(rc, env)
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
