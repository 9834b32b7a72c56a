"""What the executor tells a user about items it held back, and that an item held by two indexes
stays when either one stays (issue 21: mutation survivors in executor.execute)."""

from __future__ import annotations

import asyncio
import datetime as dt

from regcollect.errors import AuthError
from regcollect.executor import DONE, FAILED, SKIPPED, execute
from regcollect.model import Kind
from regcollect.planner import Action, Decision
from tests.unit.test_executor import NOW, REPO, art, delete_all, outcomes, run


def test_an_image_in_two_indexes_stays_when_the_second_index_stays() -> None:
    """`docker pull team/app:v2` must keep working: its index failed to delete, so the platform
    image it names stays, even though the other index that named it went."""
    amd = art("amd")
    # An index's age is its platform images' (one shared time says nothing): push times date them.
    idx1 = art("idx1", ("v1",), kind=Kind.INDEX, children=(amd.digest,), pushed=NOW - dt.timedelta(days=60))
    idx2 = art("idx2", ("v2",), kind=Kind.INDEX, children=(amd.digest,), pushed=NOW - dt.timedelta(days=61))
    arts = [idx1, idx2, amd]
    plan = delete_all(arts)
    registry, backend = run(plan, arts)
    backend.fail_delete(REPO, idx2.digest, "500")
    got = outcomes(asyncio.run(execute(plan, backend)))
    assert got[idx1.label()][0] == DONE and got[idx2.label()][0] == FAILED
    assert got[amd.label()] == (
        SKIPPED,
        "not deleted: index team/app:v2 it belongs to was not deleted "
        "(failed: HTTP 500 from the registry (after retries))",
    )
    assert registry.exists(REPO, amd.digest)


def test_an_item_whose_holder_the_plan_keeps_is_not_deleted_and_says_so() -> None:
    """A plan edited (or selected) so that an index stays while its child goes: the child stays."""
    amd = art("amd")
    idx = art("idx", ("v1",), kind=Kind.INDEX, children=(amd.digest,))
    plan = delete_all([idx, amd])
    next(d for d in plan.decisions if d.digest == idx.digest).action = Action.KEEP
    registry, backend = run(plan, [idx, amd])
    got = outcomes(asyncio.run(execute(plan, backend)))
    assert got[amd.label()] == (
        SKIPPED,
        "not deleted: index team/app:v1 it belongs to was not deleted (kept by the plan)",
    )
    assert registry.exists(REPO, amd.digest)


def test_a_fatal_error_is_reported_with_its_message_and_the_rest_say_why_not_attempted() -> None:
    arts = [art("a", ("v1",)), art("b", ("v2",)), art("c", ("v3",))]
    plan = delete_all(arts)
    _, backend = run(plan, arts)
    for d in plan.changes:
        backend.fail[(d.repository, d.digest)] = AuthError("missing permission: delete")
    report = asyncio.run(execute(plan, backend, concurrency=3))
    failed = [o for o in report.outcomes if o.status == FAILED]
    skipped = [o for o in report.outcomes if o.status == SKIPPED]
    assert [o.detail for o in failed] == ["missing permission: delete"]
    assert len(skipped) == 2
    assert {o.detail for o in skipped} == {"not attempted: stopped by the error above"}


def test_items_in_a_cycle_name_the_item_that_holds_them() -> None:
    child = art("child")
    idx = art("idx", ("v1",), kind=Kind.INDEX, children=(child.digest,))
    child.tags = (idx.digest.replace(":", "-") + ".sig",)
    child.kind, child.subject = Kind.REFERRER, idx.digest
    plan = delete_all([idx, child])
    _, backend = run(plan, [idx, child])
    got = outcomes(asyncio.run(execute(plan, backend)))
    cycle = "not deleted: it is in or under a cycle of items that hold each other ({}); no order is safe"
    assert got[idx.label()] == (SKIPPED, cycle.format(f"referrer {child.label()} that refers to it"))
    assert got[child.label()] == (SKIPPED, cycle.format(f"index {idx.label()} it belongs to"))


class Refusing:
    """A backend whose every delete is refused for the whole run, after a real await (so several
    items are in flight when the first refusal arrives)."""

    async def verify(self, d: Decision) -> str | None:
        await asyncio.sleep(0)
        return None

    async def untag(self, d: Decision) -> str | None:
        return None

    async def delete(self, d: Decision) -> str | None:
        await asyncio.sleep(0)
        raise AuthError("missing permission: delete")


def test_refusals_already_in_flight_are_reported_not_attempted() -> None:
    arts = [art("a", ("v1",)), art("b", ("v2",)), art("c", ("v3",))]
    plan = delete_all(arts)
    report = asyncio.run(execute(plan, Refusing(), concurrency=3))  # type: ignore[arg-type]
    assert sorted((o.status, o.detail) for o in report.outcomes) == [
        (FAILED, "missing permission: delete"),
        (SKIPPED, "not attempted: stopped by the error above"),
        (SKIPPED, "not attempted: stopped by the error above"),
    ]
    assert all(o.decision in plan.decisions for o in report.outcomes)


def test_an_untag_is_not_held_back_by_an_index_being_deleted() -> None:
    """Removing a tag never orphans anything: it goes ahead even while an index naming the image
    is still waiting to be deleted."""
    amd = art("amd", ("amd-v1", "keep-amd"), pushed=NOW - dt.timedelta(days=61))
    idx = art("idx", ("v1",), kind=Kind.INDEX, children=(amd.digest,), pushed=NOW - dt.timedelta(days=60))
    plan = delete_all([idx, amd])
    d = next(d for d in plan.decisions if d.digest == amd.digest)
    d.action, d.remove_tags = Action.UNTAG, ("amd-v1",)
    registry, backend = run(plan, [idx, amd])
    got = outcomes(asyncio.run(execute(plan, backend)))
    assert got[amd.label()] == (DONE, "")
