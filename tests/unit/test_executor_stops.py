"""Executor bookkeeping a user reads in the report: what was done, failed or skipped, what bytes were
freed, and that a fatal error stops the run (issue 21). Over the in-memory registry backend."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

from regcollect.errors import AuthError, ChangedSincePlan
from regcollect.executor import DONE, FAILED, SKIPPED, Outcome, execute
from regcollect.model import Artifact, Blob, Inventory
from regcollect.planner import Action, Decision, Plan, evaluate
from regcollect.policy import policy_from_flags
from tests.support.fakeregistry import FakeBackend, FakeRegistry

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def art(name: str, *tags: str, repo: str = "team/app", size: int = 10) -> Artifact:
    created = NOW - dt.timedelta(days=90, seconds=int(dg(name)[7:15], 16) % 10_000)
    return Artifact(repo, dg(name), tags=tags, created=created, blobs=(Blob(dg(name + "b"), size),))


def setup(arts: list[Artifact], **flags: object) -> tuple[Plan, FakeRegistry, FakeBackend]:
    args: dict[str, object] = dict(
        repos=(), keep_last=0, keep_tags=(), older_than=None, untagged=True, keep_labels=()
    )
    args.update(flags)
    inv = Inventory("remote", "t", arts)
    plan = evaluate(inv, policy_from_flags(**args), NOW)  # type: ignore[arg-type]
    reg = FakeRegistry.from_inventory(inv)
    return plan, reg, FakeBackend(reg, plan)


def test_a_fatal_error_stops_the_run_and_says_what_was_not_attempted() -> None:
    arts = [art(f"i{n}", f"v{n}") for n in range(5)]
    plan, reg, backend = setup(arts)
    first = plan.changes[0]
    backend.fail[(first.repository, first.digest)] = AuthError("missing permission: may not delete")
    seen: list[Outcome] = []
    report = asyncio.run(execute(plan, backend, concurrency=1, on_done=seen.append))
    assert isinstance(report.fatal, AuthError) and report.failed
    assert [o.status for o in report.outcomes] == [FAILED] + [SKIPPED] * 4
    assert {o.detail for o in report.outcomes[1:]} == {"not attempted: stopped by the error above"}
    assert backend.deleted == [] and all(reg.exists("team/app", a.digest) for a in arts)
    assert seen == report.outcomes


def test_a_second_fatal_error_in_flight_is_not_attempted_either() -> None:
    arts = [art("a", "v1"), art("b", "v2")]
    plan, reg, backend = setup(arts)
    for d in plan.changes:
        backend.fail_delete(d.repository, d.digest, "fatal")
    report = asyncio.run(execute(plan, backend, concurrency=2))
    assert sorted(o.status for o in report.outcomes) == [FAILED, SKIPPED]
    assert report.count(FAILED) == 1 and report.count(SKIPPED) == 1


def test_only_deletes_that_happened_count_as_freed() -> None:
    arts = [art("a", "v1", size=100), art("b", "v2", size=20), art("c", "v3", size=3)]
    plan, reg, backend = setup(arts)
    by = {d.artifact.tags[0]: d for d in plan.decisions}
    backend.fail_delete("team/app", by["v2"].digest, "500")
    backend.fail_delete("team/app", by["v3"].digest, "changed")
    report = asyncio.run(execute(plan, backend))
    assert report.reclaimed_bytes == 100
    got = {o.decision.artifact.tags[0]: (o.status, o.detail) for o in report.outcomes}
    assert got["v1"] == (DONE, "")
    assert got["v2"][0] == FAILED and report.failed and report.fatal is None
    assert got["v3"] == (SKIPPED, "changed since plan: the registry refused: in use")


def test_untags_go_first_and_free_nothing() -> None:
    shared = art("shared", "old", "stable", size=50)
    gone = art("gone", "v0", size=7)
    plan, reg, backend = setup([shared, gone], keep_tags=("stable",))
    order: list[str] = []
    report = asyncio.run(
        execute(plan, backend, concurrency=0, on_done=lambda o: order.append(o.decision.action.value))
    )
    assert order == ["untag", "delete"]
    assert report.reclaimed_bytes == 7 and report.count(DONE) == 2
    assert reg.tags["team/app"] == {"stable": shared.digest}


def test_an_item_changed_since_the_plan_is_skipped_not_failed() -> None:
    class Refusing(FakeBackend):
        async def verify(self, d: Decision) -> str | None:
            raise ChangedSincePlan("engine says: in use")

    arts = [art("a", "v1")]
    plan, reg, _ = setup(arts)
    report = asyncio.run(execute(plan, Refusing(reg, plan)))
    assert [(o.status, o.detail) for o in report.outcomes] == [
        (SKIPPED, "changed since plan: engine says: in use")
    ]
    assert not report.failed and report.reclaimed_bytes == 0
    assert plan.decisions[0].action is Action.DELETE
