"""--max-size / --min-free (engine/budget.py): how far over a budget the engine is, what the plan
says about each eviction, and what it says when the budget cannot be met (issue 21)."""

from __future__ import annotations

import datetime as dt

from regcollect.engine.budget import Budget, evict
from regcollect.planner import Action
from tests.unit.test_select import NOW, RUNNING, STOPPED, ctx, sized


def test_over_is_the_larger_shortfall_of_either_budget_and_never_negative() -> None:
    assert Budget().over(1000, 10) == 0
    assert Budget(max_size=800).over(1000, None) == 200
    assert Budget(max_size=1000).over(1000, None) == 0
    assert Budget(max_size=2000).over(1000, None) == 0
    assert Budget(min_free=500).over(1000, 100) == 400
    assert Budget(min_free=500).over(1000, None) == 0  # free space unknown: no --min-free need
    assert Budget(max_size=800, min_free=500).over(1000, 100) == 400
    assert Budget(max_size=500, min_free=500).over(1000, 100) == 500


def test_describe_names_the_figures_of_each_budget_given() -> None:
    assert Budget(max_size=1000).describe(2000, 5) == "images in scope 2 kB, --max-size 1 kB"
    assert Budget(min_free=1000).describe(2000, 5) == "free 5 B, --min-free 1 kB"
    assert Budget(min_free=1000).describe(2000, None) == ""
    both = Budget(max_size=1000, min_free=1000).describe(2000, 5)
    assert both == "images in scope 2 kB, --max-size 1 kB; free 5 B, --min-free 1 kB"


