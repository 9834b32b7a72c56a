"""The planner decides what users expect and never deletes what a kept artifact needs."""

from __future__ import annotations

import datetime as dt
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from regcollect.model import Artifact, Blob, Inventory, Kind
from regcollect.planner import Action, evaluate
from regcollect.policy import Policy, policy_from_flags, rule_from_table

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def img(name, tags=(), days=10, repo="team/app", **kw) -> Artifact:
    return Artifact(
        repository=repo, digest=dg(repo + name), tags=tuple(tags), created=NOW - dt.timedelta(days=days), **kw
    )


def pol(**table) -> Policy:
    table.setdefault("repositories", ["**"])
    return Policy(rules=(rule_from_table(table, "test: rule 1"),))


def plan_of(arts, policy, global_ids=False):
    inv = Inventory(source="remote", target="t", artifacts=list(arts), global_ids=global_ids)
    plan = evaluate(inv, policy, NOW)
    return plan, {d.artifact.digest: d for d in plan.decisions}


def test_keep_last_keeps_newest_and_says_why():
    arts = [img(f"v{i}", [f"v{i}"], days=10 - i) for i in range(5)]
    _, by = plan_of(arts, pol(keep_last=2))
    assert [by[a.digest].action for a in arts] == [Action.DELETE] * 3 + [Action.KEEP] * 2
    assert by[arts[4].digest].reason == "kept: among the 2 most recent"
    assert by[arts[0].digest].reason == "deleted: not among the 2 most recent"


def test_keep_tag_on_shared_digest_untags_instead_of_deleting():
    shared = img("old", ["old", "stable"], days=30)
    new = img("new", ["new"], days=1)
    _, by = plan_of([shared, new], pol(keep_last=1, keep_tags=["stable"]))
    d = by[shared.digest]
    assert d.action is Action.UNTAG
    assert d.remove_tags == ("old",)
    assert d.kept_tags == ("stable",)
    assert "stable" in d.reason


def test_older_than_is_a_floor_for_deletes_and_untags():
    young = img("young", ["a", "keepme"], days=2)
    old = img("old", ["b"], days=40)
    newest = img("newest", ["c"], days=1)
    _, by = plan_of([young, old, newest], pol(keep_last=1, older_than="30d", keep_tags=["keepme"]))
    assert by[young.digest].action is Action.KEEP
    assert "younger than 30d" in by[young.digest].reason
    assert by[old.digest].action is Action.DELETE
    assert "older than 30d" in by[old.digest].reason


def test_untagged_alone_never_touches_tagged_images():
    tagged = img("t", ["t"], days=400)
    loose = img("loose", [], days=400)
    _, by = plan_of([tagged, loose], pol(untagged=True))
    assert by[tagged.digest].action is Action.KEEP
    assert by[loose.digest].action is Action.DELETE


def _index(repo, name, tags, children, days=10):
    a = img(name, tags, days=days, repo=repo, kind=Kind.INDEX)
    a.children = tuple(c.digest for c in children)
    a.created = None
    return a


def test_kept_index_keeps_all_children_even_with_untagged_cleanup():
    c1, c2 = img("c1", [], days=50), img("c2", [], days=50)
    idx = _index("team/app", "idx", ["v1"], [c1, c2])
    _, by = plan_of([idx, c1, c2], pol(keep_last=1, untagged=True))
    assert by[idx.digest].action is Action.KEEP
    for c in (c1, c2):
        assert by[c.digest].action is Action.KEEP
        assert by[c.digest].reason == "kept: child of kept index team/app:v1"


def test_deleted_index_takes_only_unshared_children():
    shared, own = img("shared", [], days=50), img("own", [], days=50)
    other = img("other", [], days=1)
    old = _index("team/app", "old", ["old"], [shared, own])
    new = _index("team/app", "new", ["new"], [shared, other])
    _, by = plan_of([old, new, shared, own, other], pol(keep_last=1))
    assert by[old.digest].action is Action.DELETE
    assert by[own.digest].action is Action.DELETE
    assert "child of deleted index" in by[own.digest].reason
    assert by[shared.digest].action is Action.KEEP
    assert by[other.digest].action is Action.KEEP


def test_index_counts_at_its_newest_child():
    young_child = img("yc", [], days=1)
    idx = _index("team/app", "idx", ["multi"], [young_child])
    plain = img("plain", ["plain"], days=5)
    _, by = plan_of([idx, young_child, plain], pol(keep_last=1))
    assert by[idx.digest].action is Action.KEEP
    assert by[plain.digest].action is Action.DELETE


def test_referrers_follow_subject_and_never_count():
    a, b = img("a", ["a"], days=2), img("b", ["b"], days=5)
    sig_a = img("siga", [a.digest.replace(":", "-") + ".sig"], days=0, subject=a.digest, kind=Kind.REFERRER)
    sig_b = img("sigb", [b.digest.replace(":", "-") + ".sig"], days=0, subject=b.digest, kind=Kind.REFERRER)
    sbom_b = img("sbomb", [], days=0, subject=b.digest, kind=Kind.REFERRER)
    _, by = plan_of([a, b, sig_a, sig_b, sbom_b], pol(keep_last=1))
    assert by[a.digest].action is Action.KEEP  # signatures, though newest, did not take the slot
    assert by[sig_a.digest].action is Action.KEEP
    assert by[b.digest].action is Action.DELETE
    assert by[sig_b.digest].action is Action.DELETE
    assert by[sbom_b.digest].action is Action.DELETE
    assert by[sbom_b.digest].reason == "deleted: refers to deleted team/app:b"


