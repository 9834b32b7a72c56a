"""Times, durations and sizes from users and from untrusted image configs: a clear answer or a
clear refusal, never an internal error."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from regcollect.cli import cli
from regcollect.engine.select import _until_cutoff
from regcollect.errors import EXIT_USAGE, PolicyError, UsageError
from regcollect.policy import load_policy
from regcollect.units import parse_duration, parse_size, parse_time

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
HUGE = "99999999999999d"


@pytest.mark.parametrize(
    "created",
    [
        {"a": 1},
        ["2024-01-01T00:00:00Z"],
        1e30,
        -1e30,
        float("inf"),
        float("nan"),
        10**20,
        True,
        b"2024-01-01T00:00:00Z",
        "9999999999-01-01",
        "9999-12-31T23:59:59-01:00",  # valid RFC 3339, but past datetime's year 9999 in UTC
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_absurd_created_is_unknown(created):
    """A config's `created` is registry input: anything odd means "unknown", never a crash."""
    assert parse_time(created) is None


def test_ordinary_times_still_parse():
    assert parse_time("2024-01-02T03:04:05.123456789Z") == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, dt.UTC)
    assert parse_time(1_700_000_000) == dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)


@pytest.mark.parametrize("text", [HUGE, "9" * 5000 + "s", "500000000w"])
def test_huge_duration_is_refused_as_bad_input(text):
    with pytest.raises(ValueError, match="too long"):
        parse_duration(text)


def test_longest_allowed_duration_still_works():
    assert parse_duration("36500d") == dt.timedelta(days=36500)


def test_huge_size_is_refused_as_bad_input():
    with pytest.raises(ValueError, match="bad size"):
        parse_size("9" * 400 + "GB")


def test_huge_older_than_in_a_policy_file_names_file_rule_and_key(tmp_path):
    p = tmp_path / "policy.toml"
    p.write_text(f'[[rules]]\nrepositories = ["**"]\nolder_than = "{HUGE}"\n')
    with pytest.raises(PolicyError, match=r"policy.toml: rule 1: key 'older_than': .*too long"):
        load_policy(p)


def test_huge_until_filter_is_a_usage_error():
    with pytest.raises(UsageError, match="--filter until="):
        _until_cutoff(HUGE, NOW)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["local", "--older-than", HUGE, "--dry-run"], "--older-than"),
        (["remote", "127.0.0.1:1", "--keep-last", "1", "--older-than", HUGE, "--dry-run"], "--older-than"),
        (["local", "--dangling", "--min-age", HUGE, "--dry-run"], "--min-age"),
        (["local", "--max-size", "9" * 400 + "GB", "--dry-run"], "--max-size"),
    ],
)
def test_huge_durations_on_the_command_line_exit_2_naming_the_flag(args, flag):
    from regcollect import commands  # noqa: F401 - registers the subcommands

    r = CliRunner().invoke(cli, args, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert r.exit_code == EXIT_USAGE, r.output
    assert f"Error: {flag}" in r.stderr and "internal error" not in r.stderr


def test_a_unix_time_beyond_any_calendar_in_until_is_a_usage_error():
    with pytest.raises(UsageError, match="until=99999999999999: not a valid Unix time"):
        _until_cutoff("99999999999999", NOW)
