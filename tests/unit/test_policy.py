"""Policy files and flags become one Policy; every mistake is refused with file, rule and key."""

from __future__ import annotations

import datetime as dt

import pytest

from regcollect.errors import EXIT_USAGE, PolicyError
from regcollect.globs import repo_matches
from regcollect.policy import load_policy, policy_from_flags
from regcollect.units import parse_duration, parse_size


def write(tmp_path, text):
    p = tmp_path / "policy.toml"
    p.write_text(text)
    return p


def test_first_matching_rule_governs(tmp_path):
    p = write(
        tmp_path,
        """
[[rules]]
repositories = ["team/app"]
keep_last = 2
keep_tags = ["release-*"]

[[rules]]
repositories = ["team/*"]
keep_last = 4
older_than = "30d"
""",
    )
    policy = load_policy(p)
    assert policy.rule_for("team/app").keep_last == 2
    assert policy.rule_for("team/app").keep_tags == ("release-*",)
    assert policy.rule_for("team/web").keep_last == 4
    assert policy.rule_for("team/web").older_than == dt.timedelta(days=30)
    assert policy.rule_for("other/x") is None
    assert policy.rule_for("team/a/b") is None  # * stays within one path segment


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no retention rule"),
        ("[[rules]]\nrepositories=['a']\nkeep_tags=['x']\n", "rule 1: no retention rule"),
        ("[[rules]]\nrepositories=['a']\nkeep_last=-1\n", "rule 1: key 'keep_last' must not be negative"),
        ("[[rules]]\nrepositories=['a']\nkeep_last='3'\n", "rule 1: key 'keep_last' must be an integer"),
        ("[[rules]]\nrepositories=['a']\nkeep_last=true\n", "key 'keep_last' must be an integer"),
        ("[[rules]]\nrepositories=['a']\nolder_than='30 days'\n", "rule 1: key 'older_than': bad duration"),
        ("[[rules]]\nrepositories=['a']\nolder_than=30\n", "key 'older_than' must be a string"),
        ("[[rules]]\nrepositories=['a']\nkeep_lats=3\n", "rule 1: unknown key 'keep_lats'"),
        ("[[rules]]\nkeep_last=3\n", "rule 1: key 'repositories' is required"),
        ("[[rules]]\nrepositories=[]\nkeep_last=3\n", "at least one pattern"),
        ("[[rules]]\nrepositories=['a']\nuntagged='yes'\n", "key 'untagged' must be true or false"),
        (
            "[[rules]]\nrepositories=['a']\nkeep_last=1\n[[rules]]\nrepositories=['b']\nkeep_tags=['x']\n",
            "rule 2",
        ),
        ("[[rules]\nrepositories=['a']\n", "malformed TOML"),
        ("keep_last = 3\n", "unknown top-level key 'keep_last'"),
        ("[[rules]]\nrepositories=['a']\nkeep_last=1\nkeep_labels=['=x']\n", "key 'keep_labels'"),
    ],
)
def test_bad_policies_are_refused_with_file_rule_and_key(tmp_path, text, message):
    p = write(tmp_path, text)
    with pytest.raises(PolicyError) as exc:
        load_policy(p)
    assert message in str(exc.value)
    assert str(p) in str(exc.value)
    assert exc.value.exit_code == EXIT_USAGE


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.toml")


def test_flags_make_the_same_policy_as_a_file(tmp_path):
    p = write(
        tmp_path,
        "[[rules]]\nrepositories=['team/*']\nkeep_last=3\nkeep_tags=['stable']\n"
        "older_than='2w'\nuntagged=true\nkeep_labels=['keep=yes']\n",
    )
    from_file = load_policy(p).rules[0]
    from_flags = policy_from_flags(
        repos=("team/*",),
        keep_last=3,
        keep_tags=("stable",),
        older_than="2w",
        untagged=True,
        keep_labels=("keep=yes",),
    ).rules[0]
    for key in ("repositories", "keep_last", "keep_tags", "older_than", "untagged", "keep_labels"):
        assert getattr(from_file, key) == getattr(from_flags, key)


def test_keep_tag_alone_is_refused():
    with pytest.raises(PolicyError, match="no retention rule"):
        policy_from_flags(
            repos=(), keep_last=None, keep_tags=("x",), older_than=None, untagged=False, keep_labels=()
        )


def test_globs():
    assert repo_matches("team/*", "team/app")
    assert not repo_matches("team/*", "team/a/b")
    assert repo_matches("team/**", "team/a/b")
    assert repo_matches("**", "anything/at/all")
    assert repo_matches("app?", "app1")
    assert repo_matches("[a-m]*/**", "alpha/x/y") and not repo_matches("[a-m]*/**", "zeta/x")
    assert repo_matches("[!a-m]*", "zeta") and not repo_matches("[!a-m]*", "alpha")


def test_durations_and_sizes():
    assert parse_duration("30d") == dt.timedelta(days=30)
    assert parse_duration("12h") == dt.timedelta(hours=12)
    assert parse_duration("90m") == dt.timedelta(minutes=90)
    assert parse_duration("2w") == dt.timedelta(weeks=2)
    assert parse_duration("1d12h") == dt.timedelta(hours=36)
    for bad in ["", "30", "d", "3x", "-1d", "1.5d"]:
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_size("20GB") == 20 * 10**9
    assert parse_size("1GiB") == 2**30
    assert parse_size("512") == 512
    with pytest.raises(ValueError):
        parse_size("lots")