def test_an_eviction_says_when_the_image_was_last_used_and_why_it_goes() -> None:
    old = sized("old", "o", 30, ("b1", 400), last_used_source="container start")
    new = sized("new", "n", 1, ("b2", 300))
    c = ctx(old, new)
    ev = evict(c, Budget(max_size=500), set(c.by_id), {})
    sel = ev.selection[("old", old.digest)]
    when = (NOW - dt.timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    assert sel.action is Action.DELETE
    assert sel.reason == (
        f"deleted: least recently used (last used {when} (container start)); "
        "images in scope 700 B, --max-size 500 B"
    )
    assert (ev.need, ev.freed, ev.total, ev.evicted, ev.unreachable) == (200, 400, 700, [old.digest], None)
    assert ev.stats(Budget(max_size=500), None) == {
        "max_size": 500,
        "min_free": None,
        "scope_bytes": 700,
        "free_bytes": None,
        "need_bytes": 200,
        "freed_bytes": 400,
        "evicted": 1,
        "reachable": True,
    }


def test_a_never_used_image_goes_first_and_says_so() -> None:
    never = sized("never", "v", None, ("v1", 100))
    old = sized("old", "o", 300, ("o1", 100))
    c = ctx(never, old)
    ev = evict(c, Budget(max_size=150), set(c.by_id), {})
    assert list(ev.selection) == [("never", never.digest)]
    assert ev.selection[("never", never.digest)].reason.startswith(
        "deleted: least recently used (never used);"
    )


def test_the_low_watermark_sets_how_much_goes_once_over() -> None:
    a = sized("a", "a", 30, ("a1", 100))
    b = sized("b", "b", 20, ("b1", 100))
    c = sized("c", "c", 10, ("c1", 100))
    cx = ctx(a, b, c)
    scope = set(cx.by_id)
    assert evict(cx, Budget(max_size=300), scope, {}, target=Budget(max_size=100)).evicted == []
    ev = evict(cx, Budget(max_size=250), scope, {}, target=Budget(max_size=100))
    assert ev.evicted == [a.digest, b.digest] and ev.need == 200 and ev.unreachable is None


def test_min_free_counts_against_the_free_space() -> None:
    a = sized("a", "a", 30, ("a1", 100))
    b = sized("b", "b", 20, ("b1", 100))
    cx = ctx(a, b)
    ev = evict(cx, Budget(min_free=1000), set(cx.by_id), {}, free=950)
    assert ev.evicted == [a.digest] and ev.freed == 100


def test_an_untagged_parent_goes_with_its_last_child_and_says_so() -> None:
    parent = sized("", "p", 40, ("base", 500))
    parent.tags = ()
    child = sized("app", "c", 30, ("base", 500), ("top", 100), children=(parent.digest,))
    other = sized("keep", "k", 1, ("k1", 10))
    cx = ctx(parent, child, other)
    ev = evict(cx, Budget(max_size=100), set(cx.by_id), {})
    assert ev.evicted == [child.digest, parent.digest] and ev.freed == 600
    assert ev.selection[("", parent.digest)].reason == "deleted: untagged parent of an evicted image"
    assert ev.selection[("app", child.digest)].reason.startswith("deleted: least recently used")


def test_a_tagged_parent_stays_while_a_child_needs_it() -> None:
    parent = sized("base", "p", 40, ("base", 500))
    child = sized("app", "c", 30, ("base", 500), ("top", 100), children=(parent.digest,))
    cx = ctx(parent, child)
    ev = evict(cx, Budget(max_size=550), set(cx.by_id), {})
    assert ev.evicted == [child.digest] and ev.freed == 100


def test_an_image_whose_layers_are_held_by_images_that_stay_is_not_evicted_and_says_why() -> None:
    shared = sized("a", "a", 30, ("s", 500))
    holder = sized("b", "b", 20, ("s", 500), ("b1", 50), containers=(RUNNING,))
    cx = ctx(shared, holder)
    ev = evict(cx, Budget(max_size=10), set(cx.by_id), {})
    assert ev.evicted == []
    assert ev.not_helping == {
        shared.digest: "kept: removing it frees nothing (its layers are held by images that stay)"
    }
    assert ev.unreachable == (
        "budget unreachable: 540 B still over after evicting 0 images; 1 frees nothing, 1 kept by running containers"
    )


def test_an_image_that_frees_only_with_newer_ones_stays_when_they_stay() -> None:
    a = sized("a", "a", 30, ("s", 500))
    b = sized("b", "b", 20, ("s", 500), ("b1", 100))
    c = sized("c", "c", 10, ("c1", 1000))
    cx = ctx(a, b, c)
    # 1600 in scope; 1000 to free. a alone frees nothing; with b, 600; then c frees 1000.
    ev = evict(cx, Budget(max_size=600), set(cx.by_id), {b.digest: "kept by the policy"})
    assert a.digest not in ev.evicted and ev.evicted == [c.digest]
    assert (
        ev.not_helping[a.digest]
        == "kept: removing it frees nothing (its layers are held by images that stay)"
    )


def test_the_unreachable_line_counts_why_each_image_stays() -> None:
    arts = [
        sized("run", "r", 50, ("r1", 100), containers=(RUNNING,)),
        sized("stop", "s", 50, ("s1", 100), containers=(STOPPED,)),
        sized("age", "g", 50, ("g1", 100)),
        sized("filt", "f", 50, ("f1", 100)),
        sized("pol", "p", 50, ("p1", 100)),
        sized("par", "q", 50, ("q1", 100)),
        sized("go", "x", 50, ("x1", 10)),
    ]
    cx = ctx(*arts)
    pinned = {
        arts[2].digest: "kept: used within --min-age 7d",
        arts[3].digest: "kept: outside --filter label=x",
        arts[4].digest: "kept: tag matches --keep-tag",
        arts[5].digest: "",
    }
    ev = evict(cx, Budget(max_size=100), set(cx.by_id), pinned)
    assert ev.evicted == [arts[6].digest]
    assert ev.unreachable == (
        "budget unreachable: 500 B still over after evicting 1 images; 1 kept by running containers, "
        "1 kept by stopped containers, 1 kept by the policy, 1 outside --filter, "
        "1 parents of kept images, 1 used within --min-age"
    )
    assert ev.stats(Budget(max_size=100), 7)["reachable"] is False


def test_nothing_is_chosen_when_the_budget_is_met() -> None:
    a = sized("a", "a", 30, ("a1", 100))
    cx = ctx(a)
    ev = evict(cx, Budget(max_size=100), {a.digest}, {})
    assert (ev.need, ev.evicted, ev.selection, ev.unreachable) == (0, [], {}, None)


def test_only_images_in_scope_count_and_go() -> None:
    a = sized("a", "a", 30, ("a1", 100))
    b = sized("b", "b", 20, ("b1", 100))
    cx = ctx(a, b)
    ev = evict(cx, Budget(max_size=50), {b.digest}, {})
    assert ev.total == 100 and ev.evicted == [b.digest]
