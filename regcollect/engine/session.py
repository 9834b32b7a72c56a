"""One local run: inventory the engine, pin what must stay, select, plan, apply, and compare the
bytes the plan promised with what the engine's own disk usage shows changed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from regcollect.cache import FactCache
from regcollect.engine.backend import LocalBackend
from regcollect.engine.client import EngineClient
from regcollect.engine.inventory import build_inventory
from regcollect.engine.select import (
    LocalContext,
    Selection,
    parse_filters,
    pins,
    select_dangling,
    select_max_size,
    select_targets,
    select_unused,
)
from regcollect.errors import UsageError
from regcollect.executor import Report, execute
from regcollect.globs import repo_matches
from regcollect.planner import Action, Plan, evaluate
from regcollect.policy import Policy
from regcollect.state import record_first_seen
from regcollect.units import format_bytes, parse_duration, parse_size

LOCAL_CONCURRENCY = 8


@dataclass
class LocalOptions:
    targets: list[str] = field(default_factory=list)
    repos: tuple[str, ...] = ()
    policy: Policy | None = None
    dangling: bool = False
    unused: bool = False
    filters: tuple[str, ...] = ()
    force: bool = False
    remove_containers: bool = False
    min_age: str | None = None
    max_size: str | None = None


def validate(opts: LocalOptions) -> None:
    """Refuse contradictory input before contacting the engine."""
    modes = [
        name
        for name, on in (
            ("IMAGE arguments", bool(opts.targets)),
            ("--dangling", opts.dangling),
            ("--unused", opts.unused),
            ("--max-size", opts.max_size is not None),
            ("a policy", opts.policy is not None),
        )
        if on
    ]
    if len(modes) > 1:
        raise UsageError(f"choose one way to select images, not {' and '.join(modes)}")
    parse_filters(opts.filters)
    if opts.min_age is not None:
        try:
            parse_duration(opts.min_age)
        except ValueError as exc:
            raise UsageError(f"--min-age: {exc}") from None
    if opts.max_size is not None:
        try:
            parse_size(opts.max_size)
        except ValueError as exc:
            raise UsageError(f"--max-size: {exc}") from None
    if not modes and not opts.filters:
        raise UsageError(
            "nothing selects images: give IMAGE..., --dangling, --unused, --max-size, "
            "--filter, or a policy (--keep-last, --older-than, --untagged, --policy)"
        )


def plan_local(
    engine: EngineClient, opts: LocalOptions, now: dt.datetime, cache: FactCache | None = None
) -> tuple[Plan, list[str], int]:
    """The plan, the per-target errors (exit 1), and the engine's layer bytes before."""
    engine.ping()
    by_use = opts.policy is not None and any(r.unpulled_for for r in opts.policy.rules)
    need_last_use = opts.min_age is not None or opts.max_size is not None or by_use
    inv, layers_before = build_inventory(engine, need_last_use=need_last_use, cache=cache)
    inv.pull_times = True  # locally, a "pull" is the image's last use (unpulled_for)
    for a in inv.artifacts:
        a.pulled = a.last_used
    record_first_seen(inv, now, complete={a.repository for a in inv.artifacts})
    ctx = LocalContext(inv, now)
    filters = parse_filters(opts.filters)
    inv.pinned = pins(
        ctx,
        filters=filters,
        min_age=parse_duration(opts.min_age) if opts.min_age else None,
        remove_containers=opts.remove_containers,
        force=opts.force,
    )
    if opts.repos:  # with --policy, --repo narrows what the rules may touch, as remotely
        for iid, arts in ctx.by_id.items():
            if not any(repo_matches(p, a.repository) for p in opts.repos for a in arts):
                inv.pinned.setdefault(iid, "kept: repository not selected by --repo")
    errors: list[str] = []
    selection: Selection | None = None
    if opts.targets:
        selection, errors = select_targets(ctx, opts.targets, force=opts.force)
    elif opts.dangling:
        selection = select_dangling(ctx)
    elif opts.unused:
        selection = select_unused(ctx)
    elif opts.max_size is not None:
        selection = select_max_size(ctx, parse_size(opts.max_size), inv.pinned)
    elif opts.policy is None:  # --filter alone: docker image prune --filter (dangling=false: -a)
        wants_all = any(f.key == "dangling" and f.value.lower() in ("false", "0") for f in filters)
        selection = select_unused(ctx) if wants_all else select_dangling(ctx)
    policy = opts.policy or Policy(rules=(), source="local selection")
    plan = evaluate(inv, policy, now, selection)
    _container_actions(plan, opts)
    return plan, errors, layers_before


def _container_actions(plan: Plan, opts: LocalOptions) -> None:
    """Stopped containers: removed first (the space is really freed) or forced past (it is not)."""
    for d in plan.decisions:
        stopped = [c for c in d.artifact.containers if not c.running]
        if d.action is not Action.DELETE or not stopped:
            continue
        names = ", ".join(c.name for c in stopped)
        if opts.remove_containers:
            d.containers_first = tuple(c.id for c in stopped)
            d.reason += f"; removes stopped container {names} first"
        elif opts.force:
            d.force = True
            d.reason += f"; --force: its layers stay on disk until container {names} is removed"
            plan.reclaimable_bytes -= d.bytes
            d.bytes = 0
            plan.warnings.append(
                f"--force on {d.artifact.label()}: docker removes the image record, but its layers "
                f"stay on disk until stopped container {names} is removed"
            )


async def apply_local(
    engine: EngineClient, plan: Plan, layers_before: int, journal: object = None
) -> tuple[Report, list[str]]:
    # A few at once: 200 deletes took 2.2 s one by one and 0.9 s four at once (docs/performance.md);
    # the backend keeps the items of one image in order.
    report = await execute(plan, LocalBackend(engine, plan, journal=journal), concurrency=LOCAL_CONCURRENCY)
    after = int(engine.df().get("LayersSize") or 0)
    notes = [
        f"Reclaimed {format_bytes(report.reclaimed_bytes)} by the plan's count; the engine's layer "
        f"storage went from {format_bytes(layers_before)} to {format_bytes(after)} "
        f"({format_bytes(layers_before - after)} freed)"
    ]
    return report, notes
