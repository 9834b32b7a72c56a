"""python -m tests.support.ghcr serve [--seed demo]: run the emulator until interrupted."""

from __future__ import annotations

import argparse
import sys
import threading

from tests.support.ghcr import ACTIONS_TOKEN, PAT, READ_ONLY_PAT, GhcrEmulator, seed_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.ghcr")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve both sides on loopback until interrupted")
    serve.add_argument("--seed", choices=["none", "demo"], default="none")
    args = parser.parse_args(argv)
    assert args.command == "serve"
    with GhcrEmulator() as emu:
        if args.seed == "demo":
            seeded = seed_demo(emu)
            counts = {r: len(emu.package(r).active()) for r in seeded.repos}
            print(f"seeded: {counts}", file=sys.stderr)
            print(f"tokens: PAT {PAT} | read-only {READ_ONLY_PAT} | actions {ACTIONS_TOKEN}", file=sys.stderr)
        print(f"api_url={emu.api_url}")
        print(f"registry_url={emu.registry_url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
