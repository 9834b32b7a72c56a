"""Local choices (engine/select.py): what `regcollect local` targets, what its presets select, and what
the environment pins whatever was selected. What a user relies on: a running container's image is
never touched, a stopped one's only when asked, names resolve as `docker rmi` resolves them, and
--max-size evicts least recently used images until the total fits, never a parent before its child."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from regcollect.engine.budget import Budget, evict
from regcollect.engine.select import (
    Filter,
    LocalContext,
    _until_cutoff,
    parse_filters,
    pins,
    select_dangling,
    select_targets,
    select_unused,
)
from regcollect.errors import UsageError
from regcollect.model import Artifact, Blob, ContainerUse, Inventory
from regcollect.planner import Action

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def iid(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def image(repo: str, name: str, *tags: str, days: float = 10, **kw: object) -> Artifact:
    kw.setdefault("created", NOW - dt.timedelta(days=days))
    kw.setdefault("last_used", kw["created"])
    return Artifact(repository=repo, digest=iid(name), tags=tags, **kw)  # type: ignore[arg-type]


def ctx(*arts: Artifact) -> LocalContext:
    return LocalContext(Inventory("local", "engine", list(arts), global_ids=True), NOW)


RUNNING = ContainerUse("c" * 64, "web", running=True)
STOPPED = ContainerUse("d" * 64, "batch", running=False)


# --filter -------------------------------------------------------------------------------------


def test_filters_parse_as_docker_spells_them() -> None:
    got = parse_filters(["until=24h", "label!=keep", "label=team=a", "dangling=true"])
    assert [(f.key, f.value) for f in got] == [
        ("until", "24h"),
        ("label!", "keep"),
        ("label", "team=a"),
        ("dangling", "true"),
    ]
    assert str(got[1]) == "label!=keep"


@pytest.mark.parametrize("text", ["until", "colour=red", "until=", "dangling=maybe", "label!="])
def test_a_bad_filter_is_a_usage_error_naming_it(text: str) -> None:
    with pytest.raises(UsageError, match=f"--filter '{text}'"):
        parse_filters([text])


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1700000000", dt.datetime.fromtimestamp(1700000000, dt.UTC)),
        ("1700000000.5", dt.datetime.fromtimestamp(1700000000.5, dt.UTC)),
        ("2026-10-01T00:00:00Z", dt.datetime(2026, 10, 1, tzinfo=dt.UTC)),
        ("2026-10-01", dt.datetime(2026, 10, 1, tzinfo=dt.UTC)),
        ("36h", NOW - dt.timedelta(hours=36)),
    ],
)
def test_until_takes_unix_times_dates_and_durations(value: str, expected: dt.datetime) -> None:
    assert _until_cutoff(value, NOW) == expected


@pytest.mark.parametrize("value", ["soon", "99999999999999999999"])
def test_an_until_that_is_not_a_time_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match=f"until={value}"):
        _until_cutoff(value, NOW)


# pins -------------------------------------------------------------------------------------------


def test_a_running_containers_image_is_kept_whatever_the_flags() -> None:
    a = image("app", "a", "1", containers=(RUNNING,))
    for flags in ({}, {"remove_containers": True}, {"force": True}):
        got = pins(ctx(a), filters=[], min_age=None, **{"remove_containers": False, "force": False, **flags})
        assert got == {
            a.digest: f"kept: used by running container web ({'c' * 12}); regcollect never stops containers"
        }


def test_a_stopped_containers_image_is_pinned_unless_asked() -> None:
    a = image("app", "a", "1", containers=(STOPPED,))
    c = ctx(a)
    got = pins(c, filters=[], min_age=None, remove_containers=False, force=False)
    assert got[a.digest].startswith(
        f"skipped: used by stopped container batch ({'d' * 12}); --remove-containers"
    )
    assert pins(c, filters=[], min_age=None, remove_containers=True, force=False) == {}
    assert pins(c, filters=[], min_age=None, remove_containers=False, force=True) == {}


def test_min_age_keeps_what_was_used_recently() -> None:
    recent = image("app", "recent", "1", last_used=NOW - dt.timedelta(hours=5))
    old = image("app", "old", "2", last_used=NOW - dt.timedelta(days=3))
    edge = image("app", "edge", "3", last_used=NOW - dt.timedelta(days=1))
    got = pins(
        ctx(recent, old, edge), filters=[], min_age=dt.timedelta(days=1), remove_containers=False, force=False
    )
    assert got == {recent.digest: "kept: used 5h ago, within --min-age 1d"}


def pinned(arts: list[Artifact], *filters: str) -> set[str]:
    got = pins(
        ctx(*arts), filters=parse_filters(list(filters)), min_age=None, remove_containers=False, force=False
    )
    for reason in got.values():
        assert reason.startswith("kept: does not match --filter ")
    return {a.repository for a in arts if a.digest in got}


def test_until_keeps_what_is_newer() -> None:
    arts = [
        image("old", "o", "1", days=10),
        image("new", "n", "1", days=1),
        image("unknown", "u", "1", created=None),
    ]
    assert pinned(arts, "until=48h") == {"new", "unknown"}


def test_label_filters_keep_what_does_not_match() -> None:
    arts = [
        image("a", "a", "1", labels={"team": "a"}),
        image("b", "b", "1", labels={"team": "b"}),
        image("c", "c", "1"),
    ]
    assert pinned(arts, "label=team=a") == {"b", "c"}
    assert pinned(arts, "label=team") == {"c"}
    assert pinned(arts, "label!=team=a") == {"a"}
    assert pinned(arts, "label=team", "label!=team=b") == {"b", "c"}


def test_before_and_since_compare_created_times() -> None:
    arts = [image("old", "o", "1", days=10), image("mid", "m", "1", days=5), image("new", "n", "1", days=1)]
    assert pinned(arts, "before=mid:1") == {"mid", "new"}
    assert pinned(arts, "since=mid:1") == {"old", "mid"}
    arts.append(image("unknown", "u", "1", created=None))
    assert "unknown" in pinned(arts, "before=mid:1") and "unknown" in pinned(arts, "since=mid:1")


def test_reference_matches_name_or_name_and_tag() -> None:
    arts = [image("team/app", "a", "1.0"), image("team/web", "w", "2.0"), image("other", "o", "1.0")]
    assert pinned(arts, "reference=team/*") == {"other"}
    assert pinned(arts, "reference=*:1.0") == {"team/web"}


def test_dangling_filter() -> None:
    parent = image("", "p")
    child = image("app", "c", "1", children=(parent.digest,))
    loose = image("", "l")
    got = pins(
        ctx(parent, child, loose),
        filters=parse_filters(["dangling=true"]),
        min_age=None,
        remove_containers=False,
        force=False,
    )
    assert set(got) == {parent.digest, child.digest}  # only the loose one is dangling
    got = pins(
        ctx(parent, child, loose),
        filters=parse_filters(["dangling=0"]),
        min_age=None,
        remove_containers=False,
        force=False,
    )
    assert set(got) == {loose.digest}


# targets --------------------------------------------------------------------------------------------


def test_a_full_id_a_name_and_an_id_prefix_resolve_as_docker_rmi_does() -> None:
    a = image("team/app", "a", "1.0", "latest")
    b = image("team/web", "b", "2.0")
    c = ctx(a, b)
    assert c.resolve_target(a.digest) == (a.digest, None)
    assert c.resolve_target(a.digest.removeprefix("sha256:")) == (a.digest, None)
    assert c.resolve_target("team/app") == (a.digest, ("team/app", "latest"))
    assert c.resolve_target("team/web:2.0") == (b.digest, ("team/web", "2.0"))
    assert c.resolve_target(b.digest[7:19]) == (b.digest, None)
    with pytest.raises(UsageError, match="no such image"):
        c.resolve_target("sha256:" + "f" * 64)
    with pytest.raises(UsageError, match="team/db: no such image"):
        c.resolve_target("team/db")


def test_an_ambiguous_id_prefix_lists_the_candidates() -> None:
    arts = [image("r", str(i), str(i)) for i in range(40)]
    c = ctx(*arts)
    by_first = {}
    for a in arts:
        by_first.setdefault(a.digest[7], []).append(a)
    first, group = next((k, g) for k, g in by_first.items() if len(g) > 1)
    with pytest.raises(UsageError) as exc:
        c.resolve_target(first)
    text = str(exc.value)
    assert text.startswith(f"{first}: ambiguous image id prefix, candidates: ")
    for a in group:
        assert f"{a.digest[7:19]} (r:{a.tags[0]})" in text


def test_name_at_digest_acts_on_that_image() -> None:
    manifest = "sha256:" + "9" * 64
    a = image("team/app", "a", "1.0", manifest_digests=(manifest,))
    c = ctx(a, image("team/app", "b", "2.0"))
    assert c.resolve_target(f"team/app@{manifest}") == (a.digest, None)
    with pytest.raises(UsageError, match="no such image"):
        c.resolve_target(f"team/web@{manifest}")


def test_naming_one_of_several_tags_only_untags_it() -> None:
    a = image("team/app", "a", "1.0", "latest")
    sel, errors = select_targets(ctx(a), ["team/app:1.0"], force=False)
    assert errors == []
    chosen = sel[("team/app", a.digest)]
    assert (chosen.action, chosen.remove_tags) == (Action.UNTAG, ("1.0",))
    assert chosen.reason == "untagged: team/app:1.0 named; the image keeps its other tags"


def test_naming_every_tag_deletes_the_image_in_every_repository() -> None:
    a = image("team/app", "a", "1.0", "latest")
    mirror = image("mirror", "a", "1.0")
    sel, errors = select_targets(ctx(a, mirror), ["team/app:1.0", "team/app", "mirror:1.0"], force=False)
    assert errors == []
    assert {k: v.action for k, v in sel.items()} == {
        ("team/app", a.digest): Action.DELETE,
        ("mirror", a.digest): Action.DELETE,
    }
    assert sel[("mirror", a.digest)].reason == "deleted: mirror:1.0 named, its last reference"


def test_an_id_in_several_repositories_needs_force() -> None:
    a = image("team/app", "a", "1.0")
    mirror = image("mirror", "a", "1.0")
    sel, errors = select_targets(ctx(a, mirror), [a.digest, "nope"], force=False)
    assert sel == {}
    assert errors == [
        f"{a.digest}: image is referenced in multiple repositories (mirror, team/app): use --force or name the tags",
        "nope: no such image",
    ]
    sel, errors = select_targets(ctx(a, mirror), [a.digest], force=True)
    assert errors == [] and {v.action for v in sel.values()} == {Action.DELETE} and len(sel) == 2
    assert sel[("mirror", a.digest)].reason == f"deleted: {a.digest} named by id"


# presets --------------------------------------------------------------------------------------------


def test_dangling_is_untagged_with_no_child_and_no_container() -> None:
    parent = image("", "p")
    child = image("app", "c", "1", children=(parent.digest,))
    loose = image("", "l")
    used = image("", "u", containers=(STOPPED,))
    sel = select_dangling(ctx(parent, child, loose, used))
    assert list(sel) == [("", loose.digest)]
    assert sel[("", loose.digest)].reason == "deleted: dangling (untagged, no image depends on it)"


def test_unused_is_every_image_without_a_container() -> None:
    a = image("app", "a", "1")
    b = image("app", "b", "2", containers=(STOPPED,))
    sel = select_unused(ctx(a, b))
    assert list(sel) == [("app", a.digest)]
    assert sel[("app", a.digest)].action is Action.DELETE


def sized(repo: str, name: str, used_days: float | None, *blobs: tuple[str, int], **kw: object) -> Artifact:
    last = NOW - dt.timedelta(days=used_days) if used_days is not None else None
    return image(repo, name, "1", blobs=tuple(Blob(d, s) for d, s in blobs), last_used=last, **kw)


def test_max_size_evicts_least_recently_used_until_the_total_fits() -> None:
    old = sized("old", "o", 30, ("b1", 400))
    mid = sized("mid", "m", 20, ("b2", 300))
    new = sized("new", "n", 1, ("b3", 300))
    c = ctx(old, mid, new)
    scope = set(c.by_id)
    ev = evict(c, Budget(max_size=700), scope, {})
    assert set(ev.selection) == {("old", old.digest)} and ev.freed == 400
    assert evict(c, Budget(max_size=1000), scope, {}).selection == {}
    assert set(evict(c, Budget(max_size=399), scope, {}).selection) == {
        ("old", old.digest),
        ("mid", mid.digest),
    }


def test_max_size_counts_a_shared_blob_once_freed_only_with_its_last_holder() -> None:
    a = sized("a", "a", 30, ("shared", 500), ("a1", 100))
    b = sized("b", "b", 20, ("shared", 500), ("b1", 100))
    c = sized("c", "c", 1, ("c1", 100))
    cx = ctx(a, b, c)
    # total 800: evicting a frees 100 only; b then frees 600
    ev = evict(cx, Budget(max_size=650), set(cx.by_id), {})
    assert set(ev.selection) == {("a", a.digest), ("b", b.digest)} and ev.freed == 700


def test_max_size_never_evicts_a_pinned_or_used_image_and_says_when_it_cannot_fit() -> None:
    pinned_img = sized("pin", "x", 60, ("x1", 100))
    used = sized("used", "u", 70, ("u1", 100), containers=(STOPPED,))
    never = sized("never", "v", None, ("v1", 100))
    cx = ctx(pinned_img, used, never)
    ev = evict(cx, Budget(max_size=50), set(cx.by_id), {pinned_img.digest: "kept"})
    assert ("pin", pinned_img.digest) not in ev.selection and ("used", used.digest) not in ev.selection
    assert ("never", never.digest) in ev.selection
    assert ev.unreachable is not None and "still over" in ev.unreachable


def test_context_helpers() -> None:
    a = image("team/app", "a", "1.0", "latest")
    m = image("mirror", "a", "x")
    c = ctx(a, m)
    assert c.tags_of(a.digest) == ["team/app:1.0", "team/app:latest", "mirror:x"]
    assert c.repos_of(a.digest) == ["mirror", "team/app"]
    assert c.resolve_image("mirror:x") == a.digest
    assert str(Filter("until", "1h")) == "until=1h"
