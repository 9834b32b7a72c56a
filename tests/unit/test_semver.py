"""order = "semver" keeps the highest versions, and unpulled_for keeps what is in use (issues 16, 18)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regcollect.errors import PolicyError
from regcollect.model import Artifact, Inventory
from regcollect.planner import Action, evaluate
from regcollect.policy import Policy, rule_from_table
from regcollect.semver import version_key

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)

# semver.org's own precedence example, lowest first
SPEC = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
]


def test_precedence_is_semver_orgs() -> None:
    keys = [version_key(v) for v in SPEC]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@pytest.mark.parametrize("tag", ["latest", "1.2", "v1", "01.2.3", "1.2.3-", "2024-05-01", "1.2.3.4", ""])
def test_what_is_not_a_version_is_not_ranked(tag: str) -> None:
    assert version_key(tag) is None


versions = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))
pre = st.lists(st.one_of(st.integers(0, 20).map(str), st.sampled_from(["alpha", "beta", "rc"])), max_size=3)


@given(versions, versions)
def test_releases_order_numerically_not_as_text(a, b) -> None:  # type: ignore[no-untyped-def]
    ka, kb = version_key(".".join(map(str, a))), version_key("v" + ".".join(map(str, b)))
    assert (ka < kb) == (a < b) and (ka == kb) == (a == b)  # type: ignore[operator]


@given(versions, pre)
def test_a_pre_release_is_below_its_release_and_build_metadata_is_ignored(v, p) -> None:  # type: ignore[no-untyped-def]
    release = ".".join(map(str, v))
    if p:
        assert version_key(f"{release}-{'.'.join(p)}") < version_key(release)  # type: ignore[operator]
    assert version_key(f"{release}+build.7") == version_key(release)


def art(tag: str, days: float, **kw) -> Artifact:  # type: ignore[no-untyped-def]
    d = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
    return Artifact("rel/app", d, tags=(tag,), created=NOW - dt.timedelta(days=days, seconds=len(tag)), **kw)


def decide(arts, pull_times=False, **rule):  # type: ignore[no-untyped-def]
    rule.setdefault("repositories", ["**"])
    inv = Inventory("remote", "hub", artifacts=arts, pull_times=pull_times)
    plan = evaluate(inv, Policy((rule_from_table(rule, "t: rule 1"),)), NOW)
    return {d.artifact.tags[0]: d for d in plan.decisions}


def test_keep_the_highest_versions_even_when_an_old_one_was_rebuilt_last() -> None:
    arts = [art("1.2.9", 1), art("2.0.0", 5), art("1.10.0", 6), art("1.9.0", 7), art("latest", 1)]
    by = decide(arts, keep_last=2, order="semver")
    assert by["2.0.0"].action is Action.KEEP and by["1.10.0"].action is Action.KEEP
    assert by["1.2.9"].action is Action.DELETE and by["1.9.0"].action is Action.DELETE
    assert by["latest"].action is Action.KEEP and "no tag is a semantic version" in by["latest"].reason


def test_unpulled_for_keeps_what_was_pulled_lately_and_says_the_last_pull() -> None:
    arts = [
        art("a", 200, pulled=NOW - dt.timedelta(days=3)),
        art("b", 200, pulled=NOW - dt.timedelta(days=120)),
        art("c", 200),  # never pulled
    ]
    by = decide(arts, pull_times=True, unpulled_for="90d")
    assert by["a"].action is Action.KEEP and "within unpulled_for 90d" in by["a"].reason
    assert by["b"].action is Action.DELETE and "last pull" in by["b"].reason
    assert by["c"].action is Action.DELETE and "never pulled" in by["c"].reason


def test_unpulled_for_on_a_registry_without_pull_times_is_an_error_not_never_pulled() -> None:
    with pytest.raises(PolicyError, match="unpulled_for needs last-pull times"):
        decide([art("a", 200)], unpulled_for="90d")


def test_a_pin_by_repository_and_digest_keeps_only_that_repository() -> None:
    a, b = art("x", 100), art("x", 100)
    b.repository = "other/app"
    inv = Inventory(
        "remote", "r", artifacts=[a, b], pinned={f"rel/app@{a.digest}": "kept: in use (from prod.yaml)"}
    )
    rule = rule_from_table({"repositories": ["**"], "older_than": "1d"}, "t: rule 1")
    plan = evaluate(inv, Policy((rule,)), NOW)
    by = {d.repository: d for d in plan.decisions}
    assert by["rel/app"].action is Action.KEEP and by["rel/app"].reason == "kept: in use (from prod.yaml)"
    assert by["other/app"].action is Action.DELETE