def test_unmatched_repositories_are_untouched():
    policy = Policy(rules=(rule_from_table({"repositories": ["team/*"], "keep_last": 0}, "r"),))
    x = img("x", ["x"], days=100, repo="other/x")
    y = img("y", ["y"], days=100, repo="team/y")
    plan, by = plan_of([x, y], policy)
    assert by[x.digest].action is Action.KEEP
    assert plan.untouched_repositories == ["other/x"]
    assert by[y.digest].action is Action.DELETE


def test_first_matching_rule_wins():
    policy = Policy(
        rules=(
            rule_from_table({"repositories": ["team/app"], "keep_last": 2}, "r1"),
            rule_from_table({"repositories": ["team/*"], "keep_last": 0}, "r2"),
        )
    )
    arts = [img(f"v{i}", [f"v{i}"], days=i) for i in range(3)]
    web = img("w", ["w"], repo="team/web")
    _, by = plan_of(arts + [web], policy)
    assert [by[a.digest].action for a in arts] == [Action.KEEP, Action.KEEP, Action.DELETE]
    assert by[arts[2].digest].rule == "r1"
    assert by[web.digest].action is Action.DELETE


def test_keep_label_keeps_digest_with_its_tags():
    a = img("a", ["a"], days=50, labels={"keep": "yes"})
    b = img("b", ["b"], days=40)
    _, by = plan_of([a, b], pol(keep_last=0, keep_labels=["keep=yes"]))
    assert by[a.digest].action is Action.KEEP
    assert by[b.digest].action is Action.DELETE


def test_reclaimable_counts_each_blob_once_and_nothing_kept():
    base = Blob(dg("base"), 1000)
    a = img("a", ["a"], days=1, blobs=(base, Blob(dg("la"), 10)))
    b = img("b", ["b"], days=5, blobs=(base, Blob(dg("lb"), 20)))
    c = img("c", ["c"], days=6, blobs=(Blob(dg("sh"), 300), Blob(dg("lc"), 30)))
    d = img("d", ["d"], days=7, blobs=(Blob(dg("sh"), 300), Blob(dg("ld"), 40)))
    plan, _ = plan_of([a, b, c, d], pol(keep_last=1))
    assert plan.reclaimable_bytes == 20 + 300 + 30 + 40  # base is shared with kept a


def test_global_ids_kept_in_one_repository_only_untags_in_another():
    """Locally one id is one image: keeping it in repo A must not delete it via repo B."""
    a1 = img("same", ["v1"], days=50, repo="a")
    b1 = Artifact(repository="b", digest=a1.digest, tags=("old",), created=a1.created)
    b2 = img("bnew", ["new"], days=1, repo="b")
    _, _ = plan_of([a1, b1, b2], pol(keep_last=1), global_ids=True)
    plan = evaluate(Inventory("local", "e", [a1, b1, b2], global_ids=True), pol(keep_last=1), NOW)
    ds = {(d.repository, d.digest): d for d in plan.decisions}
    assert ds[("a", a1.digest)].action is Action.KEEP
    assert ds[("b", a1.digest)].action is Action.UNTAG
    assert "kept as a:v1" in ds[("b", a1.digest)].reason


def test_local_parent_kept_by_kept_child_and_deleted_after_child():
    parent = img("p", ["base"], days=90)
    child = img("c", ["app"], days=1, children=(parent.digest,))
    plan, by = plan_of([parent, child], pol(keep_last=0), global_ids=True)
    assert by[child.digest].action is Action.DELETE
    assert by[parent.digest].action is Action.DELETE
    order = [d.digest for d in plan.changes]
    assert order.index(child.digest) < order.index(parent.digest)
    plan, by = plan_of(
        [parent, child],
        Policy(rules=(rule_from_table({"repositories": ["**"], "keep_last": 0, "keep_tags": ["app"]}, "r"),)),
        global_ids=True,
    )
    assert by[child.digest].action is Action.KEEP
    # The rule lets the parent's own tag go, but the image stays for its child.
    assert by[parent.digest].action is Action.UNTAG
    assert by[parent.digest].remove_tags == ("base",)
    assert "parent image of kept image team/app:app" in by[parent.digest].reason


def test_dry_run_plan_and_apply_plan_are_the_same_object_order():
    arts = [img(f"v{i}", [f"v{i}"], days=i) for i in range(6)]
    plan, _ = plan_of(arts, pol(keep_last=2))
    again, _ = plan_of(arts, pol(keep_last=2))
    assert [(d.digest, d.action) for d in plan.changes] == [(d.digest, d.action) for d in again.changes]


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 12),
    keep=st.integers(0, 5),
    data=st.data(),
)
def test_nothing_a_kept_artifact_reaches_is_deleted(n, keep, data):
    """Property: for random graphs, no kept index loses a child, no kept image loses a referrer."""
    arts = []
    for i in range(n):
        tagged = data.draw(st.booleans())
        arts.append(img(f"i{i}", [f"t{i}"] if tagged else [], days=data.draw(st.integers(0, 60))))
    for i in range(n):
        if data.draw(st.booleans()) and i + 1 < n:
            kids = data.draw(st.lists(st.sampled_from(arts[i + 1 :]), max_size=3, unique_by=id))
            arts[i].kind = Kind.INDEX
            arts[i].children = tuple(k.digest for k in kids)
    untagged = data.draw(st.booleans())
    policy = policy_from_flags(
        repos=(), keep_last=keep, keep_tags=(), older_than=None, untagged=untagged, keep_labels=()
    )
    plan, by = plan_of(arts, policy)
    for a in arts:
        if by[a.digest].action is not Action.DELETE:
            for c in a.children:
                assert by[c].action is not Action.DELETE, by[c].reason
    tagged = [a for a in arts if a.tags]
    kept_tagged = [a for a in tagged if by[a.digest].action is Action.KEEP]
    assert len(kept_tagged) >= min(keep, len(tagged))
