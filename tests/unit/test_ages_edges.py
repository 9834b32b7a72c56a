"""Edges of `ages()` and `newest()` the planner's tests do not pin (issue 21 mutation survivors).

Each one is a way an image could be judged older or younger than the evidence says."""

from __future__ import annotations

import datetime as dt

from regcollect.ages import CREATED, FIRST_SEEN, PLAUSIBLE_SINCE, PUSHED, UNKNOWN, Age, ages, newest

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def one(created=None, pushed=None, first_seen=None) -> Age:  # type: ignore[no-untyped-def]
    return ages([("a", created, pushed, first_seen)], NOW)["a"]


def test_a_plausible_created_time_is_the_age_and_says_so() -> None:
    """The plan's reason names the evidence; a created time must be reported as `created`."""
    t = NOW - dt.timedelta(days=3)
    assert one(created=t) == Age(t, CREATED, False)


def test_the_first_second_of_2000_is_plausible_but_not_the_one_before() -> None:
    """The cut-off for build stamps is 2000-01-01 inclusive: an image built then is dated."""
    assert one(created=PLAUSIBLE_SINCE) == Age(PLAUSIBLE_SINCE, CREATED, False)
    before = PLAUSIBLE_SINCE - dt.timedelta(seconds=1)
    assert one(created=before, first_seen=NOW).source == FIRST_SEEN


def test_clock_skew_up_to_a_day_is_tolerated_beyond_it_not() -> None:
    """A builder's clock a day ahead still dates the image; two days ahead is not evidence."""
    edge = NOW + dt.timedelta(days=1)
    assert one(created=edge).source == CREATED
    assert one(created=NOW + dt.timedelta(hours=12)).source == CREATED
    assert one(created=edge + dt.timedelta(seconds=1), first_seen=NOW).source == FIRST_SEEN


def test_a_push_time_in_the_future_is_not_evidence() -> None:
    assert one(pushed=NOW + dt.timedelta(days=2)).source == UNKNOWN
    assert one(pushed=NOW + dt.timedelta(hours=1)).source == PUSHED


def test_an_unusable_created_time_is_flagged_whatever_serves_instead() -> None:
    """The plan warns about images whose created time says nothing: the flag must survive the
    fallback to push time, first-seen time and unknown alike."""
    stamp = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    seen = NOW - dt.timedelta(days=5)
    assert one(created=stamp, pushed=seen) == Age(seen, PUSHED, True)
    assert one(created=stamp, first_seen=seen) == Age(seen, FIRST_SEEN, True)
    assert one(created=stamp) == Age(None, UNKNOWN, True)
    assert one(first_seen=seen) == Age(seen, FIRST_SEEN, False)


def test_newest_keeps_exactly_keep_when_the_last_place_is_not_tied() -> None:
    kept, tied = newest({"a": 3, "b": 2, "c": 1}, 2)
    assert (kept, tied) == ({"a", "b"}, set())


def test_newest_a_group_that_exactly_fills_the_last_places_is_not_a_tie() -> None:
    """Two images sharing a time that fill keep_last exactly are kept, not reported as tied."""
    kept, tied = newest({"a": 3, "b": 2, "c": 2, "d": 1}, 3)
    assert (kept, tied) == ({"a", "b", "c"}, set())
    kept, tied = newest({"a": 3, "b": 2, "c": 2, "d": 1}, 2)
    assert (kept, tied) == ({"a", "b", "c"}, {"b", "c"})


def test_newest_never_compares_the_keys_of_a_tie() -> None:
    """Keys of one rank are not ordered (they may not even be comparable): a tie must not fail."""

    class Key:
        pass

    a, b, c = Key(), Key(), Key()
    kept, tied = newest({a: 2, b: 2, c: 1}, 1)
    assert (kept, tied) == ({a, b}, {a, b})
