"""Size budgets for local images, pure: how far over a budget the engine is, and which images to
evict, least recently used first, counting only the bytes their removal really frees.

A budget measures what the run governs: the images in scope (--repo, the policy's repositories;
all images when there is none) for --max-size, the data root's free space for --min-free. A layer
run is freed once, when the last image holding it goes; an image whose layers are all held by an
image that stays frees nothing, so it is not evicted "to make room". An untagged parent goes with
its last evicted child, as docker prunes it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from regcollect.engine.select import LocalContext, Selection
from regcollect.planner import Action, Selected
from regcollect.units import format_bytes

NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Budget:
    max_size: int | None = None  # the images in scope take at most this many bytes
    min_free: int | None = None  # the engine's data root keeps at least this many bytes free

    def over(self, total: int, free: int | None) -> int:
        """Bytes to free to meet the budget; 0 when it is met."""
        need = 0
        if self.max_size is not None:
            need = max(need, total - self.max_size)
        if self.min_free is not None and free is not None:
            need = max(need, self.min_free - free)
        return need

    def describe(self, total: int, free: int | None) -> str:
        parts = []
        if self.max_size is not None:
            parts.append(f"images in scope {format_bytes(total)}, --max-size {format_bytes(self.max_size)}")
        if self.min_free is not None and free is not None:
            parts.append(f"free {format_bytes(free)}, --min-free {format_bytes(self.min_free)}")
        return "; ".join(parts)


@dataclass
class Eviction:
    selection: Selection
    total: int  # unique bytes of the images in scope
    need: int  # bytes to free
    freed: int = 0  # bytes the evictions free
    evicted: list[str] = field(default_factory=list)
    unreachable: str | None = None  # the one plan line when even evicting all that may go is not enough
    not_helping: dict[str, str] = field(default_factory=dict)  # image id -> why it stays

    def stats(self, budget: Budget, free: int | None) -> dict[str, Any]:
        return {
            "max_size": budget.max_size,
            "min_free": budget.min_free,
            "scope_bytes": self.total,
            "free_bytes": free,
            "need_bytes": self.need,
            "freed_bytes": self.freed,
            "evicted": len(self.evicted),
            "reachable": self.unreachable is None,
        }


def scope_bytes(ctx: LocalContext, scope: set[str]) -> int:
    """Unique bytes of the images in scope (a layer run counted once)."""
    sizes: dict[str, int] = {}
    for iid in scope:
        for b in ctx.by_id[iid][0].blobs:
            sizes[b.digest] = b.size
    return sum(sizes.values())


def _why_kept(ctx: LocalContext, iid: str, pinned: dict[str, str]) -> str:
    a = ctx.by_id[iid][0]
    if any(c.running for c in a.containers):
        return "kept by running containers"
    if a.containers:
        return "kept by stopped containers"
    reason = pinned.get(iid, "")
    if "--min-age" in reason:
        return "used within --min-age"
    if "--filter" in reason:
        return "outside --filter"
    if reason:
        return "kept by the policy"
    return "parents of kept images"


def evict(
    ctx: LocalContext,
    budget: Budget,
    scope: set[str],
    pinned: dict[str, str],
    *,
    free: int | None = None,
    target: Budget | None = None,
) -> Eviction:
    """What to evict so the images in `scope` meet `budget`; `target` (a low watermark) is where
    eviction stops once the budget is exceeded (default: the budget itself)."""
    total = scope_bytes(ctx, scope)
    out = Eviction({}, total, 0)
    if budget.over(total, free) <= 0:
        return out
    need = (target or budget).over(total, free)
    out.need = need
    holders: dict[str, set[str]] = defaultdict(set)
    sizes: dict[str, int] = {}
    for iid, arts in ctx.by_id.items():
        for b in arts[0].blobs:
            holders[b.digest].add(iid)
            sizes[b.digest] = b.size

    def may_go(iid: str) -> bool:
        return iid in scope and iid not in pinned and not ctx.by_id[iid][0].containers

    evictable = {iid for iid in ctx.by_id if may_go(iid)}
    order = sorted(evictable, key=lambda i: (ctx.by_id[i][0].last_used or NEVER, i))
    evicted: list[str] = []
    gone: set[str] = set()
    counted: set[str] = set()
    freed = 0

    def take(iid: str) -> None:
        nonlocal freed
        gone.add(iid)
        evicted.append(iid)
        for b in ctx.by_id[iid][0].blobs:
            if b.digest not in counted and holders[b.digest] <= gone:
                counted.add(b.digest)
                freed += sizes[b.digest]

    for iid in order:
        if freed >= need:
            break
        if iid in gone or any(child not in gone for child in ctx.children_of.get(iid, ())):
            continue  # a parent goes only with its children (below, with its last child)
        blobs = ctx.by_id[iid][0].blobs
        if not any(holders[b.digest] <= evictable and b.size for b in blobs):
            out.not_helping[iid] = "kept: removing it frees nothing (its layers are held by images that stay)"
            continue
        take(iid)
        parent = next(iter(ctx.by_id[iid][0].children), None)
        while parent and parent in evictable and parent not in gone and ctx.dangling_after(parent, gone):
            take(parent)
            parent = next(iter(ctx.by_id[parent][0].children), None)
    # An image taken for bytes that only come free with images that stay frees nothing: it stays.
    for iid in list(evicted):
        if not any(b.digest in counted for b in ctx.by_id[iid][0].blobs):
            evicted.remove(iid)
            out.not_helping[iid] = "kept: removing it frees nothing unless more recently used images also go"
    out.evicted, out.freed = evicted, freed
    chosen = set(evicted)
    for iid in evicted:
        a = ctx.by_id[iid][0]
        when = (
            f"last used {a.last_used:%Y-%m-%d %H:%M} ({a.last_used_source})" if a.last_used else "never used"
        )
        why = (
            f"deleted: least recently used ({when}); {budget.describe(total, free)}"
            if a.tags or not (set(ctx.children_of.get(iid, ())) & chosen)
            else "deleted: untagged parent of an evicted image"
        )
        for art in ctx.by_id[iid]:
            out.selection[(art.repository, iid)] = Selected(Action.DELETE, why)
    short = budget.over(total, free) - freed  # the budget itself, not the low watermark
    if short > 0:
        counts: dict[str, int] = defaultdict(int)
        for iid in scope - chosen:
            cat = "frees nothing" if iid in out.not_helping else _why_kept(ctx, iid, pinned)
            counts[cat] += 1
        kept = ", ".join(f"{n} {cat}" for cat, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
        out.unreachable = (
            f"budget unreachable: {format_bytes(short)} still over after evicting "
            f"{len(evicted)} images" + (f"; {kept}" if kept else "")
        )
    return out
