"""A plan from a selection (local targets, presets, --max-size) instead of the policy: what is not
selected stays, a pinned image is never deleted whatever was selected, and what follows a
selected index goes with it (issue 21: the selection path had no unit test)."""

from __future__ import annotations

import datetime as dt
import hashlib

from regcollect.model import Artifact, Inventory, Kind
from regcollect.planner import Action, Decision, Selected, evaluate
from regcollect.policy import Policy

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def art(name: str, *tags: str, **kw) -> Artifact:  # type: ignore[no-untyped-def]
    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    kw.setdefault("created", NOW - dt.timedelta(days=10))
    return Artifact("team/app", digest, tags=tags, **kw)


def plan(arts: list[Artifact], selection: dict, pinned: dict | None = None) -> dict[str, Decision]:  # type: ignore[type-arg]
    inv = Inventory("remote", "r", artifacts=arts, pinned=pinned or {})
    p = evaluate(inv, Policy(()), NOW, selection)
    return {d.artifact.digest: d for d in p.decisions}


def test_what_is_not_selected_stays_and_what_is_goes_with_every_tag() -> None:
    a, b = art("a", "v1", "latest"), art("b", "v2")
    got = plan(
        [a, b], {("team/app", a.digest): Selected(Action.DELETE, "deleted: named on the command line")}
    )
    assert (got[a.digest].action, got[a.digest].reason, got[a.digest].remove_tags, got[a.digest].rule) == (
        Action.DELETE,
        "deleted: named on the command line",
        ("v1", "latest"),
        None,
    )
    assert (got[b.digest].action, got[b.digest].reason, got[b.digest].rule) == (
        Action.KEEP,
        "kept: not selected",
        None,
    )


def test_an_untag_removes_only_the_tags_selected() -> None:
    a = art("a", "v1", "latest")
    got = plan([a], {("team/app", a.digest): Selected(Action.UNTAG, "untagged: named", ("latest",))})
    assert (got[a.digest].action, got[a.digest].remove_tags, got[a.digest].reason) == (
        Action.UNTAG,
        ("latest",),
        "untagged: named",
    )
    assert got[a.digest].kept_tags == ("v1",)


def test_a_pinned_image_is_kept_whatever_was_selected_but_may_lose_a_tag() -> None:
    a, b = art("a", "v1", "latest"), art("b", "v2")
    pinned = {a.digest: "kept: pinned by --keep-digest", f"team/app@{b.digest}": "kept: pinned here"}
    selection = {
        ("team/app", a.digest): Selected(Action.UNTAG, "untagged: named", ("latest",)),
        ("team/app", b.digest): Selected(Action.DELETE, "deleted: named"),
    }
    got = plan([a, b], selection, pinned)
    assert (got[b.digest].action, got[b.digest].reason) == (Action.KEEP, "kept: pinned here")
    assert got[a.digest].action is Action.UNTAG  # a tag may go; the digest stays
    got = plan([a], {("team/app", a.digest): Selected(Action.DELETE, "deleted: named")}, pinned)
    assert (got[a.digest].action, got[a.digest].reason, got[a.digest].remove_tags) == (
        Action.KEEP,
        "kept: pinned by --keep-digest",
        (),
    )


def test_the_platform_images_of_a_selected_index_follow_it_those_of_a_kept_one_stay() -> None:
    amd, arm = art("amd", created=None), art("arm", created=None)
    idx = art("idx", "v1", kind=Kind.INDEX, children=(amd.digest,))
    other = art("other", "v2", kind=Kind.INDEX, children=(arm.digest,))
    got = plan([idx, amd, other, arm], {("team/app", idx.digest): Selected(Action.DELETE, "deleted: named")})
    assert got[idx.digest].action is Action.DELETE and got[amd.digest].action is Action.DELETE
    assert got[other.digest].reason == "kept: not selected"
    assert got[arm.digest].action is Action.KEEP and got[arm.digest].reason != "kept: not selected"
    assert other.label() in got[arm.digest].reason
