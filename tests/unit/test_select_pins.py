"""Local pins and filters (engine/select.py) over several images at once: every image a container
uses is pinned, not only the first; the skip reason names every container; dangling=false/0 are
accepted as docker accepts them (issue 21: mutation survivors)."""

from __future__ import annotations

import datetime as dt

import pytest

from regcollect.engine.select import parse_filters, pins
from regcollect.errors import UsageError
from regcollect.model import ContainerUse
from tests.unit.test_select import NOW, ctx, image


def test_every_image_in_use_is_pinned_and_each_reason_names_all_its_containers() -> None:
    web = ContainerUse("a" * 64, "web", running=True)
    api = ContainerUse("b" * 64, "api", running=True)
    job = ContainerUse("c" * 64, "job", running=False)
    old = ContainerUse("d" * 64, "old", running=False)
    run1 = image("r1", "r1", "1", containers=(web, api))
    run2 = image("r2", "r2", "1", containers=(web,))
    stop1 = image("s1", "s1", "1", containers=(job, old))
    stop2 = image("s2", "s2", "1", containers=(old,))
    young1 = image("y1", "y1", "1", last_used=NOW - dt.timedelta(hours=1))
    young2 = image("y2", "y2", "1", last_used=NOW - dt.timedelta(hours=2))
    free = image("f", "f", "1", last_used=NOW - dt.timedelta(days=30))
    c = ctx(run1, run2, stop1, stop2, young1, young2, free)
    got = pins(c, filters=[], min_age=dt.timedelta(days=1), remove_containers=False, force=False)
    assert got[run1.digest] == (
        f"kept: used by running container web ({'a' * 12}), api ({'b' * 12}); regcollect never stops containers"
    )
    assert run2.digest in got
    assert got[stop1.digest] == (
        f"skipped: used by stopped container job ({'c' * 12}), old ({'d' * 12}); --remove-containers removes "
        "it first and frees the space, --force only untags (the layers stay until the container goes)"
    )
    assert stop2.digest in got
    assert got[young1.digest] == "kept: used 1h ago, within --min-age 1d"
    assert young2.digest in got
    assert free.digest not in got


def test_dangling_false_and_zero_are_filters_docker_accepts() -> None:
    assert [
        f.value for f in parse_filters(["dangling=false", "dangling=0", "dangling=1", "dangling=FALSE"])
    ] == [
        "false",
        "0",
        "1",
        "FALSE",
    ]


def test_a_bad_filter_lists_the_keys_docker_knows() -> None:
    with pytest.raises(UsageError) as err:
        parse_filters(["colour=red"])
    assert ", label, " in str(err.value) and "until" in str(err.value)
