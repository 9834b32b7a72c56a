"""The reason the plan gives for each follower (signatures, index children, parent images): a user
reviewing a plan decides on these words, so a kept signature must say what keeps it."""

from __future__ import annotations

import datetime as dt
import hashlib

from regcollect.model import Artifact, Blob, Inventory, Kind
from regcollect.planner import Action, Plan, evaluate
from regcollect.policy import policy_from_flags

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def art(name: str, *tags: str, days: int = 90, **kw: object) -> Artifact:
    created = NOW - dt.timedelta(days=days, seconds=int(dg(name)[7:15], 16) % 10_000)
    kw.setdefault("repository", "team/app")
    return Artifact(digest=dg(name), tags=tags, created=created, **kw)  # type: ignore[arg-type]


def plan(arts: list[Artifact], source: str = "remote", **flags: object) -> Plan:
    args: dict[str, object] = dict(
        repos=(), keep_last=1, keep_tags=(), older_than=None, untagged=True, keep_labels=()
    )
    args.update(flags)
    return evaluate(
        Inventory(source, "t", arts, global_ids=source == "local"), policy_from_flags(**args), NOW
    )  # type: ignore[arg-type]


def why(p: Plan, a: Artifact) -> tuple[Action, str]:
    d = next(d for d in p.decisions if d.artifact is a)
    return d.action, d.reason


def test_a_kept_images_signature_says_it_refers_to_the_kept_image() -> None:
    image = art("image", "v2", days=1)
    sig = art(
        "sig", image.digest.replace(":", "-") + ".sig", days=0, kind=Kind.REFERRER, subject=image.digest
    )
    att = art("att", days=0, kind=Kind.REFERRER, subject=image.digest)
    p = plan([image, sig, att])
    assert why(p, image) == (Action.KEEP, "kept: among the 1 most recent")
    assert why(p, sig) == (Action.KEEP, "kept: refers to kept team/app:v2")
    assert why(p, att) == (Action.KEEP, "kept: refers to kept team/app:v2")


def test_a_deleted_images_signature_goes_with_it_and_says_so() -> None:
    new = art("new", "v2", days=1)
    old = art("old", "v1", days=50)
    sig = art("sig", kind=Kind.REFERRER, subject=old.digest, days=0)
    p = plan([new, old, sig])
    assert why(p, sig) == (Action.DELETE, "deleted: refers to deleted team/app:v1")


def test_a_signature_of_something_not_listed_is_kept_and_says_so() -> None:
    orphan = dg("elsewhere")
    sig = art("sig", kind=Kind.REFERRER, subject=orphan, days=400)
    p = plan([art("new", "v2", days=1), sig])
    assert why(p, sig) == (Action.KEEP, f"kept: refers to {orphan}, which is not listed")


def test_index_children_follow_their_index_with_the_reason() -> None:
    amd, arm, old_child = art("amd"), art("arm"), art("oldc")
    kept = art("idx", "v2", days=1, kind=Kind.INDEX, children=(amd.digest, arm.digest))
    gone = art("oidx", "v1", days=50, kind=Kind.INDEX, children=(old_child.digest, arm.digest))
    p = plan([kept, gone, amd, arm, old_child])
    assert why(p, amd) == (Action.KEEP, "kept: child of kept index team/app:v2")
    assert why(p, arm)[0] is Action.KEEP  # shared with the kept index
    assert why(p, old_child) == (
        Action.DELETE,
        "deleted: child of deleted index team/app:v1, nothing kept needs it",
    )
    assert why(p, gone)[0] is Action.DELETE


def test_a_local_parent_image_says_which_child_keeps_or_takes_it() -> None:
    base = art("base", days=200, repository="")
    kept = art("app2", "2", days=1, repository="app", children=(base.digest,))
    base2 = art("base2", days=200, repository="")
    gone = art("app1", "1", days=100, repository="app", children=(base2.digest,))
    p = plan([base, kept, base2, gone], source="local", untagged=False)
    assert why(p, base) == (Action.KEEP, "kept: parent image of kept image app:2")
    assert why(p, base2) == (
        Action.DELETE,
        "deleted: parent image of deleted image app:1, nothing kept needs it",
    )


def test_global_ids_kept_elsewhere_say_where() -> None:
    shared = art("shared", "1", days=100, repository="mirror")
    same = Artifact(repository="app", digest=shared.digest, tags=("old",), created=shared.created)
    newer = art("newer", "2", days=1, repository="app")
    p = evaluate(
        Inventory("local", "t", [shared, same, newer], global_ids=True),
        policy_from_flags(
            repos=("app",), keep_last=1, keep_tags=(), older_than=None, untagged=False, keep_labels=()
        ),
        NOW,
    )
    action, reason = why(p, same)
    assert action is Action.UNTAG
    assert reason == "untagged: not among the 1 most recent; digest kept: the same image is kept as mirror:1"


def test_bytes_count_only_blobs_nothing_kept_holds() -> None:
    keep = art("keep", "v2", days=1, blobs=(Blob("shared", 100), Blob("k", 5)))
    old = art("old", "v1", days=50, blobs=(Blob("shared", 100), Blob("o", 7)))
    older = art("older", "v0", days=60, blobs=(Blob("o", 7), Blob("x", 3)))
    p = plan([keep, old, older])
    by = {d.artifact.tags[0]: d.bytes for d in p.decisions}
    assert by == {"v2": 0, "v1": 7, "v0": 3}
    assert p.reclaimable_bytes == 10


def test_not_among_the_most_recent_says_by_which_time_when_not_created() -> None:
    new = art("new", "v2", days=1)
    repro1 = Artifact(
        "team/app",
        dg("r1"),
        tags=("r1",),
        created=dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        pushed=NOW - dt.timedelta(days=40),
    )
    p = plan([new, repro1])
    assert why(p, repro1) == (Action.DELETE, "deleted: not among the 1 most recent (by pushed time)")
    assert any("judged by pushed time instead" in w for w in p.warnings)
