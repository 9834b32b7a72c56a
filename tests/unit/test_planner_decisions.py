"""Each path of the planner's per-image decision, as a user reads it in the plan: the action, the
reason, the rule that decided it and the age it judged by (the JSON plan carries both; a report
"by rule 2" must name the rule that really decided). Issue 21: these survived mutation."""

from __future__ import annotations

import datetime as dt
import hashlib

from regcollect.ages import CREATED, FIRST_SEEN, PUSHED, Age
from regcollect.model import Artifact, Inventory
from regcollect.planner import Action, Decision, evaluate
from regcollect.policy import Policy, rule_from_table

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def days(n: float) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


def art(name: str, *tags: str, created: dt.datetime | None = None, **kw) -> Artifact:  # type: ignore[no-untyped-def]
    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return Artifact("team/app", digest, tags=tags, created=created, **kw)


def decide(arts: list[Artifact], **rule) -> dict[str, Decision]:  # type: ignore[no-untyped-def]
    rule.setdefault("repositories", ["team/*"])
    other = rule_from_table({"repositories": ["other/*"], "keep_last": 1}, "p.toml: rule 1")
    policy = Policy((other, rule_from_table(rule, "p.toml: rule 2")))
    plan = evaluate(Inventory("remote", "r", artifacts=arts), policy, NOW)
    return {(d.artifact.tags[0] if d.artifact.tags else d.artifact.digest): d for d in plan.decisions}


def test_untagged_not_selected_is_kept_by_the_rule() -> None:
    a = art("u", created=days(90))
    d = decide([a], older_than="30d")[a.digest]
    assert (d.action, d.reason, d.rule) == (
        Action.KEEP,
        "kept: untagged, and the rule does not select untagged",
        "rule 2",
    )


def test_untagged_younger_than_older_than_is_kept_with_its_age() -> None:
    a = art("u", created=days(5))
    d = decide([a], older_than="30d", untagged=True)[a.digest]
    assert (d.action, d.reason, d.rule, d.age) == (
        Action.KEEP,
        "kept: younger than 30d",
        "rule 2",
        Age(days(5), CREATED),
    )


def test_untagged_young_by_push_time_says_by_which_time() -> None:
    a = art("u", created=dt.datetime(1970, 1, 1, tzinfo=dt.UTC), pushed=days(5))
    d = decide([a], older_than="30d", untagged=True)[a.digest]
    assert d.reason == "kept: younger than 30d (by pushed time)" and d.age == Age(days(5), PUSHED, True)


def test_untagged_without_any_age_is_kept_under_older_than() -> None:
    a = art("u")
    d = decide([a], older_than="30d", untagged=True)[a.digest]
    assert d.action is Action.KEEP
    assert d.reason == "kept: age unknown (no usable created time), so it may be younger than older_than"


def test_untagged_old_enough_is_deleted_with_its_rule_and_age() -> None:
    a = art("u", created=days(60))
    d = decide([a], older_than="30d", untagged=True)[a.digest]
    assert (d.action, d.reason, d.rule, d.age) == (
        Action.DELETE,
        "deleted: untagged and nothing kept reaches it",
        "rule 2",
        Age(days(60), CREATED),
    )


def test_tagged_under_an_untagged_only_rule_is_kept() -> None:
    a = art("t", "v1", created=days(60))
    d = decide([a], untagged=True)["v1"]
    assert (d.action, d.reason, d.rule) == (
        Action.KEEP,
        "kept: tagged, and the rule selects only untagged content",
        "rule 2",
    )


def test_keep_last_keeps_the_most_recent_and_deletes_the_rest_with_every_tag() -> None:
    new, old = art("n", "v2", created=days(10)), art("o", "v1", "stable", created=days(20))
    by = decide([new, old], keep_last=1)
    assert (by["v2"].action, by["v2"].reason, by["v2"].rule, by["v2"].age) == (
        Action.KEEP,
        "kept: among the 1 most recent",
        "rule 2",
        Age(days(10), CREATED),
    )
    d = by["v1"]
    assert (d.action, d.reason, d.rule, d.remove_tags, d.age) == (
        Action.DELETE,
        "deleted: not among the 1 most recent",
        "rule 2",
        ("v1", "stable"),
        Age(days(20), CREATED),
    )


def test_a_tie_on_the_last_place_is_kept_and_says_at_what_time() -> None:
    a, b = art("a", "a", created=days(10)), art("b", "b", created=days(10))
    c = art("c", "c", created=days(5))
    by = decide([a, b, c], keep_last=2)
    # a and b share one created time: not evidence, so they are judged by first seen (none here).
    assert by["a"].reason == "kept: age unknown (no usable created time), so it cannot rank below others"
    a, b = art("a", "a", pushed=days(10)), art("b", "b", pushed=days(10))
    by = decide([a, b, c], keep_last=2)
    stamp = days(10).strftime("%Y-%m-%d %H:%M:%S")
    assert by["a"].reason == (
        f"kept: among the 2 most recent (ties in time {stamp} with others; their order is unknown)"
    )
    assert by["a"].age == Age(days(10), PUSHED) and by["a"].rule == "rule 2"


def test_semver_order_names_versions() -> None:
    arts = [
        art("1", "1.0.0", created=days(3)),
        art("2", "2.0.0", created=days(9)),
        art("x", "dev", created=days(1)),
    ]
    by = decide(arts, keep_last=1, order="semver")
    assert by["2.0.0"].reason == "kept: among the 1 highest versions"
    assert by["1.0.0"].action is Action.DELETE
    assert by["dev"].reason == (
        "kept: no tag is a semantic version (order = semver), so it cannot rank below others"
    )
    assert by["dev"].rule == "rule 2" and by["dev"].age == Age(days(1), CREATED)
    ties = [art("a", "1.0.0", created=days(3)), art("b", "v1.0.0", created=days(4))]
    by = decide([*ties, art("c", "0.9.0", created=days(2))], keep_last=1, order="semver")
    assert "(ties in version with others; their order is unknown)" in by["1.0.0"].reason


