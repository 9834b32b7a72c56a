"""A/B of two regcollect checkouts on the remote benchmark's data (not a test): each round runs
A cold, A warm, B cold, B warm, each on a fresh copy of the golden storage and its own registry,
optionally through the latency proxy; medians of wall, client CPU and registry CPU.

    .venv/bin/python -m scripts.bench_ab --a /tmp/old --b . --rtt 0 --rounds 3
    (git worktree add /tmp/old 2f5858e first; the golden storage comes from scripts/bench)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scripts import bench_run as b


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", type=Path, required=True, help="checkout A (its regcollect/ is imported)")
    ap.add_argument("--b", type=Path, required=True, help="checkout B")
    ap.add_argument("--rtt", type=float, default=0.0, help="ms before each request; 0: no proxy")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--a-flags", nargs="*", default=[], help="extra regcollect flags for A")
    ap.add_argument("--b-flags", nargs="*", default=[], help="extra regcollect flags for B")
    args = ap.parse_args()
    golden = b.WORK / "golden" / "data"
    if not golden.exists():
        print("no golden storage: run scripts/bench --only remote once first", file=sys.stderr)
        return 2
    variants = {"A": (args.a.resolve(), args.a_flags), "B": (args.b.resolve(), args.b_flags)}
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for rnd in range(args.rounds):
        for name, (root, flags) in variants.items():
            cache = b.WORK / f"ab-cache-{name}"
            for mode in ("cold", "warm"):
                if mode == "cold":
                    shutil.rmtree(cache, ignore_errors=True)
                env = dict(os.environ, PYTHONPATH=str(root), XDG_CACHE_HOME=str(cache))
                env["XDG_STATE_HOME"] = str(b.WORK / f"ab-state-{name}")
                with contextlib.ExitStack() as stack:
                    reg = stack.enter_context(b.fresh_registry("ab", golden, b.PORT + 1))
                    host = (
                        stack.enter_context(b.latency_proxy(reg.host, args.rtt, 0)) if args.rtt else reg.host
                    )
                    cmd = [sys.executable, "-m", "regcollect", "remote", host, "--repo", "bench/*"]
                    cmd += ["--keep-last", "5", "--yes", "-q", *flags]
                    t0, c0 = time.monotonic(), os.times()
                    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd="/")
                    wall, c1 = time.monotonic() - t0, os.times()
                    cpu = c1.children_user + c1.children_system - c0.children_user - c0.children_system
                    results.setdefault((name, mode), []).append((wall, cpu, reg.cpu()))
                    print(
                        f"round {rnd} {name} {mode}: wall {wall:.2f} s, client CPU {cpu:.2f} s, "
                        f"registry CPU {reg.cpu():.2f} s, exit {proc.returncode}",
                        flush=True,
                    )
    for (name, mode), rows in sorted(results.items()):
        med = [statistics.median(r[i] for r in rows) for i in range(3)]
        print(
            f"{name} {mode}: median wall {med[0]:.2f} s, client CPU {med[1]:.2f} s, registry CPU {med[2]:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
