"""The benchmark behind scripts/bench. See docs/performance.md for what it measures and why.

Remote: seeds R repositories x T tags once into a golden storage directory, then gives every
contender its own copy and its own registry process, and prints wall time and the registry's CPU
seconds (from /proc/PID/stat) for: the raw client at its best concurrency, regcollect cold (empty
cache) and warm (the cache of a cold run). Each contender must leave exactly the newest KEEP tags.
With --rtt MS..., the remote contenders run instead through scripts/latencyproxy.py, which adds
that round trip to each request and counts requests by method x kind, once per RTT: the raw
client at each --raw-concurrency, regcollect cold and warm at its default settings.
Also: plan a synthetic 1,000,000-artifact inventory (time, peak RSS), and local deletion of N
images by regcollect and by `docker rmi`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support import services as svc

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("REGCOLLECT_BENCH_DIR", "/tmp/regcollect-bench"))
PORT = int(os.environ.get("REGCOLLECT_BENCH_PORT", "15400"))
PROXY_PORT = PORT + 3  # fixed: regcollect's cache keys tag hints by host, so warm-up and run share it
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


class Registry:
    def __init__(self, storage: Path, port: int):
        self.root = storage.parent
        self.port = port
        conf = self.root / "config.yml"
        conf.write_text(svc.registry_config(self.root, port, delete=True, auth=None))
        if storage != self.root / "data":
            raise ValueError("storage must be ROOT/data")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        svc._wait_http(f"http://127.0.0.1:{port}/v2/", self.root / "log")
        self.cpu0 = cpu_seconds(self.proc.pid)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) - self.cpu0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


async def seed(host: str, repos: int, tags: int) -> None:
    """Docker media types; each image its own config (its own `created`); one layer per repo."""
    from tests.support.images import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, digest_of

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=60) as http:

        async def blob(repo: str, data: bytes) -> str:
            d = digest_of(data)
            async with sem:
                r = await http.post(f"/v2/{repo}/blobs/uploads/")
                loc = r.headers["Location"]
                r = await http.put(f"{loc}{'&' if '?' in loc else '?'}digest={d}", content=data)
                r.raise_for_status()
            return d

        async def image(repo: str, i: int, layer: str, layer_size: int) -> None:
            created = (now - dt.timedelta(hours=(i * 7919) % tags)).strftime("%Y-%m-%dT%H:%M:%SZ")
            cfg = json.dumps(
                {
                    "created": created,
                    "architecture": "amd64",
                    "os": "linux",
                    "config": {"Labels": {"n": str(i)}},
                    "rootfs": {"type": "layers", "diff_ids": [layer]},
                }
            ).encode()
            cd = await blob(repo, cfg)
            man = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": DOCKER_MANIFEST,
                    "config": {"mediaType": DOCKER_CONFIG, "digest": cd, "size": len(cfg)},
                    "layers": [{"mediaType": DOCKER_LAYER, "digest": layer, "size": layer_size}],
                }
            ).encode()
            async with sem:
                r = await http.put(
                    f"/v2/{repo}/manifests/t{i:04d}", content=man, headers={"Content-Type": DOCKER_MANIFEST}
                )
                r.raise_for_status()

        for r in range(repos):
            repo = f"bench/r{r:03d}"
            layer_data = os.urandom(1024)
            layer = await blob(repo, layer_data)
            await asyncio.gather(*(image(repo, i, layer, len(layer_data)) for i in range(tags)))


def expected(repos: int, tags: int, keep: int) -> dict[str, list[str]]:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    out = {}
    for r in range(repos):
        ranked = sorted(
            ((now - dt.timedelta(hours=(i * 7919) % tags), f"t{i:04d}") for i in range(tags)), reverse=True
        )
        out[f"bench/r{r:03d}"] = sorted(t for _, t in ranked[:keep])
    return out


def remaining(host: str, repos: int) -> dict[str, list[str]]:
    with httpx.Client(base_url=f"http://{host}") as http:
        return {
            f"bench/r{r:03d}": sorted(http.get(f"/v2/bench/r{r:03d}/tags/list").json().get("tags") or [])
            for r in range(repos)
        }


def summarize(runs: list[dict]) -> dict:
    """The median run, with every run's wall time kept for the record."""
    runs = sorted(runs, key=lambda r: r["wall"])
    mid = dict(runs[len(runs) // 2])
    mid["correct"] = all(r["correct"] for r in runs)
    mid["walls"] = [round(r["wall"], 2) for r in runs]
    mid["counts_vary"] = len({json.dumps(r.get("requests"), sort_keys=True) for r in runs}) > 1
    return mid


@contextlib.contextmanager
def fresh_registry(name: str, golden: Path, port: int) -> Iterator[Registry]:
    """A registry of its own on a fresh copy of the golden storage, removed afterwards."""
    root = WORK / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copytree(golden, root / "data")
    os.sync()  # the copy's writeback must not land on the registry's CPU time
    reg = Registry(root / "data", port)
    try:
        yield reg
    finally:
        reg.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def latency_proxy(upstream: str, rtt: float, jitter: float) -> Iterator[str]:
    """scripts/latencyproxy.py in front of UPSTREAM, in a process of its own; yields its host."""
    cmd = [sys.executable, str(ROOT / "scripts/latencyproxy.py"), upstream, "--port", str(PROXY_PORT)]
    cmd += ["--rtt", str(rtt), "--jitter", str(jitter), "--seed", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if not proc.stdout.readline().startswith("latencyproxy"):
            raise RuntimeError(f"latencyproxy did not start: {cmd}")
        yield f"127.0.0.1:{PROXY_PORT}"
    finally:
        proc.terminate()
        proc.wait()


def proxy_counts(host: str) -> dict:
    return httpx.get(f"http://{host}/_latencyproxy/counts", timeout=10).json()


def _one(
    name: str,
    golden: Path,
    cmd_for: object,
    args: argparse.Namespace,
    env: dict[str, str],
    rtt: tuple[float, float] | None = None,
) -> dict:
    """One contender on a fresh registry; with RTT (ms, jitter ms), through a fresh latency proxy."""
    with fresh_registry(name, golden, PORT + 1) as reg, contextlib.ExitStack() as stack:
        host = reg.host
        if rtt is not None:
            host = stack.enter_context(latency_proxy(reg.host, *rtt))
            before = proxy_counts(host)
        cmd = cmd_for(host)  # type: ignore[operator]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        wall = time.monotonic() - t0
        cpu = reg.cpu()
        out: dict[str, Any] = {"name": name, "wall": wall, "registry_cpu": cpu}
        if rtt is not None:
            counts = proxy_counts(host)
            out["requests"] = counts["requests"]
            out["total_requests"] = counts["total"]
            out["statuses"] = counts["statuses"]
            out["proxy_errors"] = counts["errors"]
            out["proxy_ms_per_request"] = (counts["cpu_s"] - before["cpu_s"]) / max(counts["total"], 1) * 1000
        ok = proc.returncode == 0 and remaining(reg.host, args.repos) == expected(
            args.repos, args.tags, args.keep
        )
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    return out | {"correct": ok}


def golden_storage(args: argparse.Namespace) -> Path:
    """Seeded once per R x T, then copied for every run."""
    golden_root = WORK / "golden"
    if not (golden_root / f"seeded-{args.repos}x{args.tags}").exists():
        shutil.rmtree(golden_root, ignore_errors=True)
        golden_root.mkdir(parents=True)
        reg = Registry(golden_root / "data", PORT)
        try:
            t0 = time.monotonic()
            asyncio.run(seed(reg.host, args.repos, args.tags))
            print(f"seeded {args.repos}x{args.tags} in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        finally:
            reg.stop()
        (golden_root / f"seeded-{args.repos}x{args.tags}").touch()
    return golden_root / "data"


def regcollect_cmd(keep: int, *flags: str):  # type: ignore[no-untyped-def]
    """regcollect as a user runs it: the bench's retention, FLAGS, nothing else."""
    py = sys.executable
    retention = ["--repo", "bench/*", "--keep-last", str(keep), "--yes", "-q"]
    return lambda h: [py, "-m", "regcollect", "remote", h, *retention, *flags]


def raw_cmd(keep: int, concurrency: int, transport: str, *flags: str):  # type: ignore[no-untyped-def]
    script = str(ROOT / "scripts/rawclient.py")
    return lambda h: [sys.executable, script, h, str(keep), str(concurrency), transport, *flags]


CACHE = WORK / "cache"
RAW_ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def regcollect_env() -> dict[str, str]:
    return dict(os.environ, XDG_CACHE_HOME=str(CACHE), XDG_STATE_HOME=str(WORK / "state"))


def clear_cache() -> None:
    shutil.rmtree(CACHE, ignore_errors=True)


def bench_remote(args: argparse.Namespace) -> list[dict]:
    golden = golden_storage(args)
    env = regcollect_env()

    def rc_for(verify: str):  # type: ignore[no-untyped-def]
        return regcollect_cmd(args.keep, "--concurrency", str(args.concurrency), "--verify", verify)

    def warm_cache() -> None:  # a cold run on its own copy fills the cache
        clear_cache()
        _one("warmup", golden, rc_for("item"), args, env)

    raw_cache = WORK / "raw-cache.json"

    def raw_for(concurrency: int, transport: str, *flags: str):  # type: ignore[no-untyped-def]
        return raw_cmd(args.keep, concurrency, transport, *flags)

    contenders: list[tuple[str, Any, dict[str, str], Any]] = [
        (f"raw-{transport}-c{c}", raw_for(c, transport), RAW_ENV, None)
        for transport in args.raw_transport or ["lean", "httpx"]
        for c in args.raw_concurrency or [4, 8, 16]
    ]
    if args.floors:  # the raw client obeying one more of regcollect's rules each (rawclient.py)
        raw_cache.unlink(missing_ok=True)
        _one(
            "raw-warmup",
            golden,
            raw_for(args.floor_concurrency, "lean", "--cache", str(raw_cache)),
            args,
            RAW_ENV,
        )
        for name, flags in [
            ("floor-phased", ["--phased"]),
            ("floor-phased-verify", ["--phased", "--verify"]),
            ("floor-warm", ["--cache", str(raw_cache)]),
            ("floor-warm-phased", ["--phased", "--cache", str(raw_cache)]),
            ("floor-warm-phased-verify", ["--phased", "--verify", "--cache", str(raw_cache)]),
        ]:
            contenders.append((name, raw_for(args.floor_concurrency, "lean", *flags), RAW_ENV, None))
    for verify in args.verify:
        contenders.append((f"regcollect-cold-{verify}", rc_for(verify), env, clear_cache))
        contenders.append((f"regcollect-warm-{verify}", rc_for(verify), env, warm_cache))
    runs: dict[str, list[dict]] = {name: [] for name, *_ in contenders}
    for _ in range(args.repeat):  # round-robin, so drift over the session hits every contender alike
        for name, cmd_for, cenv, before in contenders:
            if before:
                before()
            runs[name].append(_one(name, golden, cmd_for, args, cenv))
    results = [summarize(runs[name]) for name, *_ in contenders]
    raws = [r for r in results if r["name"].startswith("raw-") and r["correct"]]
    best = min(raws, key=lambda r: r["wall"]) if raws else None
    for r in results:
        r["ratio"] = r["wall"] / best["wall"] if best else None
        r["cpu_ratio"] = r["registry_cpu"] / best["registry_cpu"] if best else None
    return results


REGISTRY_CLI = (
    "registry-cli: not run, it cannot be installed offline here (PyPI has no registry-cli; "
    "registry-cli-apatsev 0.1.2, a packaging of it, ships no code)"
)


def bench_rtt(args: argparse.Namespace, rtt: float) -> list[dict]:
    """Every contender through a fresh latency proxy adding RTT (+ uniform 0..jitter) ms per request:
    the raw client at each concurrency, regcollect cold and warm at its default settings."""
    golden = golden_storage(args)
    env = regcollect_env()
    delay = (rtt, args.jitter)
    regcollect = regcollect_cmd(args.keep)

    def warm_cache() -> None:  # a cold run through a proxy at the same address, with no delay
        clear_cache()
        _one("warmup", golden, regcollect, args, env, rtt=(0.0, 0.0))

    transports = args.raw_transport or ["lean"]
    contenders: list[tuple[str, Any, dict[str, str], Any]] = [
        (f"raw-{t}-c{c}", raw_cmd(args.keep, c, t), RAW_ENV, None)
        for t in transports
        for c in args.raw_concurrency or [8, 16, 32, 64]
    ]
    contenders.append(("regcollect-cold", regcollect, env, clear_cache))
    contenders.append(("regcollect-warm", regcollect, env, warm_cache))
    runs: dict[str, list[dict]] = {name: [] for name, *_ in contenders}
    for _ in range(args.repeat):  # round-robin, so drift over the session hits every contender alike
        for name, cmd_for, cenv, before in contenders:
            if before:
                before()
            runs[name].append(_one(name, golden, cmd_for, args, cenv, rtt=delay))
    results = [summarize(runs[name]) for name, *_ in contenders]
    raws = [r for r in results if r["name"].startswith("raw-") and r["correct"]]
    best = min(raws, key=lambda r: r["wall"]) if raws else None
    c8 = next((r for r in raws if r["name"].endswith("-c8")), None)
    for r in results:
        r["best_raw"] = best["name"] if best else None
        r["ratio"] = r["wall"] / best["wall"] if best else None
        r["ratio_c8"] = r["wall"] / c8["wall"] if c8 else None
    return results


KIND_ORDER = ["catalog", "tags", "manifest", "blob", "upload", "referrers", "other"]
METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def by_kind(requests: dict[str, int]) -> str:
    """'GET manifest 2000, HEAD manifest 100, ...' in a fixed order of kinds, then methods."""

    def order(item: tuple[str, int]) -> tuple[int, int, str]:
        method, kind = item[0].split(" ", 1)
        m = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
        return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), m, method)

    return ", ".join(f"{k} {n}" for k, n in sorted(requests.items(), key=order))


def print_rtt(args: argparse.Namespace, rtt: float, results: list[dict]) -> None:
    jitter = f" + uniform 0..{args.jitter:g} ms" if args.jitter else ""
    how = (
        "through latencyproxy with no delay, only to count (without --rtt: no proxy at all)"
        if rtt == 0 and not args.jitter
        else f"through latencyproxy, {rtt:g} ms{jitter} before each request"
    )
    print(f"\nrtt {rtt:g} ms: {args.repos} repositories x {args.tags} tags, keep {args.keep}; {how}")
    print(
        f"{'contender':<18} {'requests':>8} {'wall s':>7} {'x raw c8':>8} {'x best raw':>10} "
        f"{'registry cpu s':>14} {'proxy ms/req':>12}  correct  runs; requests by kind"
    )
    for r in results:
        vary = " (counts varied between runs)" if r["counts_vary"] else ""
        vary += f" (proxy: {r['proxy_errors']} upstream failures)" if r["proxy_errors"] else ""
        print(
            f"{r['name']:<18} {r['total_requests']:>8} {r['wall']:>7.2f} {r['ratio_c8'] or 0:>8.2f} "
            f"{r['ratio'] or 0:>10.2f} {r['registry_cpu']:>14.2f} {r['proxy_ms_per_request']:>12.3f}  "
            f"{str(r['correct']):<7}  {r['walls']}; {by_kind(r['requests'])}{vary}"
        )
    if results and results[0]["best_raw"]:
        print(f"best raw: {results[0]['best_raw']}")


def bench_plan(n: int) -> dict:
    code = f"""
import datetime as dt, resource, time
from regcollect.model import Artifact, Blob, Inventory
from regcollect.planner import evaluate
from regcollect.policy import policy_from_flags
now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
t0 = time.monotonic()
arts = []
for i in range({n}):
    repo = f"team{{i % 10000:05d}}/app"
    arts.append(Artifact(repository=repo, digest=f"sha256:{{i:064x}}", tags=(f"t{{i}}",),
                         created=now - dt.timedelta(minutes=i), blobs=(Blob(f"sha256:{{i:064x}}", 1000),)))
inv = Inventory("remote", "synthetic", arts)
built = time.monotonic() - t0
t1 = time.monotonic()
plan = evaluate(inv, policy_from_flags(repos=(), keep_last=5, keep_tags=(), older_than="30d",
                untagged=False, keep_labels=()), now)
planned = time.monotonic() - t1
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(built, planned, rss, len(plan.decisions))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return {
        "artifacts": int(out[3]),
        "build_s": float(out[0]),
        "plan_s": float(out[1]),
        "peak_rss_mb": float(out[2]),
    }


def bench_local(n: int, repeat: int, shared_engine: bool) -> dict:
    """docker rmi of N ids against regcollect local of the same number of ids, round robin.
    regcollect runs twice per round: with an empty cache, and with the cache its previous run on
    this engine left (the other images' layer lists; the N new images are new to it either way).
    By default on an engine of its own, started for the benchmark and stopped after it, so the
    figures do not depend on what the test suite left in the shared one."""
    if shared_engine:
        info = svc.start(svc.DEFAULT_STATE, svc.DEFAULT_PORT_BASE)
    else:
        info = svc.start(WORK / "services", PORT + 10)
    try:
        return _bench_local(info, n, repeat)
    finally:
        if not shared_engine:
            svc.stop(WORK / "services")


def _bench_local(info: dict, n: int, repeat: int) -> dict:
    import docker

    from tests.support.dockertar import layer_tar, load_image

    client = docker.DockerClient(base_url=info["docker_host"])
    cache = WORK / "local-cache"
    env = dict(
        os.environ,
        DOCKER_HOST=info["docker_host"],
        XDG_STATE_HOME=str(WORK / "state"),
        XDG_CACHE_HOME=str(cache),
    )
    now = dt.datetime.now(dt.UTC)
    walls: dict[str, list[float]] = {
        "docker-rmi": [],
        "regcollect-cold-cache": [],
        "regcollect-warm-cache": [],
    }
    correct = True
    for _ in range(repeat):
        for who in walls:
            if who == "regcollect-cold-cache":
                shutil.rmtree(cache, ignore_errors=True)
            ids = [
                load_image(
                    client, f"benchlocal/{who}:i{i}", created=now, layers=[layer_tar(os.urandom(64))]
                ).id
                for i in range(n)
            ]
            if who == "docker-rmi":
                cmd = ["docker", "rmi", *ids]
            else:
                cmd = [sys.executable, "-m", "regcollect", "local", *ids, "--yes", "-q"]
            t0 = time.monotonic()
            proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            walls[who].append(time.monotonic() - t0)
            left = client.api.images(quiet=True, filters={"reference": f"benchlocal/{who}"})
            if proc.returncode != 0 or left:
                print(proc.stdout[-1000:], proc.stderr[-1000:], file=sys.stderr)
                correct = False
    out: dict = {"images_in_engine": len(client.api.images(quiet=True)), "correct": correct}
    client.close()
    for who, runs in walls.items():
        out[who] = sorted(runs)[len(runs) // 2]
        out[who + "_runs"] = [round(w, 2) for w in runs]
    for who in ("regcollect-cold-cache", "regcollect-warm-cache"):
        out[who + "_ratio"] = out[who] / out["docker-rmi"]
    return out


def bench_floor(args: argparse.Namespace) -> dict:
    """What the registry itself allows, and what our HTTP path costs: on a fresh copy of the golden
    storage, HEAD every tag, then DELETE every doomed digest, each at the given concurrency, with
    regcollect's RegistryClient over the lean transport and over httpx's default transport."""
    from regcollect.registry.client import RegistryClient
    from regcollect.registry.transport import LeanTransport

    keep = expected(args.repos, args.tags, args.keep)
    out: dict = {}

    async def run(transport: str, c: int) -> dict:
        lean = LeanTransport(max_idle=c) if transport == "lean" else httpx.AsyncHTTPTransport()
        async with RegistryClient(reg.host, concurrency=c, transport=lean) as client:
            tags = [(f"bench/r{r:03d}", f"t{i:04d}") for r in range(args.repos) for i in range(args.tags)]
            c0, w0, p0 = reg.cpu(), time.monotonic(), time.process_time()
            digests = await asyncio.gather(*(client.head_manifest(repo, t) for repo, t in tags))
            head = {"wall": time.monotonic() - w0, "registry_cpu": reg.cpu() - c0}
            head["client_cpu_ms_per_request"] = (time.process_time() - p0) / len(tags) * 1000
            doomed = sorted(
                {(repo, d) for (repo, t), d in zip(tags, digests, strict=True) if d and t not in keep[repo]}
            )
            c0, w0, p0 = reg.cpu(), time.monotonic(), time.process_time()
            await asyncio.gather(*(client.delete_manifest(repo, d) for repo, d in doomed))
            delete = {"wall": time.monotonic() - w0, "registry_cpu": reg.cpu() - c0, "requests": len(doomed)}
            delete["client_cpu_ms_per_request"] = (time.process_time() - p0) / len(doomed) * 1000
            return {"head": head, "delete": delete}

    for transport in ("lean", "httpx"):
        for c in args.raw_concurrency or [4, 8, 16]:
            with fresh_registry("floor", golden_storage(args), PORT + 2) as reg:
                out[f"{transport}-c{c}"] = asyncio.run(run(transport, c))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=20)
    ap.add_argument("--tags", type=int, default=100)
    ap.add_argument("--keep", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=8, help="regcollect --concurrency")
    ap.add_argument(
        "--raw-concurrency",
        type=int,
        nargs="+",
        help="default 4 8 16; with --rtt: 8 16 32 64 (best reported)",
    )
    ap.add_argument(
        "--raw-transport", nargs="+", choices=["lean", "httpx"], help="default lean httpx; with --rtt: lean"
    )
    ap.add_argument(
        "--rtt",
        type=float,
        nargs="+",
        metavar="MS",
        help="remote: run each contender through a latency proxy adding MS per request, for each MS "
        "(0: the proxy only counts); regcollect at its default settings",
    )
    ap.add_argument("--jitter", type=float, default=0.0, metavar="MS", help="with --rtt: plus uniform 0..MS")
    ap.add_argument("--floor-concurrency", type=int, default=8, help="concurrency of the floor-* contenders")
    ap.add_argument(
        "--no-floors", dest="floors", action="store_false", help="leave out the floor-* contenders"
    )
    ap.add_argument("--verify", nargs="+", default=["item", "repository"], choices=["item", "repository"])
    ap.add_argument("--repeat", type=int, default=3, help="runs per contender; the median is reported")
    ap.add_argument("--plan-artifacts", type=int, default=1_000_000)
    ap.add_argument("--local-images", type=int, default=200)
    ap.add_argument(
        "--only",
        choices=["remote", "floor", "plan", "local"],
        nargs="+",
        default=["remote", "floor", "plan", "local"],
    )
    ap.add_argument(
        "--shared-engine",
        action="store_true",
        help="local: use the test services' engine (and the images the tests left in it)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    svc.ensure_packages()
    WORK.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "machine": f"{os.cpu_count()} cores, {os.uname().machine}",
        "args": vars(args) | {"json": None},
    }
    if "remote" in args.only and args.rtt is not None:
        report["rtt"] = {}
        for rtt in args.rtt:
            report["rtt"][str(rtt)] = bench_rtt(args, rtt)
            print_rtt(args, rtt, report["rtt"][str(rtt)])
        print(REGISTRY_CLI)
        report["registry_cli"] = REGISTRY_CLI
    elif "remote" in args.only:
        report["remote"] = bench_remote(args)
        print(f"\nremote: {args.repos} repositories x {args.tags} tags, keep {args.keep}")
        print(
            f"{'contender':<28} {'wall s':>7} {'x raw':>6} {'registry cpu s':>15} {'x raw':>6}  correct  runs"
        )
        for r in report["remote"]:
            print(
                f"{r['name']:<28} {r['wall']:>7.2f} {r['ratio'] or 0:>6.2f} {r['registry_cpu']:>15.2f} "
                f"{r['cpu_ratio'] or 0:>6.2f}  {str(r['correct']):<7}  {r['walls']}"
            )
    if "floor" in args.only:
        report["floor"] = bench_floor(args)
        print(f"\nfloor: HEAD {args.repos * args.tags} tags, then DELETE the doomed digests, RegistryClient")
        print(
            f"{'transport':<12} {'HEAD wall':>9} {'reg cpu':>8} {'client ms/req':>13}   "
            f"{'DELETE wall':>11} {'reg cpu':>8} {'client ms/req':>13}"
        )
        for name, f in report["floor"].items():
            h, d = f["head"], f["delete"]
            print(
                f"{name:<12} {h['wall']:>9.2f} {h['registry_cpu']:>8.2f} {h['client_cpu_ms_per_request']:>13.2f}"
                f"   {d['wall']:>11.2f} {d['registry_cpu']:>8.2f} {d['client_cpu_ms_per_request']:>13.2f}"
            )
    if "plan" in args.only:
        report["plan"] = bench_plan(args.plan_artifacts)
        p = report["plan"]
        print(
            f"\nplan: {p['artifacts']} artifacts in 10,000 repositories: planned in {p['plan_s']:.1f}s "
            f"(inventory built in {p['build_s']:.1f}s), peak RSS {p['peak_rss_mb']:.0f} MB"
        )
    if "local" in args.only:
        report["local"] = bench_local(args.local_images, args.repeat, args.shared_engine)
        loc = report["local"]
        print(
            f"\nlocal: delete {args.local_images} images (engine holds {loc['images_in_engine']} others), "
            f"medians: docker rmi {loc['docker-rmi']:.2f}s {loc['docker-rmi_runs']}, regcollect "
            f"cold cache {loc['regcollect-cold-cache']:.2f}s ({loc['regcollect-cold-cache_ratio']:.2f}x) "
            f"{loc['regcollect-cold-cache_runs']}, warm cache {loc['regcollect-warm-cache']:.2f}s "
            f"({loc['regcollect-warm-cache_ratio']:.2f}x) {loc['regcollect-warm-cache_runs']}; "
            f"correct: {loc['correct']}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
