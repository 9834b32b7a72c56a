"""A policy file read whole: [registry], protect files next to it, each rule's origin, the JSON
form a plan carries, and the exact one-line error for each mistake (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from regcollect.errors import PolicyError
from regcollect.policy import load_policy

RULE = '[[rules]]\nrepositories = ["team/*"]\nkeep_last = 2\n'


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.toml"
    p.write_text(text)
    return p


def refused(tmp_path: Path, text: str) -> str:
    p = write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policy(p)
    return str(err.value).replace(str(p), "P")


def test_a_full_policy_file_is_read_with_its_registry_and_protect_files(tmp_path: Path) -> None:
    (tmp_path / "deploy.txt").write_text("reg.test/team/app:1.4.2\n")
    p = write(
        tmp_path,
        'protect = ["deploy.txt"]\n[registry]\napi = "github"\napi_url = "https://api.test"\n'
        + RULE
        + '[[rules]]\nrepositories = ["**"]\nuntagged = true\nkeep_tags = "release-*"\n',
    )
    policy = load_policy(p)
    assert policy.source == str(p)
    assert policy.registry == {"api": "github", "api_url": "https://api.test"}
    assert [x.source for x in policy.protect] == ["deploy.txt"]
    assert [r.origin for r in policy.rules] == ["rule 1", "rule 2"]
    assert policy.rules[1].keep_tags == ("release-*",)  # one string is a list of one
    doc = policy.to_json()
    assert doc["source"] == str(p) and doc["protect"] == ["deploy.txt"]
    assert doc["rules"][0] == {
        "origin": "rule 1",
        "repositories": ["team/*"],
        "keep_last": 2,
        "keep_tags": [],
        "older_than": None,
        "untagged": False,
        "keep_labels": [],
        "unpulled_for": None,
        "order": "created",
    }
    assert "protect" not in load_policy(write(tmp_path, RULE)).to_json()


def test_a_policy_without_registry_table_reaches_no_api(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, RULE)).registry == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[registry]\napi = "quay"\n' + RULE,
            "P: [registry]: key 'api' must be distribution or github or dockerhub or gitlab or harbor, got 'quay'",
        ),
        ("[registry]\napi_url = 3\n" + RULE, "P: [registry]: key 'api_url' must be a URL string, got 3"),
        ('[registry]\nurl = "x"\n' + RULE, "P: [registry]: unknown key 'url' (known: api, api_url)"),
        ('registry = "x"\n' + RULE, "P: [registry]: must be a table"),
        ("rules = 3\n", "P: 'rules' must be an array of tables ([[rules]])"),
        ("rules = [1, 2]\n", "P: 'rules' must be an array of tables ([[rules]])"),
        ("[registry]\n", "P: no retention rule: add at least one [[rules]] table"),
        (
            "other = 1\n" + RULE,
            "P: unknown top-level key 'other' (expected [[rules]], [registry] and protect)",
        ),
        ("protect = [1]\n" + RULE, "P: key 'protect' must be a list of non-empty strings"),
        (RULE + 'keep_tags = [""]\n', "P: rule 1: key 'keep_tags' must be a list of non-empty strings"),
        (RULE + "keep_labels = 3\n", "P: rule 1: key 'keep_labels' must be a list of non-empty strings"),
        (
            "[[rules]]\nrepositories = 3\nkeep_last = 1\n",
            "P: rule 1: key 'repositories' must be a list of non-empty strings",
        ),
        (RULE + "unpulled_for = 3\n", "P: rule 1: key 'unpulled_for' must be a string such as \"30d\""),
        (RULE + 'order = "name"\n', "P: rule 1: key 'order' must be \"created\" or \"semver\", got 'name'"),
        (
            RULE + "keep = 1\n",
            "P: rule 1: unknown key 'keep' (known: keep_labels, keep_last, keep_tags, "
            "older_than, order, repositories, unpulled_for, untagged)",
        ),
        ('[[rules]]\nrepositories = ["a"]\n[[rules]]\nrepositories = ["b"]\nkeep_tags = ["x"]\n', None),
    ],
)
def test_each_mistake_names_the_file_the_rule_and_the_key(
    tmp_path: Path, text: str, message: str | None
) -> None:
    got = refused(tmp_path, text)
    if message is not None:
        assert got == message
    else:
        assert got.startswith("P: rule 1: ")


def test_a_rule_origin_is_rule_n_whatever_the_path(tmp_path: Path) -> None:
    d = tmp_path / "a: b"
    d.mkdir()
    p = d / "policy.toml"
    p.write_text(RULE)
    assert load_policy(p).rules[0].origin == "rule 1"


def test_a_rule_origin_is_rule_n_in_a_directory_with_spaces(tmp_path: Path) -> None:
    d = tmp_path / "my policies"
    d.mkdir()
    (d / "policy.toml").write_text(RULE)
    assert load_policy(d / "policy.toml").rules[0].origin == "rule 1"


def test_flags_carry_unpulled_for_and_order_into_the_rule() -> None:
    import datetime as dt

    from regcollect.policy import policy_from_flags

    policy = policy_from_flags(
        repos=(),
        keep_last=3,
        keep_tags=(),
        older_than=None,
        untagged=False,
        keep_labels=(),
        unpulled_for="30d",
        order="semver",
    )
    (rule,) = policy.rules
    assert (rule.unpulled_for, rule.order, policy.source) == (dt.timedelta(days=30), "semver", "flags")
    assert rule.describe() == "flags: repositories=['**'], keep_last=3, unpulled_for=30d, order=semver"


def test_a_rule_that_only_protects_is_refused_with_what_to_add(tmp_path: Path) -> None:
    from regcollect.policy import policy_from_flags

    with pytest.raises(PolicyError) as err:
        policy_from_flags(
            repos=(), keep_last=None, keep_tags=("v*",), older_than=None, untagged=False, keep_labels=()
        )
    assert str(err.value) == (
        "no retention rule: give --keep-last, --older-than, --unpulled-for or --untagged "
        "(--keep-tag and --keep-label only protect; regcollect never deletes everything)"
    )
    got = refused(tmp_path, '[[rules]]\nrepositories = ["a"]\nkeep_tags = ["x"]\n')
    assert got.startswith("P: rule 1: ") and got.endswith(
        "(keep_tags and keep_labels only protect; regcollect never deletes everything)"
    )


def test_a_rules_json_names_its_unpulled_for() -> None:
    from regcollect.policy import policy_from_flags

    policy = policy_from_flags(
        repos=(),
        keep_last=None,
        keep_tags=(),
        older_than=None,
        untagged=False,
        keep_labels=(),
        unpulled_for="30d",
    )
    assert policy.to_json()["rules"][0]["unpulled_for"] == "30d"
