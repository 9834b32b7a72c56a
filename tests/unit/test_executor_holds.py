"""What the executor tells a user about items it held back, and that an item held by two indexes
stays when either one stays (issue 21: mutation survivors in executor.execute)."""

from __future__ import annotations

import asyncio
import datetime as dt

from regcollect.errors import AuthError
from regcollect.executor import DONE, FAILED, SKIPPED, execute
from regcollect.model import Artifact, Inventory, Kind
from regcollect.planner import Action, Decision, Plan, evaluate
from regcollect.policy import policy_from_flags
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


def forced(arts: list[Artifact]) -> Plan:
    """A plan deleting all of `arts`, whatever the planner would keep (odd subjects it keeps)."""
    plan = evaluate(
        Inventory("remote", "t", arts),
        policy_from_flags(
            repos=(), keep_last=0, keep_tags=(), older_than=None, untagged=True, keep_labels=()
        ),
        NOW,
    )
    for d in plan.decisions:
        d.action, d.remove_tags = Action.DELETE, d.artifact.tags
    return plan


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


def test_an_index_holds_its_children_in_its_own_repository_only() -> None:
    """The same digest in another repository is another manifest: a failed index delete in
    team/app does not keep team/mirror's copy."""
    amd = art("amd")
    idx = art("idx", ("v1",), kind=Kind.INDEX, children=(amd.digest,), pushed=NOW - dt.timedelta(days=60))
    copy = Artifact("team/mirror", amd.digest, tags=("amd",), created=NOW - dt.timedelta(days=70))
    arts = [idx, amd, copy]
    plan = delete_all(arts)
    registry, backend = run(plan, [idx, amd])
    registry.manifests.setdefault("team/mirror", {})[amd.digest] = registry.manifests[REPO][amd.digest]
    registry.tags.setdefault("team/mirror", {})["amd"] = amd.digest
    backend.fail_delete(REPO, idx.digest, "500")
    report = asyncio.run(execute(plan, backend))
    got = {(o.decision.repository, o.decision.digest): o.status for o in report.outcomes}
    assert got[("team/mirror", amd.digest)] == DONE and got[(REPO, amd.digest)] == SKIPPED


def test_a_referrer_naming_itself_as_subject_is_not_a_cycle() -> None:
    odd = art("odd", ("x",))
    odd.kind, odd.subject = Kind.REFERRER, odd.digest
    plan = forced([odd])
    _, backend = run(plan, [odd])
    assert [o.status for o in asyncio.run(execute(plan, backend)).outcomes] == [DONE]


def test_a_signature_of_an_sbom_stays_when_the_sbom_was_tagged_since_the_plan() -> None:
    image = art("image", ("v1",))
    sbom = art("sbom", kind=Kind.REFERRER, subject=image.digest)
    sbom_sig = art("sbomsig", kind=Kind.REFERRER, subject=sbom.digest)
    arts = [image, sbom, sbom_sig]
    plan = delete_all(arts)
    registry, backend = run(plan, arts)
    registry.move_tag(REPO, "keep-sbom", sbom.digest)
    got = outcomes(asyncio.run(execute(plan, backend)))
    assert got[sbom_sig.label()][0] == SKIPPED
    assert got[sbom_sig.label()][1].startswith(f"not deleted: its subject {sbom.label()} changed since plan")


def test_a_referrer_of_items_that_hold_each_other_is_decided_and_the_run_ends() -> None:
    a, b = art("a", ("a",)), art("b", ("b",))
    a.kind, a.subject = Kind.REFERRER, b.digest
    b.kind, b.subject = Kind.REFERRER, a.digest
    c = art("c", ("c",), kind=Kind.REFERRER, subject=a.digest)
    plan = forced([a, b, c])
    _, backend = run(plan, [a, b, c])
    got = outcomes(asyncio.run(asyncio.wait_for(execute(plan, backend), 5)))
    assert got[c.label()] == (DONE, "")
    assert got[a.label()][0] == SKIPPED and got[b.label()][0] == SKIPPED
