"""keep_tags globs, label matches and rule lookup: what protects content. Every earlier keep-tag test
used a literal tag, so `--keep-tag 'release-*'` could have protected nothing with the suite green."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from regcollect.errors import PolicyError
from regcollect.globs import tag_matches
from regcollect.model import Artifact, Inventory
from regcollect.planner import Action, evaluate
from regcollect.policy import (
    LabelMatch,
    Policy,
    Rule,
    flags_given,
    policy_from_flags,
    rule_from_table,
)

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def image(name: str, *tags: str, days: int = 90, repo: str = "team/app", **kw: object) -> Artifact:
    digest = "sha256:" + hashlib.sha256((repo + name).encode()).hexdigest()
    created = NOW - dt.timedelta(days=days, seconds=int(digest[7:15], 16) % 10_000)
    return Artifact(repository=repo, digest=digest, tags=tags, created=created, **kw)  # type: ignore[arg-type]


def decide(arts: list[Artifact], **flags: object) -> dict[str, tuple[Action, str, tuple[str, ...]]]:
    args: dict[str, object] = dict(
        repos=(), keep_last=None, keep_tags=(), older_than="30d", untagged=False, keep_labels=()
    )
    args.update(flags)
    plan = evaluate(Inventory("remote", "t", arts), policy_from_flags(**args), NOW)  # type: ignore[arg-type]
    return {
        d.artifact.tags[0] if d.artifact.tags else d.digest: (d.action, d.reason, d.remove_tags)
        for d in plan.decisions
    }


def test_keep_tag_glob_protects_every_matching_tag() -> None:
    """`--keep-tag 'release-*'`: old releases stay, everything else old goes."""
    got = decide(
        [
            image("r1", "release-1.0"),
            image("r2", "release-2.3"),
            image("dev", "dev-7"),
            image("rel", "release"),
        ],
        keep_tags=("release-*",),
    )
    assert got["release-1.0"][:2] == (Action.KEEP, "kept: tag release-1.0 matches keep_tags")
    assert got["release-2.3"][0] is Action.KEEP
    assert got["dev-7"][0] is Action.DELETE
    assert got["release"][0] is Action.DELETE  # the glob needs the dash


def test_keep_tag_glob_on_a_digest_with_other_tags_untags_only_the_others() -> None:
    got = decide([image("x", "build-99", "release-3", "nightly")], keep_tags=("release-*",))
    action, reason, gone = got["build-99"]
    assert action is Action.UNTAG and gone == ("build-99", "nightly")
    assert reason == "untagged: older than 30d; the digest stays for tag release-3 (keep_tags)"


def test_every_tag_matching_some_keep_glob_keeps_the_digest_whole() -> None:
    got = decide([image("x", "v1.2", "stable")], keep_tags=("v[0-9]*", "stab?e"))
    assert got["v1.2"][:2] == (Action.KEEP, "kept: tag v1.2, stable matches keep_tags")


@pytest.mark.parametrize(
    "pattern, tag, expected",
    [
        ("release-*", "release-1", True),
        ("release-*", "Release-1", False),  # tags are case-sensitive
        ("release-*", "prerelease-1", False),
        ("v?", "v1", True),
        ("v?", "v10", False),
        ("v[0-9]", "v7", True),
        ("v[!0-9]", "v7", False),
        ("*", "anything", True),
        ("latest", "latest", True),
        ("latest", "latest2", False),
    ],
)
def test_tag_matches_is_a_shell_glob_over_the_whole_tag(pattern: str, tag: str, expected: bool) -> None:
    assert tag_matches(pattern, tag) is expected


def test_keep_label_matches_key_or_key_and_value() -> None:
    assert LabelMatch.parse("keep").matches({"keep": ""})
    assert LabelMatch.parse("keep").matches({"keep": "no"})
    assert not LabelMatch.parse("keep").matches({"other": "keep"})
    assert LabelMatch.parse("tier=prod").matches({"tier": "prod"})
    assert not LabelMatch.parse("tier=prod").matches({"tier": "dev"})
    assert LabelMatch.parse("tier=").matches({"tier": ""}) and not LabelMatch.parse("tier=").matches(
        {"tier": "x"}
    )
    assert LabelMatch.parse(" tier =a=b") == LabelMatch("tier", "a=b")
    assert str(LabelMatch("tier", "prod")) == "tier=prod" and str(LabelMatch("keep")) == "keep"
    with pytest.raises(ValueError, match="bad label '=x'"):
        LabelMatch.parse("=x")


def test_keep_label_keeps_an_old_image_and_says_which() -> None:
    got = decide(
        [image("a", "v1", labels={"tier": "prod"}), image("b", "v2", labels={"tier": "dev"})],
        keep_labels=("tier=prod",),
    )
    assert got["v1"][:2] == (Action.KEEP, "kept: label tier=prod matches keep_labels")
    assert got["v2"][0] is Action.DELETE


def test_first_matching_rule_by_name_or_alias() -> None:
    a = Rule(repositories=("team/*",), keep_last=1, origin="a")
    b = Rule(repositories=("**",), untagged=True, origin="b")
    policy = Policy(rules=(a, b))
    assert policy.rule_for("team/app") is a
    assert policy.rule_for("other/app") is b
    assert policy.rule_for("library/busybox", ["team/busybox"]) is a  # locally, another name of the image
    assert policy.rule_for("library/busybox") is b
    assert Policy(rules=(a,)).rule_for("x") is None
    assert policy.patterns == ["team/*", "**"]


def test_rules_describe_themselves_for_the_plan() -> None:
    rule = rule_from_table(
        {
            "repositories": "team/*",
            "keep_last": 3,
            "keep_tags": ["release-*"],
            "older_than": "30d",
            "untagged": True,
            "keep_labels": ["keep"],
        },
        "p.toml: rule 2",
    )
    assert rule.origin == "rule 2"
    assert rule.describe() == (
        "rule 2: repositories=['team/*'], keep_last=3, keep_tags=['release-*'], older_than=30d, "
        "untagged=true, keep_labels=['keep']"
    )
    assert rule.to_json() == {
        "origin": "rule 2",
        "repositories": ["team/*"],
        "keep_last": 3,
        "keep_tags": ["release-*"],
        "older_than": "30d",
        "untagged": True,
        "keep_labels": ["keep"],
        "unpulled_for": None,
        "order": "created",
    }
    assert Rule(repositories=("a",), untagged=True).describe() == "flags: repositories=['a'], untagged=true"


def test_flags_default_to_every_repository_and_refuse_protect_only() -> None:
    p = policy_from_flags(
        repos=(), keep_last=None, keep_tags=(), older_than=None, untagged=True, keep_labels=()
    )
    assert p.rules[0].repositories == ("**",) and p.rules[0].untagged and p.source == "flags"
    with pytest.raises(PolicyError, match="give --keep-last, --older-than, --unpulled-for or --untagged"):
        policy_from_flags(
            repos=("a",), keep_last=None, keep_tags=("x",), older_than=None, untagged=False, keep_labels=()
        )
    assert (
        policy_from_flags(
            repos=("a",), keep_last=0, keep_tags=(), older_than=None, untagged=False, keep_labels=()
        )
        .rules[0]
        .keep_last
        == 0
    )


def test_flags_given() -> None:
    assert not flags_given(a=None, b=False, c=(), d=[])
    assert flags_given(a=0) and flags_given(b=("x",)) and flags_given(c=True)


@pytest.mark.parametrize(
    "table, message",
    [
        ({"repositories": ["a"], "keep_last": True}, "key 'keep_last' must be an integer, got True"),
        ({"repositories": ["a"], "keep_last": -1}, "key 'keep_last' must not be negative, got -1"),
        ({"repositories": ["a"], "older_than": 30}, "key 'older_than' must be a string"),
        ({"repositories": ["a"], "untagged": "yes"}, "key 'untagged' must be true or false, got 'yes'"),
        ({"repositories": [], "untagged": True}, "key 'repositories' must name at least one pattern"),
        ({"repositories": [""], "untagged": True}, "key 'repositories' must be a list of non-empty strings"),
        ({"untagged": True}, "key 'repositories' is required"),
        ({"repositories": ["a"], "untagged": True, "keep_labels": ["=v"]}, "key 'keep_labels': bad label"),
        ({"repositories": ["a"], "keep_tags": ["x"]}, "w: no retention rule: set keep_last"),
    ],
)
def test_bad_rules_are_refused_naming_the_key(table: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace("[", r"\[")):
        rule_from_table(table, "w")
