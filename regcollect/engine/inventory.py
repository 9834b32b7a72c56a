"""Turn the engine's images into the shared Inventory (global ids: one id is one image).

Bytes: the engine reports per image only Size and SharedSize (/system/df), not per-layer sizes
(loaded images have no history). Layers used by exactly the same set of images are freed
together, so we solve for the size of each such run from the layer chains: an image's top has
cumulative size Size; the deepest shared layer of an image whose top is its own has cumulative
size SharedSize. Each run becomes one Blob, and the planner's "count once, nothing kept" rule
gives exact reclaimable bytes. (A branch point no image sits on or ends under is folded into the
run below it; docs/safety.md says so.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from regcollect.cache import FactCache
from regcollect.engine.client import EngineClient
from regcollect.errors import NotFound, ReferenceError_
from regcollect.model import Artifact, Blob, ContainerUse, Inventory
from regcollect.reference import parse
from regcollect.units import parse_time


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def solve_layer_runs(
    chains: dict[str, list[str]], sizes: dict[str, int], shared: dict[str, int]
) -> dict[str, tuple[Blob, ...]]:
    """Per image, the runs of layers it holds, each with its size (see the module docstring)."""
    refs: dict[str, int] = defaultdict(int)
    for chain in chains.values():
        for node in set(chain):
            refs[node] += 1
    known: dict[str, int] = {}
    for image, chain in chains.items():
        if not chain:
            continue
        known.setdefault(chain[-1], sizes.get(image, 0))
    for image, chain in chains.items():
        if chain and refs[chain[-1]] == 1:
            deepest_shared = next((n for n in reversed(chain) if refs[n] > 1), None)
            if deepest_shared is not None:
                known.setdefault(deepest_shared, shared.get(image, 0))
    out: dict[str, tuple[Blob, ...]] = {}
    for image, chain in chains.items():
        blobs, prev = [], 0
        for node in chain:
            if node in known:
                blobs.append(Blob(f"layers:{node}", max(known[node] - prev, 0)))
                prev = known[node]
        out[image] = tuple(blobs)
    return out


def repo_and_tag(ref: str) -> tuple[str, str | None]:
    """`team/app:v1` -> ("team/app", "v1"); `team/app@sha256:..` -> ("team/app", None)."""
    try:
        r = parse(ref, default_tag=False)
    except ReferenceError_:
        return ref.rsplit(":", 1)[0], None
    return r.familiar_name, r.tag


def aliases(familiar: str) -> list[str]:
    """Names a policy pattern may use for a local repository: familiar, path, canonical."""
    try:
        r = parse(familiar, default_tag=False)
    except ReferenceError_:
        return []
    return sorted({r.path, r.name} - {familiar})


Recorded = dict[str, tuple[dt.datetime, str]]  # image id -> (last use, source), from `local watch`


def build_inventory(
    engine: EngineClient,
    *,
    need_last_use: bool = False,
    cache: FactCache | None = None,
    recorded: Recorded | None = None,
) -> tuple[Inventory, int]:
    """The inventory and the engine's layer bytes now. need_last_use: the selection orders or
    pins by last use, which needs each image's LastTagTime and each container's last start or
    stop (inspect only). Otherwise an image is inspected only when its layer chain is needed (it
    shares layers: SharedSize > 0) and is not cached under its id: one inspect per image was most
    of a local run's time."""
    images = engine.images()
    containers = engine.containers()
    df = engine.df()
    inv = Inventory(source="local", target=str(engine.address), global_ids=True)
    states: dict[str, dict[str, Any] | None] = {}
    if need_last_use and containers:
        ids = [str(c["Id"]) for c in containers]
        with ThreadPoolExecutor(max_workers=8) as pool:
            states = dict(zip(ids, pool.map(lambda cid: _container_state(engine, cid), ids), strict=True))

    uses: dict[str, list[ContainerUse]] = defaultdict(list)
    for c in containers:
        name = (c.get("Names") or ["?"])[0].lstrip("/")
        state = states.get(str(c["Id"])) or {}
        ran = [parse_time(state.get(k)) for k in ("StartedAt", "FinishedAt")]
        uses[c.get("ImageID", "")].append(
            ContainerUse(
                id=c["Id"],
                name=name,
                running=c.get("State") == "running",
                created=parse_time(c.get("Created")),
                used=max((t for t in ran if t and t.year > 1), default=None),
            )
        )
    sizes = {i["Id"]: int(i.get("Size") or 0) for i in df.get("Images") or []}
    shared = {i["Id"]: max(int(i.get("SharedSize") or 0), 0) for i in df.get("Images") or []}
    chains: dict[str, list[str]] = {}
    details: dict[str, dict[str, Any]] = {}
    for img in images:
        iid = img["Id"]
        if need_last_use:
            continue
        if iid in sizes and shared[iid] == 0:
            chains[iid] = [f"sha256:{iid.removeprefix('sha256:')}/own"]  # all its layers: one run
        elif cache and (layers := cache.image_layers(iid)) is not None:
            chains[iid] = chain_ids(layers)
    missing = [i["Id"] for i in images if i["Id"] not in chains]
    with ThreadPoolExecutor(max_workers=8) as pool:  # one engine call each; the engine serves many
        found = dict(zip(missing, pool.map(lambda iid: _inspect_if_there(engine, iid), missing), strict=True))
    details = {iid: d for iid, d in found.items() if d is not None}
    # Removed since the list (another `docker rmi`, a prune): gone, so nothing to plan for it.
    images = [i for i in images if found.get(i["Id"], True) is not None]
    for iid, d in details.items():
        layers = [str(x) for x in (d.get("RootFS") or {}).get("Layers") or []]
        chains[iid] = chain_ids(layers)
        if cache:
            cache.put_image_layers(iid, layers)
    blobs = solve_layer_runs(chains, sizes, shared)

    for img in images:
        iid = img["Id"]
        created = parse_time(img.get("Created"))
        labels = {str(k): str(v) for k, v in (img.get("Labels") or {}).items()}
        by_repo: dict[str, list[str]] = defaultdict(list)
        for ref in img.get("RepoTags") or []:
            if ref == "<none>:<none>":
                continue
            repo, tag = repo_and_tag(ref)
            if tag:
                by_repo[repo].append(tag)
        digests: dict[str, list[str]] = defaultdict(list)
        for ref in img.get("RepoDigests") or []:
            if ref.startswith("<none>") or "@" not in ref:
                continue
            repo, _ = repo_and_tag(ref)
            by_repo.setdefault(repo, [])
            digests[repo].append(ref.rsplit("@", 1)[1])
        if not by_repo:
            by_repo[""] = []
        used = tuple(uses.get(iid, ()))
        last, source = last_use(created, details.get(iid, {}), used, (recorded or {}).get(iid))
        parent = img.get("ParentId") or ""
        for repo, tags in by_repo.items():
            inv.artifacts.append(
                Artifact(
                    repository=repo,
                    digest=iid,
                    tags=tuple(sorted(tags)),
                    created=created,
                    labels=labels,
                    children=(parent,) if parent else (),
                    blobs=blobs.get(iid, ()),
                    last_used=last,
                    last_used_source=source,
                    containers=used,
                    manifest_digests=tuple(digests.get(repo, ())),
                )
            )
    inv.repositories = sorted({a.repository for a in inv.artifacts if a.repository})
    inv.aliases = {r: aliases(r) for r in inv.repositories}
    return inv, int(df.get("LayersSize") or 0)


