"""Apply a Plan through a backend: the same plan the dry run printed, item by item.

Order: untags first (they keep digests), then deletes by reach depth, so an index goes before the
children that go with it and a subject before its referrers (and, locally, a child image before its
parent). Items of one depth may run concurrently. Each item is re-verified by the backend just
before it is changed; one that changed since the plan is skipped with the reason. A fatal error
(deletes disabled, permission missing) stops the run: what was not attempted is reported so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from typing import Protocol

from regcollect.errors import AuthError, ChangedSincePlan, DeleteDisabled, RegcollectError
from regcollect.planner import Action, Decision, Plan

DONE, FAILED, SKIPPED = "done", "failed", "skipped"


class Backend(Protocol):
    async def verify(self, decision: Decision) -> str | None:
        """None when the item is as planned, else why it changed since the plan."""

    async def untag(self, decision: Decision) -> str | None:
        """Remove decision.remove_tags; return a note for the report (or None)."""

    async def delete(self, decision: Decision) -> str | None:
        """Delete the digest (idempotent: already gone counts as done)."""


@dataclass
class Outcome:
    decision: Decision
    status: str
    detail: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    fatal: RegcollectError | None = None

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> bool:
        return self.fatal is not None or any(o.status == FAILED for o in self.outcomes)

    @property
    def reclaimed_bytes(self) -> int:
        return sum(
            o.decision.bytes for o in self.outcomes if o.status == DONE and o.decision.action is Action.DELETE
        )


async def execute(
    plan: Plan,
    backend: Backend,
    *,
    concurrency: int = 4,
    on_done: Callable[[Outcome], None] | None = None,
) -> Report:
    report = Report()
    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(d: Decision) -> Outcome:
        async with sem:
            if report.fatal is not None:
                return Outcome(d, SKIPPED, "not attempted: stopped by the error above")
            try:
                changed = await backend.verify(d)
                if changed:
                    return Outcome(d, SKIPPED, f"changed since plan: {changed}")
                if d.action is Action.UNTAG:
                    note = await backend.untag(d)
                else:
                    note = await backend.delete(d)
                return Outcome(d, DONE, note or "")
            except ChangedSincePlan as exc:
                return Outcome(d, SKIPPED, f"changed since plan: {exc}")
            except (DeleteDisabled, AuthError) as exc:
                if report.fatal is None:
                    report.fatal = exc
                    return Outcome(d, FAILED, str(exc))
                return Outcome(d, SKIPPED, "not attempted: stopped by the error above")
            except RegcollectError as exc:
                return Outcome(d, FAILED, str(exc))

    changes = plan.changes
    # Untags are one wave; then each delete depth is a wave that finishes before the next.
    waves = [[d for d in changes if d.action is Action.UNTAG]] + [
        list(g) for _, g in groupby((d for d in changes if d.action is Action.DELETE), key=lambda d: d.depth)
    ]
    for wave in waves:
        for outcome in await asyncio.gather(*(one(d) for d in wave)):
            report.outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    return report
