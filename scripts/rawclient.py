"""The benchmark's reference: only the requests any correct keep-last-by-date tool must make.

catalog, tag list per repository, manifest and config per tag, DELETE per doomed digest; async
httpx at a given concurrency. No retries, no verification, no safety: the practical limit.
TRANSPORT is httpx (httpx's own, httpcore) or lean (regcollect's LeanTransport), so that the
reference is never slower than regcollect only because of its HTTP stack.
Usage: python scripts/rawclient.py HOST KEEP CONCURRENCY [httpx|lean]
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx

from regcollect.registry.transport import LeanTransport

ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


async def main(host: str, keep: int, concurrency: int, transport: str = "httpx") -> None:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    lean = LeanTransport(max_idle=concurrency) if transport == "lean" else None
    async with httpx.AsyncClient(
        base_url=f"http://{host}", limits=limits, timeout=60, transport=lean
    ) as http:

        async def get(url: str, **kw: object) -> httpx.Response:
            async with sem:
                r = await http.get(url, **kw)  # type: ignore[arg-type]
                r.raise_for_status()
                return r

        repos = (await get("/v2/_catalog?n=1000")).json()["repositories"]

        async def image(repo: str, tag: str) -> tuple[str, str, str]:
            m = await get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
            cfg = json.loads(m.content)["config"]["digest"]
            c = await get(f"/v2/{repo}/blobs/{cfg}")
            return json.loads(c.content)["created"], tag, m.headers["Docker-Content-Digest"]

        async def repo_job(repo: str) -> None:
            tags = (await get(f"/v2/{repo}/tags/list")).json()["tags"]
            found = sorted(await asyncio.gather(*(image(repo, t) for t in tags)), reverse=True)
            doomed = {d for _, _, d in found[keep:]} - {d for _, _, d in found[:keep]}

            async def delete(d: str) -> None:
                async with sem:
                    (await http.delete(f"/v2/{repo}/manifests/{d}")).raise_for_status()

            await asyncio.gather(*(delete(d) for d in doomed))

        await asyncio.gather(*(repo_job(r) for r in repos))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5]))
