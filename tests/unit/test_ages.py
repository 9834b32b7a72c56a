"""Reproducible-build timestamps and unknown ages never make an image old (issue 20, items 5-6).

ko, jib, apko, bazel rules_oci and nix write created = 1970-01-01, Buildpacks 1980-01-01, and
SOURCE_DATE_EPOCH stamps many images with one time. Such times say nothing about when an image
was pushed; regcollect judges by push time or first-seen time instead, or keeps the image."""

from __future__ import annotations

import datetime as dt
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from regcollect.ages import Age, newest
from regcollect.model import Artifact, Inventory
from regcollect.planner import Action, evaluate
from regcollect.policy import Policy, rule_from_table

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
BUILDPACKS = dt.datetime(1980, 1, 1, tzinfo=dt.UTC)


def art(tag: str, created: dt.datetime | None, **kw) -> Artifact:  # type: ignore[no-untyped-def]
    digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
    return Artifact(repository="team/app", digest=digest, tags=(tag,), created=created, **kw)


def decide(arts: list[Artifact], **rule):  # type: ignore[no-untyped-def]
    rule.setdefault("repositories", ["**"])
    plan = evaluate(
        Inventory("remote", "r", artifacts=arts), Policy((rule_from_table(rule, "t: rule 1"),)), NOW
    )
    return plan, {d.artifact.tags[0]: d for d in plan.decisions}


def days(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


def test_older_than_alone_deletes_nothing_of_a_reproducible_repository() -> None:
    arts = [art(t, EPOCH) for t in ("latest", "v1", "v2")]
    plan, by = decide(arts, older_than="30d")
    assert plan.count(Action.DELETE) == 0
    assert all("age unknown" in d.reason for d in by.values())
    assert any("3 image(s) carry a created time that says nothing" in w for w in plan.warnings)


def test_keep_last_does_not_rank_1970_images_by_tag_text() -> None:
    arts = [art(t, EPOCH) for t in ("v9", "v10", "v11")]
    plan, by = decide(arts, keep_last=1)
    assert plan.count(Action.DELETE) == 0  # v9 sorts above v10 as text: never a reason


def test_first_seen_time_serves_when_created_is_a_build_stamp() -> None:
    old = art("old", BUILDPACKS, first_seen=days(60))
    fresh = art("latest", BUILDPACKS, first_seen=days(0.01))
    plan, by = decide([old, fresh], older_than="30d")
    assert by["old"].action is Action.DELETE and "(by first seen time)" in by["old"].reason
    assert (
        by["latest"].action is Action.KEEP and "younger than 30d (by first seen time)" in by["latest"].reason
    )


def test_a_registry_push_time_is_preferred_to_first_seen() -> None:
    a = art("a", EPOCH, pushed=days(2), first_seen=days(90))
    plan, by = decide([a, art("b", EPOCH, pushed=days(40))], older_than="30d")
    assert by["a"].action is Action.KEEP and by["a"].age == Age(days(2), "pushed", True)
    assert by["b"].action is Action.DELETE


def test_one_created_time_shared_by_several_images_is_not_evidence() -> None:
    commit = days(400)  # SOURCE_DATE_EPOCH: every rebuild carries the commit's time
    plan, by = decide(
        [art("latest", commit, first_seen=days(0.1)), art("v1", commit, first_seen=days(0.1))],
        older_than="30d",
    )
    assert plan.count(Action.DELETE) == 0


def test_unknown_created_is_never_deleted_first_under_keep_last() -> None:
    artifact = art("artifact", None)  # an OCI artifact without a created time: maybe the newest
    old, new = art("old", days(50)), art("new", days(1))
    plan, by = decide([artifact, old, new], keep_last=1)
    assert by["artifact"].action is Action.KEEP and "age unknown" in by["artifact"].reason
    assert by["new"].action is Action.KEEP
    assert by["old"].action is Action.DELETE


def test_ties_at_the_keep_last_boundary_are_all_kept() -> None:
    t = days(5)
    arts = [art("a", days(1)), art("b", t, first_seen=t), art("c", t, first_seen=t), art("d", days(9))]
    arts[1].created = arts[2].created = None  # both judged by the same first-seen time
    plan, by = decide(arts, keep_last=2)
    assert by["a"].action is Action.KEEP
    assert by["b"].action is Action.KEEP and by["c"].action is Action.KEEP
    assert "their order is unknown" in by["b"].reason
    assert by["d"].action is Action.DELETE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 5)), max_size=12), st.integers(0, 6))
def test_newest_keeps_at_least_n_and_never_splits_a_tie(times: list[int | None], keep: int) -> None:
    ranked = {i: None if t is None else days(t) for i, t in enumerate(times)}
    kept, tied = newest(ranked, keep)
    known = [i for i, t in enumerate(times) if t is not None]
    assert len(kept) >= min(keep, len(known))
    for i in kept:
        for j in known:
            if times[j] == times[i] or (times[j] is not None and times[j] < times[i]):  # type: ignore[operator]
                assert j in kept  # everything at least as new as a kept image is kept
    assert tied <= kept