def test_older_than_floor_under_keep_last_keeps_young_images_with_their_age() -> None:
    arts = [
        art("n", "v3", created=days(1)),
        art("m", "v2", created=days(2)),
        art("o", "v1", created=days(40)),
    ]
    by = decide(arts, keep_last=1, older_than="30d")
    assert (by["v2"].action, by["v2"].reason, by["v2"].rule, by["v2"].age) == (
        Action.KEEP,
        "kept: younger than 30d",
        "rule 2",
        Age(days(2), CREATED),
    )
    assert by["v1"].reason == "deleted: not among the 1 most recent and older than 30d"


def test_keep_labels_and_keep_tags_name_what_matched_and_the_rule() -> None:
    lab = art("l", "v1", created=days(90), labels={"keep": "yes"})
    d = decide([lab], older_than="30d", keep_labels=["keep=yes"])["v1"]
    assert (d.action, d.reason, d.rule) == (Action.KEEP, "kept: label keep=yes matches keep_labels", "rule 2")
    rel = art("r", "release-1", "release-2", created=days(90))
    d = decide([rel], older_than="30d", keep_tags=["release-*"])["release-1"]
    assert (d.action, d.reason, d.rule) == (
        Action.KEEP,
        "kept: tag release-1, release-2 matches keep_tags",
        "rule 2",
    )


def test_a_digest_with_one_kept_tag_is_untagged_of_the_others() -> None:
    a = art("a", "ci-1", "release-1", "ci-2", "release-2", created=days(90))
    d = decide([a], older_than="30d", keep_tags=["release-*"])["ci-1"]
    assert (d.action, d.reason, d.rule, d.remove_tags, d.age) == (
        Action.UNTAG,
        "untagged: older than 30d; the digest stays for tag release-1, release-2 (keep_tags)",
        "rule 2",
        ("ci-1", "ci-2"),
        Age(days(90), CREATED),
    )


def test_first_seen_age_is_carried_into_the_decision() -> None:
    a = art("a", "v1", created=dt.datetime(1980, 1, 1, tzinfo=dt.UTC), first_seen=days(60))
    d = decide([a], older_than="30d")["v1"]
    assert d.action is Action.DELETE and d.age == Age(days(60), FIRST_SEEN, True)
    assert d.reason == "deleted: older than 30d (by first seen time)"


def test_the_build_stamp_warning_names_the_repository_the_count_and_the_evidence_used() -> None:
    stamp = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    arts = [art("a", "a", created=stamp, pushed=days(40)), art("b", "b", created=stamp)]
    plan = evaluate(
        Inventory("remote", "r", artifacts=arts),
        Policy((rule_from_table({"repositories": ["**"], "older_than": "30d"}, "p: rule 1"),)),
        NOW,
    )
    assert plan.warnings == [
        "repository team/app: 2 image(s) carry a created time that says nothing (before 2000, in the "
        "future, or the same for several images: reproducible builds); judged by pushed, unknown time "
        "instead; those of unknown age are kept"
    ]
    arts = [art("a", "a", created=stamp, pushed=days(40))]
    plan = evaluate(
        Inventory("remote", "r", artifacts=arts),
        Policy((rule_from_table({"repositories": ["**"], "older_than": "30d"}, "p: rule 1"),)),
        NOW,
    )
    assert plan.warnings[0].endswith("judged by pushed time instead")


def test_a_plan_carries_its_target_time_and_notes_and_leaves_the_collector_on() -> None:
    import gc

    from regcollect.protect import parse_text

    protect = tuple(parse_text("reg.example/other:1\n", "deploy.txt"))
    policy = Policy(
        (rule_from_table({"repositories": ["**"], "keep_last": 1}, "p: rule 1"),), protect=protect
    )
    inv = Inventory("remote", "reg.example", artifacts=[art("a", "v1", created=days(3))])
    plan = evaluate(inv, policy, NOW)
    assert (plan.source, plan.target, plan.now) == ("remote", "reg.example", NOW)
    assert plan.notes == ["deploy.txt:1: reg.example/other:1 is not in reg.example: nothing to keep"]
    assert gc.isenabled()


def test_unpulled_for_counts_a_pull_exactly_that_long_ago_as_not_recent() -> None:
    a = art("a", "v1", created=days(90), pulled=days(30))
    inv = Inventory("remote", "r", artifacts=[a], pull_times=True)
    policy = Policy((rule_from_table({"repositories": ["**"], "unpulled_for": "30d"}, "p: rule 1"),))
    d = evaluate(inv, policy, NOW).decisions[0]
    assert d.action is Action.DELETE
    assert d.reason.endswith(f"not pulled for 30d (last pull {days(30):%Y-%m-%d})")
    a = art("b", "v1", created=days(90))
    d = evaluate(Inventory("remote", "r", artifacts=[a], pull_times=True), policy, NOW).decisions[0]
    assert d.reason.endswith("(never pulled)")


def test_an_unpulled_for_reason_alone_reads_cleanly() -> None:
    a = art("a", "v1", created=days(90), pulled=days(40))
    policy = Policy((rule_from_table({"repositories": ["**"], "unpulled_for": "30d"}, "p: rule 1"),))
    d = evaluate(Inventory("remote", "r", artifacts=[a], pull_times=True), policy, NOW).decisions[0]
    assert d.reason == f"deleted: not pulled for 30d (last pull {days(40):%Y-%m-%d})"
