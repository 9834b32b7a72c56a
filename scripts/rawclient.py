"""The benchmark's reference: only the requests any correct keep-last-by-date tool must make.

catalog, tag list per repository, manifest and config per tag, DELETE per doomed digest; async
httpx at a given concurrency. No retries, no safety: the practical limit.
TRANSPORT is httpx (httpx's AsyncClient and transport) or lean (LeanSender over LeanTransport
in scripts/, the HTTP path regcollect had before issue 19), so that the reference is never slower than regcollect only
because of its HTTP stack.

Options make the same minimal client obey one more of regcollect's rules each, so the benchmark
can show what a rule costs by itself (the floor for a tool that keeps it):
  --phased        discover every repository first, then delete (plan-then-apply); by default a
                  repository's DELETEs run as soon as it is discovered, under the discovery of others
  --verify        HEAD each doomed tag just before its DELETE (issue 4's re-verification)
  --cache FILE    a perfect digest -> created cache: HEAD each tag, fetch only unseen digests
Usage: python scripts/rawclient.py HOST KEEP CONCURRENCY [httpx|lean] [--phased] [--verify] [--cache F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script by the bench
from regcollect.registry.transport import LeanTransport  # noqa: E402
from scripts.lean_sender import LeanSender  # noqa: E402

ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


async def main(args: argparse.Namespace) -> None:
    sem = asyncio.Semaphore(args.concurrency)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    cache: dict[str, str] = {}
    if args.cache and args.cache.exists():
        cache = json.loads(args.cache.read_text())
    base = f"http://{args.host}"
    http: LeanSender | httpx.AsyncClient
    if args.transport == "lean":
        http = LeanSender(base, LeanTransport(max_idle=args.concurrency), timeout=60)
    else:
        http = httpx.AsyncClient(base_url=base, limits=limits, timeout=60)
    try:

        async def send(method: str, url: str, **kw: object) -> httpx.Response:
            async with sem:
                r = await http.request(method, url, **kw)  # type: ignore[arg-type]
                r.raise_for_status()
                return r

        repos = (await send("GET", "/v2/_catalog?n=1000")).json()["repositories"]

        async def image(repo: str, tag: str) -> tuple[str, str, str]:
            if args.cache:
                h = await send("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
                digest = h.headers["Docker-Content-Digest"]
                if digest in cache:
                    return cache[digest], tag, digest
            m = await send("GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
            digest = m.headers["Docker-Content-Digest"]
            cfg = json.loads(m.content)["config"]["digest"]
            cache[digest] = json.loads((await send("GET", f"/v2/{repo}/blobs/{cfg}")).content)["created"]
            return cache[digest], tag, digest

        async def discover(repo: str) -> list[tuple[str, str]]:
            tags = (await send("GET", f"/v2/{repo}/tags/list")).json()["tags"]
            found = sorted(await asyncio.gather(*(image(repo, t) for t in tags)), reverse=True)
            kept = {d for _, _, d in found[: args.keep]}
            doomed = {d: t for _, t, d in found[args.keep :] if d not in kept}
            return [(t, d) for d, t in doomed.items()]

        async def delete(repo: str, tag: str, digest: str) -> None:
            if args.verify:
                h = await send("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
                if h.headers["Docker-Content-Digest"] != digest:
                    return
            await send("DELETE", f"/v2/{repo}/manifests/{digest}")

        async def apply(repo: str, doomed: list[tuple[str, str]]) -> None:
            await asyncio.gather(*(delete(repo, t, d) for t, d in doomed))

        if args.phased:
            plans = await asyncio.gather(*(discover(r) for r in repos))
            await asyncio.gather(*(apply(r, p) for r, p in zip(repos, plans, strict=True)))
        else:

            async def repo_job(repo: str) -> None:
                await apply(repo, await discover(repo))

            await asyncio.gather(*(repo_job(r) for r in repos))
    finally:
        await http.aclose()
    if args.cache:
        args.cache.write_text(json.dumps(cache))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host")
    ap.add_argument("keep", type=int)
    ap.add_argument("concurrency", type=int)
    ap.add_argument("transport", nargs="?", default="httpx", choices=["httpx", "lean"])
    ap.add_argument("--phased", action="store_true")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--cache", type=Path)
    asyncio.run(main(ap.parse_args()))