def _inspect_if_there(engine: EngineClient, image_id: str) -> dict[str, Any] | None:
    try:
        return engine.inspect(image_id)
    except NotFound:
        return None


def _container_state(engine: EngineClient, cid: str) -> dict[str, Any] | None:
    try:
        return dict(engine.inspect_container(cid).get("State") or {})
    except NotFound:
        return None  # removed since the list


def last_use(
    created: dt.datetime | None,
    detail: dict[str, Any],
    used: tuple[ContainerUse, ...],
    recorded: tuple[dt.datetime, str] | None = None,
) -> tuple[dt.datetime | None, str | None]:
    """The latest evidence of use, and which it is: created, tagged (LastTagTime: pull, tag),
    container (created, started or stopped), or watch:<event> (recorded by `local watch`)."""
    found: list[tuple[dt.datetime, str]] = []
    if created:
        found.append((created, "created"))
    tagged = parse_time((detail.get("Metadata") or {}).get("LastTagTime"))
    if tagged and tagged.year > 1:  # the engine's zero time means never
        found.append((tagged, "tagged"))
    found += [(t, "container") for c in used for t in (c.created, c.used) if t]
    if recorded:
        found.append((recorded[0], f"watch:{recorded[1]}"))
    if not found:
        return None, None
    return max(found, key=lambda x: x[0])
