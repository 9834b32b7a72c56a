"""Apply a Plan through a backend: the same plan the dry run printed, item by item.

Order: untags first (they keep digests), then deletes so that whatever holds an item goes before
it: an index before its children, a referrer before its subject, and, locally, a child image
before its parent. An interrupted run so leaves at worst content without referrers, never a
referrer without its subject or an index without its children. The order comes from the plan's
own children and subjects (a saved plan has them too), not from Decision.depth. Deletes run in
waves; the items of one wave do not hold each other and may run concurrently.

Holder rule: an item is deleted only when everything in the plan that holds it ended deleted
(done; "already gone" counts). Otherwise it is skipped, naming the holder, so a failed or skipped
index never leaves broken children behind. A referrer goes only when its subject (and its
subject's subject) still verify as planned, so content re-tagged since the plan keeps its
signatures. Each item is re-verified by the backend just before it is changed; one that changed
since the plan is skipped with the reason. A fatal error (deletes disabled, permission missing)
stops the run: what was not attempted is reported so.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
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


class Holds:
    """Who holds whom among a plan's items. Remote digests are per repository; local image ids
    are one image across repositories."""

    def __init__(self, plan: Plan):
        self.local = plan.source == "local"
        self.by_node: dict[Hashable, list[Decision]] = defaultdict(list)
        # held node -> (holder, how a skip reason names the holder: formatted with its label)
        self.holders: dict[Hashable, list[tuple[Decision, str]]] = defaultdict(list)
        self.subjects: dict[Hashable, list[Hashable]] = defaultdict(list)
        for d in plan.decisions:
            n = self.node(d.repository, d.digest)
            self.by_node[n].append(d)
            for child in d.artifact.children:
                role = "child image {} built on it" if self.local else "index {} it belongs to"
                self._hold(d, self.node(d.repository, child), role)
            if d.artifact.subject:
                subject = self.node(d.repository, d.artifact.subject)
                self._hold(d, subject, "referrer {} that refers to it")
                if subject != n:
                    self.subjects[n].append(subject)

    def node(self, repository: str, digest: str) -> Hashable:
        return digest if self.local else (repository, digest)

    def _hold(self, holder: Decision, held: Hashable, role: str) -> None:
        if held != self.node(holder.repository, holder.digest):  # a thing holding itself blocks nothing
            self.holders[held].append((holder, role))

    def node_of(self, d: Decision) -> Hashable:
        return self.node(d.repository, d.digest)

    def waves(self, deletes: list[Decision]) -> tuple[list[list[Decision]], list[Decision]]:
        """Deletes by holder depth (Kahn's algorithm), and those in or under a cycle of holders,
        which no order makes safe (content addressing rules cycles out; tag-named subjects do not)."""
        nodes = {self.node_of(d) for d in deletes}
        waiting = {n: {self.node_of(h) for h, _ in self.holders[n]} & nodes for n in nodes}
        holds: dict[Hashable, list[Hashable]] = defaultdict(list)
        for n, hs in waiting.items():
            for h in hs:
                holds[h].append(n)
        depth: dict[Hashable, int] = {}
        level, k = [n for n, hs in waiting.items() if not hs], 0
        while level:
            nxt = []
            for n in level:
                depth[n] = k
                for m in holds[n]:
                    waiting[m].discard(n)
                    if not waiting[m]:
                        nxt.append(m)
            level, k = nxt, k + 1
        waves: list[list[Decision]] = [[] for _ in range(k)]
        stuck = []
        for d in deletes:
            n = self.node_of(d)
            if n in depth:
                waves[depth[n]].append(d)
            else:
                stuck.append(d)
        return waves, stuck

    def subject_chain(self, d: Decision) -> list[Decision]:
        """The planned deletes a referrer refers to, directly or through other referrers."""
        out: list[Decision] = []
        seen: set[Hashable] = {self.node_of(d)}
        stack = list(self.subjects.get(self.node_of(d), ()))
        while stack:
            s = stack.pop()
            if s in seen:
                continue
            seen.add(s)
            out += [x for x in self.by_node.get(s, ()) if x.action is Action.DELETE]
            stack.extend(self.subjects.get(s, ()))
        return out


async def execute(
    plan: Plan,
    backend: Backend,
    *,
    concurrency: int = 4,
    on_done: Callable[[Outcome], None] | None = None,
) -> Report:
    report = Report()
    sem = asyncio.Semaphore(max(1, concurrency))
    holds = Holds(plan)
    ended: dict[int, Outcome] = {}
    cause: dict[int, Outcome] = {}  # why an item was held back: the first item that did not end deleted

    def held_back(d: Decision) -> str | None:
        for h, role in holds.holders.get(holds.node_of(d), ()):
            if h.action is Action.DELETE:
                o = ended.get(id(h)) or Outcome(h, "not attempted")
                if o.status == DONE:
                    continue
            else:
                o = Outcome(h, "kept by the plan")
            first = cause.get(id(h), o)
            cause[id(d)] = first
            why = f"{first.status}{': ' + first.detail if first.detail else ''}"
            if first is not o:
                why = f"because {first.decision.artifact.label()} {why}"
            return f"not deleted: {role.format(h.artifact.label())} was not deleted ({why})"
        return None

    async def change(d: Decision) -> Outcome:
        if d.action is Action.UNTAG:
            return Outcome(d, DONE, await backend.untag(d) or "")
        # A referrer goes only while what it refers to is still going: a subject re-tagged since
        # the plan keeps its signatures.
        for s in holds.subject_chain(d):
            changed = await backend.verify(s)
            if changed:
                return Outcome(
                    d, SKIPPED, f"not deleted: its subject {s.artifact.label()} changed since plan: {changed}"
                )
        return Outcome(d, DONE, await backend.delete(d) or "")

    async def one(d: Decision) -> Outcome:
        async with sem:
            if report.fatal is not None:
                return Outcome(d, SKIPPED, "not attempted: stopped by the error above")
            try:
                changed = await backend.verify(d)
                if changed:
                    return Outcome(d, SKIPPED, f"changed since plan: {changed}")
                held = held_back(d) if d.action is Action.DELETE else None
                if held:
                    return Outcome(d, SKIPPED, held)
                return await change(d)
            except ChangedSincePlan as exc:
                return Outcome(d, SKIPPED, f"changed since plan: {exc}")
            except (DeleteDisabled, AuthError) as exc:
                if report.fatal is None:
                    report.fatal = exc
                    return Outcome(d, FAILED, str(exc))
                return Outcome(d, SKIPPED, "not attempted: stopped by the error above")
            except RegcollectError as exc:
                return Outcome(d, FAILED, str(exc))

    def record(outcome: Outcome) -> None:
        ended[id(outcome.decision)] = outcome
        report.outcomes.append(outcome)
        if on_done:
            on_done(outcome)

    changes = plan.changes
    waves, stuck = holds.waves([d for d in changes if d.action is Action.DELETE])
    # Untags are one wave; then each holder depth is a wave that finishes before the next.
    for wave in [[d for d in changes if d.action is Action.UNTAG], *waves]:
        for outcome in await asyncio.gather(*(one(d) for d in wave)):
            record(outcome)
    stuck_nodes = {holds.node_of(x) for x in stuck}
    for d in stuck:
        role = next(
            r.format(h.artifact.label())
            for h, r in holds.holders[holds.node_of(d)]
            if holds.node_of(h) in stuck_nodes
        )
        why = (
            f"not deleted: it is in or under a cycle of items that hold each other ({role}); no order is safe"
        )
        record(Outcome(d, SKIPPED, why))
    return report
