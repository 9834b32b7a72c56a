"""The executor deletes holders first and nothing while a holder stays (issue 20, items 3 and 19).

A user must never be left with an index whose children are gone, a referrer whose subject is gone
(kept forever afterwards), or a re-tagged image without its signatures; and a skip must say why.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import pytest

from regcollect.errors import RegistryError
from regcollect.executor import DONE, FAILED, SKIPPED, Report, execute
from regcollect.model import Artifact, Inventory, Kind
from regcollect.planner import Action, Decision, Plan, evaluate
from regcollect.policy import policy_from_flags
from tests.support.fakeregistry import FakeBackend, FakeRegistry

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
REPO = "team/app"


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def art(name: str, tags: tuple[str, ...] = (), **kw: object) -> Artifact:
    # Distinct times: one created time shared by several images is no evidence of age (ages.py).
    kw.setdefault("created", NOW - dt.timedelta(days=90, minutes=int(dg(name)[7:15], 16) % 100_000))
    return Artifact(repository=REPO, digest=dg(name), tags=tags, **kw)  # type: ignore[arg-type]


def delete_all(arts: list[Artifact], source: str = "remote") -> Plan:
    policy = policy_from_flags(
        repos=(), keep_last=0, keep_tags=(), older_than=None, untagged=True, keep_labels=()
    )
    plan = evaluate(Inventory(source, "t", arts, global_ids=source == "local"), policy, NOW)
    assert all(d.action is Action.DELETE for d in plan.decisions), [d.reason for d in plan.decisions]
    return plan


def run(plan: Plan, arts: list[Artifact]) -> tuple[FakeRegistry, FakeBackend]:
    registry = FakeRegistry.from_inventory(Inventory("remote", "t", arts))
    return registry, FakeBackend(registry, plan)


def outcomes(report: Report) -> dict[str, tuple[str, str]]:
    return {o.decision.artifact.label(): (o.status, o.detail) for o in report.outcomes}


def multiarch() -> list[Artifact]:
    amd, arm = art("amd"), art("arm")
    inner = art("inner", kind=Kind.INDEX, children=(arm.digest,))  # nested index
    idx = art("idx", ("v1",), kind=Kind.INDEX, children=(amd.digest, inner.digest))
    return [idx, inner, amd, arm]


def test_failed_index_delete_keeps_its_children_and_says_why() -> None:
    arts = multiarch()
    idx, inner, amd, arm = arts
    plan = delete_all(arts)
    registry, backend = run(plan, arts)
    backend.fail_delete(REPO, idx.digest, "500")
    report = asyncio.run(execute(plan, backend))
    got = outcomes(report)
    assert got[idx.label()][0] == FAILED
    assert got[amd.label()] == (
        SKIPPED,
        "not deleted: index team/app:v1 it belongs to was not deleted "
        "(failed: HTTP 500 from the registry (after retries))",
    )
    # Two levels down the reason names the index that held it and the first cause.
    assert got[arm.label()][0] == SKIPPED
    assert got[arm.label()][1].startswith(f"not deleted: index {inner.label()} it belongs to was not deleted")
    assert "because team/app:v1 failed: HTTP 500" in got[arm.label()][1]
    assert all(registry.exists(REPO, a.digest) for a in arts)  # `docker pull team/app:v1` still works


def test_index_skipped_because_a_tag_moved_onto_it_keeps_its_children() -> None:
    arts = multiarch()
    idx, _, amd, arm = arts
    plan = delete_all(arts)
    registry, backend = run(plan, arts)
    registry.move_tag(REPO, "latest", idx.digest)  # pushed since the plan
    report = asyncio.run(execute(plan, backend))
    got = outcomes(report)
    assert got[idx.label()] == (SKIPPED, "changed since plan: tag latest now points at it")
    assert got[amd.label()][1].startswith("not deleted: index team/app:v1 it belongs to was not deleted")
    assert "(skipped: changed since plan: tag latest now points at it)" in got[amd.label()][1]
    assert registry.reaches(REPO, idx.digest) <= set(registry.manifests[REPO])


def test_already_gone_counts_as_deleted_for_the_children() -> None:
    arts = multiarch()
    plan = delete_all(arts)
    registry, backend = run(plan, arts)
    registry.delete(REPO, arts[0].digest)  # someone else deleted the index meanwhile
    report = asyncio.run(execute(plan, backend))
    assert [o.status for o in report.outcomes] == [DONE] * 4
    assert not registry.manifests[REPO]


def signed() -> list[Artifact]:
    image = art("image", ("v1",))
    sig = art("sig", (image.digest.replace(":", "-") + ".sig",), kind=Kind.REFERRER, subject=image.digest)
    sbom = art("sbom", kind=Kind.REFERRER, subject=image.digest)
    sbom_sig = art("sbomsig", kind=Kind.REFERRER, subject=sbom.digest)  # a signature of the SBOM
    return [image, sig, sbom, sbom_sig]


def test_referrers_are_deleted_before_their_subject() -> None:
    arts = signed()
    image, sig, sbom, sbom_sig = arts
    plan = delete_all(arts)
    registry, backend = run(plan, arts)
    asyncio.run(execute(plan, backend, concurrency=1))
    order = [digest for _, digest in backend.deleted]
    assert order.index(sig.digest) < order.index(image.digest)
    assert order.index(sbom_sig.digest) < order.index(sbom.digest) < order.index(image.digest)
    # The plan shows the same order.
    shown = [d.digest for d in plan.changes]
    assert shown.index(sbom_sig.digest) < shown.index(sbom.digest) < shown.index(image.digest)


@pytest.mark.parametrize("stops_at", ["sig", "image", "sbom"])
def test_an_interrupted_run_leaves_no_referrer_without_its_subject(stops_at: str) -> None:
    arts = signed()
    plan = delete_all(arts)
    registry, backend = run(plan, arts)
    backend.fail_delete(REPO, dg(stops_at), "fatal")  # deletes switched off mid-run, or the token expired
    report = asyncio.run(execute(plan, backend, concurrency=1))
    assert report.fatal is not None
    for a in arts:
        if a.subject and registry.exists(REPO, a.digest):
            assert registry.exists(REPO, a.subject), f"{a.label()} lost its subject"


def test_a_referrer_stays_when_its_subject_was_retagged_since_the_plan() -> None:
    """Deleting signatures first must not strip them from an image someone rolled back to."""
    arts = signed()
    image, sig, sbom, sbom_sig = arts
    plan = delete_all(arts)
    registry, backend = run(plan, arts)
    registry.move_tag(REPO, "latest", image.digest)
    report = asyncio.run(execute(plan, backend))
    got = outcomes(report)
    assert got[image.label()] == (SKIPPED, "changed since plan: tag latest now points at it")
    assert got[sig.label()] == (
        SKIPPED,
        "not deleted: its subject team/app:v1 changed since plan: tag latest now points at it",
    )
    assert got[sbom_sig.label()][0] == SKIPPED  # through the SBOM it signs
    assert all(registry.exists(REPO, a.digest) for a in arts)


def test_order_comes_from_the_plan_itself_not_from_saved_depths() -> None:
    """`regcollect apply PLAN.json` of an older plan (depths the other way round) is as safe."""
    arts = multiarch() + signed()
    plan = delete_all(arts)
    for d in plan.decisions:
        d.depth = {Kind.INDEX: 9}.get(d.artifact.kind, 0) if d.artifact.subject is None else 0
    registry, backend = run(plan, arts)
    asyncio.run(execute(plan, backend, concurrency=1))
    order = [digest for _, digest in backend.deleted]
    by = {a.digest: a for a in arts}
    for digest in order:
        a = by[digest]
        for held in (*a.children, *([a.subject] if a.subject else [])):
            assert order.index(digest) < order.index(held), f"{a.label()} went after what it holds"


def test_items_that_hold_each_other_are_skipped_whole() -> None:
    """A tag can name any digest, so a cosign-style tag can close a cycle; no order is safe then."""
    child = art("child")
    idx = art("idx", ("v1",), kind=Kind.INDEX, children=(child.digest,))
    child.tags = (idx.digest.replace(":", "-") + ".sig",)
    child.kind, child.subject = Kind.REFERRER, idx.digest
    plan = delete_all([idx, child])
    registry, backend = run(plan, [idx, child])
    report = asyncio.run(execute(plan, backend))
    assert {o.status for o in report.outcomes} == {SKIPPED}
    assert all("cycle" in o.detail for o in report.outcomes)
    assert registry.exists(REPO, idx.digest) and registry.exists(REPO, child.digest)


class LocalEngine:
    """Docker's view, as narrow as the executor needs: a child image's delete can fail."""

    def __init__(self, fail: str):
        self.fail = fail
        self.deleted: list[str] = []

    async def verify(self, d: Decision) -> str | None:
        return None

    async def untag(self, d: Decision) -> str | None:
        return None

    async def delete(self, d: Decision) -> str | None:
        if d.digest == self.fail:
            raise RegistryError("engine answered 500")
        self.deleted.append(d.digest)
        return None


def test_local_parent_image_waits_for_its_child_in_every_repository() -> None:
    """Locally one id is one image: the parent waits for the child's items in all repositories."""
    parent = Artifact("base", dg("p"), tags=("1",), created=NOW - dt.timedelta(days=90))
    child_a = Artifact(
        "app", dg("c"), tags=("1",), created=NOW - dt.timedelta(days=80), children=(parent.digest,)
    )
    child_b = Artifact("mirror", dg("c"), tags=("1",), created=child_a.created, children=(parent.digest,))
    plan = delete_all([parent, child_a, child_b], source="local")
    shown = [d.repository for d in plan.changes]
    assert shown.index("base") > max(shown.index("app"), shown.index("mirror"))
    engine = LocalEngine(fail=child_a.digest)
    report = asyncio.run(execute(plan, engine))
    got = {o.decision.repository: o for o in report.outcomes}
    assert got["base"].status == SKIPPED
    assert got["base"].detail.startswith(
        "not deleted: child image app:1 built on it was not deleted (failed:"
    )
    assert parent.digest not in engine.deleted
