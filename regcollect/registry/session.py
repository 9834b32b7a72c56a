"""One remote run: open a client with credentials, discover, plan, apply. The CLI drives it on
one event loop so the connection pool and tokens serve every phase.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from regcollect.cache import FactCache
from regcollect.errors import RegcollectError, StateError, UsageError
from regcollect.executor import DONE, Report, execute
from regcollect.model import Kind
from regcollect.planner import Action, Plan, evaluate
from regcollect.policy import Policy
from regcollect.registry.api import DistributionApi, RegistryApi
from regcollect.registry.backend import RemoteBackend
from regcollect.registry.client import RegistryClient, base_url
from regcollect.registry.credentials import resolve
from regcollect.registry.inventory import RemoteDiscovery
from regcollect.registry.opening import registry_client
from regcollect.state import record_first_seen


@dataclass
class RemoteOptions:
    registry: str
    insecure: bool = False
    ca_cert: str | None = None
    username: str | None = None
    password: str | None = None
    concurrency: int = 64
    use_cache: bool = True
    verify: str = "repository"
    timeout: float = 30.0
    log: Callable[[str], None] | None = None
    notice: Callable[[str], None] | None = None
    api: str | None = None  # how the registry is listed and deleted; None: chosen by its host
    api_url: str | None = None  # that API's base URL, where it is not the registry itself
    max_wait: float = 600.0  # seconds a vendor API's rate limit may pause the run
    note: Callable[[str], None] | None = None  # a message for the user (stderr unless -q)


def api_kind(registry: str, chosen: str | None) -> str:
    """--api as given, else what the host is known to need (ghcr.io: GitHub's REST API)."""
    if chosen:
        return chosen
    host = urlsplit(base_url(registry, insecure=False)).hostname or ""
    return HOSTS.get(host, "distribution")


# Each kind of registry is one module with an opener taking RemoteOptions (registry/api.py).
KINDS = {
    "github": "regcollect.registry.github:open_github",
    "dockerhub": "regcollect.registry.dockerhub:open_dockerhub",
    "gitlab": "regcollect.registry.gitlab:open_gitlab",
    "harbor": "regcollect.registry.harbor:open_harbor",
}
HOSTS = {
    "ghcr.io": "github",
    "docker.io": "dockerhub",
    "index.docker.io": "dockerhub",
    "registry-1.docker.io": "dockerhub",
    "registry.gitlab.com": "gitlab",
}  # Harbor is never guessed: any host may run it


def open_api(opts: RemoteOptions) -> RegistryApi:
    kind = api_kind(opts.registry, opts.api)
    if kind == "distribution":
        if opts.api_url:
            raise UsageError(
                "--api-url goes with a vendor --api (the distribution API is the registry itself)"
            )
        return DistributionApi(open_client(opts))
    module, _, name = KINDS[kind].partition(":")
    try:
        opener = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise UsageError(f"--api {kind} is not available in this version of regcollect") from None
    return opener(opts)  # type: ignore[no-any-return]


def open_client(opts: RemoteOptions) -> RegistryClient:
    """The client, with credentials for the registry's host; the auth flow is told the registry's
    base URL and --insecure, which decide where those credentials may go (registry/auth.py)."""
    base = base_url(opts.registry, insecure=opts.insecure)  # parses and validates the name
    if opts.password is not None and opts.username is None:
        raise UsageError("--password-stdin needs --username for this registry")
    return registry_client(opts, resolve(urlsplit(base).netloc, opts.username, opts.password))


async def plan_remote(
    api: RegistryApi,
    policy: Policy,
    patterns: list[str],
    now: dt.datetime,
    *,
    cache: FactCache | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Plan:
    await api.client.ping()
    discovery = RemoteDiscovery(api, cache=cache, progress=progress)
    inventory = await discovery.inventory(patterns)
    read = [r for r in inventory.repositories if r not in set(inventory.unread)]
    record_first_seen(inventory, now, complete=read)
    plan = evaluate(inventory, policy, now)
    plan.stats = request_stats(api)
    plan.api = {"api": api.kind}
    rest = getattr(api, "rest", None)
    if rest is not None:
        plan.api["api_url"] = rest.base + getattr(rest, "prefix", "")
    return plan


def request_stats(api: RegistryApi) -> dict[str, object]:
    """What the run cost the registry: requests, manifest GETs (a pull against some quotas, a
    download on ghcr.io), and the lowest rate-limit quota left that any answer announced."""
    stats: dict[str, object] = {
        "requests": api.client.requests,
        "manifest_gets": api.client.manifest_gets,
        "in_flight_peak": api.client.limiter.peak,
    }
    rest = getattr(api, "rest", None)
    if rest is not None:
        stats["api_requests"] = rest.requests
    for rate in (api.client.rate, getattr(rest, "rate", None)):
        if rate is not None and rate.lowest is not None:
            low = stats.get("rate_limit_lowest")
            if not isinstance(low, int) or rate.lowest < low:
                stats["rate_limit_lowest"], stats["rate_limit"] = rate.lowest, rate.limit
    return stats


async def apply_remote(
    api: RegistryApi,
    plan: Plan,
    *,
    concurrency: int,
    journal: object = None,
    verify: str = "repository",
    on_done: Callable[..., None] | None = None,
) -> tuple[Report, list[str]]:
    backend = RemoteBackend(api, plan, journal=journal, verify=verify)
    report = await execute(plan, backend, concurrency=concurrency, on_done=on_done)
    notes = []
    if backend.leftover_throwaways:
        notes.append(
            "throwaway manifests left behind (delete them by digest): "
            + ", ".join(backend.leftover_throwaways)
        )
    if report.count("done") and api.gc_note:
        notes.append(api.gc_note)
    broken, moved = await recheck(api, plan, report)
    notes.extend(moved)
    if broken:
        notes.extend(broken)
        if report.fatal is None:
            shown = "; ".join(broken[:10]) + (f"; and {len(broken) - 10} more" if len(broken) > 10 else "")
            report.fatal = StateError(f"after the run, {len(broken)} kept reference(s) are broken: {shown}")
    return report, notes


async def recheck(api: RegistryApi, plan: Plan, report: Report) -> tuple[list[str], list[str]]:
    """(broken, moved) in the repositories the run changed: each tag the plan kept still resolves
    (to its digest, or to content pushed since, while the kept digest stays), and each kept
    index's children exist. HEAD only. Whoever broke it, a nightly job must hear of it."""
    touched = {o.decision.repository for o in report.outcomes if o.status == DONE}
    kept = [d for d in plan.decisions if d.repository in touched and d.action is not Action.DELETE]
    checks = [(d, "tag", t) for d in kept for t in d.kept_tags]
    checks += [(d, "child", c) for d in kept if d.artifact.kind is Kind.INDEX for c in d.artifact.children]
    heads = await asyncio.gather(
        *(api.client.head_manifest(d.repository, ref) for d, _, ref in checks), return_exceptions=True
    )
    broken: list[str] = []
    moved: list[str] = []
    for (d, what, ref), now in zip(checks, heads, strict=True):
        if isinstance(now, BaseException):
            if not isinstance(now, RegcollectError):
                raise now
            moved.append(f"could not re-check {d.repository} {what} {ref}: {now}")
        elif what == "child":
            if now is None:
                broken.append(f"kept index {d.artifact.label()} names child {ref}, which is gone")
        elif now is None:
            broken.append(f"kept tag {d.repository}:{ref} no longer resolves (it named {d.digest})")
        elif now != d.digest:
            if await api.client.head_manifest(d.repository, d.digest) is None:
                broken.append(f"kept {d.repository}@{d.digest} (tag {ref}) is gone")
            else:
                moved.append(
                    f"kept tag {d.repository}:{ref} moved since the plan (to {now}); {d.digest} stays"
                )
    return broken, moved
