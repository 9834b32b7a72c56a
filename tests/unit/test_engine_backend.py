"""Applying a local plan to the Docker Engine (LocalBackend) over a fake engine client with docker's
rmi semantics. What a user relies on: a delete never removes a name the plan did not show, and a
delete by id (untagged images, --force) re-checks the containers and tags that appeared since the
reviewed plan, because the engine itself would not refuse it."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest

from regcollect.engine import backend as backend_mod
from regcollect.engine.backend import LocalBackend
from regcollect.errors import ChangedSincePlan, Conflict, NotFound
from regcollect.executor import DONE, FAILED, SKIPPED, Report, execute
from regcollect.journal import Journal
from regcollect.journal import read as read_journal
from regcollect.model import Artifact, ContainerUse
from regcollect.planner import Action, Decision, Plan

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def iid(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


class FakeEngine:
    """Images (id -> names), containers, and `docker rmi` as the engine does it."""

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}
        self.containers_: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []
        self.image_lists = 0

    def add(self, image: str, *names: str) -> str:
        self.names.setdefault(image, set()).update(names)
        return image

    def run(self, cid: str, name: str, image: str, state: str = "exited") -> None:
        self.containers_.append({"Id": cid, "Names": [f"/{name}"], "ImageID": image, "State": state})

    # the EngineClient surface LocalBackend uses ----------------------------------------------
    def images(self) -> list[dict[str, Any]]:
        self.image_lists += 1
        return [{"Id": i, "RepoTags": sorted(n) or ["<none>:<none>"]} for i, n in self.names.items()]

    def containers(self) -> list[dict[str, Any]]:
        return list(self.containers_)

    def inspect(self, image: str) -> dict[str, Any]:
        self.calls.append(("inspect", image))
        if image not in self.names:
            raise NotFound(f"no such image {image}", status=404)
        return {"Id": image, "RepoTags": sorted(self.names[image])}

    def remove_container(self, cid: str) -> None:
        self.calls.append(("rm", cid))
        before = len(self.containers_)
        self.containers_ = [c for c in self.containers_ if c["Id"] != cid]
        if len(self.containers_) == before:
            raise NotFound(f"no such container {cid}", status=404)

    def remove_image(self, image: str, *, force: bool = False) -> list[dict[str, Any]]:
        self.calls.append(("rmi -f" if force else "rmi", image))
        if image in self.names:  # by id
            users = [c for c in self.containers_ if c["ImageID"] == image]
            if len(self.names[image]) > 1 and not force:
                raise Conflict("image is referenced in multiple repositories", "multiple")
            if users and not force:
                raise Conflict("image is being used by stopped container", "stopped")
            out = [{"Untagged": n} for n in sorted(self.names[image])]
            del self.names[image]
            return [*out, {"Deleted": image}]
        ref = image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"
        owner = next((i for i, n in self.names.items() if ref in n), None)
        if owner is None:
            raise NotFound(f"no such image {image}", status=404)
        if len(self.names[owner]) == 1 and any(c["ImageID"] == owner for c in self.containers_):
            raise Conflict("container is using its referenced image", "stopped")
        self.names[owner].discard(ref)
        if self.names[owner]:
            return [{"Untagged": ref}]
        del self.names[owner]
        return [{"Untagged": ref}, {"Deleted": owner}]


def decision(
    repo: str,
    image: str,
    tags: tuple[str, ...],
    action: Action = Action.DELETE,
    *,
    containers: tuple[ContainerUse, ...] = (),
    **kw: Any,
) -> Decision:
    art = Artifact(repository=repo, digest=image, tags=tags, containers=containers)
    kw.setdefault("remove_tags", tags if action is Action.DELETE else ())
    return Decision(art, action, f"{action.value}: test", **kw)


def plan_of(*decisions: Decision) -> Plan:
    return Plan("local", "unix:///engine.sock", NOW, {}, list(decisions))


def apply(engine: FakeEngine, plan: Plan, journal: Journal | None = None) -> Report:
    return asyncio.run(execute(plan, LocalBackend(engine, plan, journal), concurrency=2))  # type: ignore[arg-type]


def outcome(report: Report, image: str, repo: str | None = None) -> tuple[str, str]:
    return next(
        (o.status, o.detail)
        for o in report.outcomes
        if o.decision.digest == image and (repo is None or o.decision.repository == repo)
    )


# delete by id: containers since the plan --------------------------------------------------------


def test_a_container_created_since_the_plan_saves_an_untagged_image() -> None:
    """`docker rmi <id>` would not refuse a stopped container's image once the container is removed
    first; one created after the user reviewed the plan was never agreed to."""
    engine = FakeEngine()
    img = engine.add(iid("dangling"))
    plan = plan_of(decision("", img, ()))
    engine.run("c-new", "late", img)
    report = apply(engine, plan)
    assert outcome(report, img) == (
        SKIPPED,
        "changed since plan: container late was created from it since the plan",
    )
    assert img in engine.names and not [c for c in engine.calls if c[0].startswith("rm")]


def test_a_container_started_since_the_plan_saves_the_image() -> None:
    engine = FakeEngine()
    img = engine.add(iid("dangling"))
    known = ContainerUse("c-old", "batch", running=False)
    plan = plan_of(decision("", img, (), containers=(known,), containers_first=("c-old",)))
    engine.run("c-old", "batch", img, state="running")
    report = apply(engine, plan)
    assert outcome(report, img) == (SKIPPED, "changed since plan: container batch now runs it")
    assert ("rm", "c-old") not in engine.calls


def test_a_container_known_to_the_plan_is_removed_first_then_the_image() -> None:
    engine = FakeEngine()
    img = engine.add(iid("dangling"))
    engine.run("c-old", "batch", img)
    known = ContainerUse("c-old", "batch", running=False)
    plan = plan_of(decision("", img, (), containers=(known,), containers_first=("c-old",)))
    report = apply(engine, plan)
    assert outcome(report, img) == (DONE, "")
    assert engine.calls.index(("rm", "c-old")) < engine.calls.index(("rmi", img))
    assert img not in engine.names


def test_a_container_already_removed_is_no_obstacle() -> None:
    engine = FakeEngine()
    img = engine.add(iid("dangling"))
    known = ContainerUse("c-old", "batch", running=False)
    plan = plan_of(decision("", img, (), containers=(known,), containers_first=("c-old",)))
    report = apply(engine, plan)
    assert outcome(report, img) == (DONE, "")


def test_a_forced_delete_rechecks_containers_too() -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1")
    plan = plan_of(decision("app", img, ("1",), force=True))
    engine.run("c-new", "late", img)
    report = apply(engine, plan)
    assert outcome(report, img) == (
        SKIPPED,
        "changed since plan: container late was created from it since the plan",
    )


def test_a_delete_by_tag_leaves_new_containers_to_the_engine() -> None:
    """By name, the engine itself refuses an image a container uses (409): changed since plan."""
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1")
    plan = plan_of(decision("app", img, ("1",)))
    engine.run("c-new", "late", img)
    report = apply(engine, plan)
    status, detail = outcome(report, img)
    assert status == SKIPPED and detail.startswith("changed since plan: container is using")
    assert img in engine.names


# new names since the plan -------------------------------------------------------------------------


def test_a_new_tag_in_the_same_repository_saves_the_image() -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1")
    plan = plan_of(decision("app", img, ("1",)))
    engine.add(img, "app:stable")
    report = apply(engine, plan)
    assert outcome(report, img) == (SKIPPED, "changed since plan: new tag app:stable points at it")
    assert engine.names[img] == {"app:1", "app:stable"}


def test_a_new_tag_elsewhere_does_not_stop_an_untag_by_name_but_stays() -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1")
    plan = plan_of(decision("app", img, ("1",)))
    engine.add(img, "mirror:1")
    report = apply(engine, plan)
    assert outcome(report, img) == (DONE, "")
    assert engine.names[img] == {"mirror:1"}  # the name the plan never saw is still there
    assert ("rmi", img) not in engine.calls


def test_a_new_tag_in_any_repository_saves_an_image_deleted_by_id() -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1")
    plan = plan_of(decision("app", img, ("1",), force=True))
    engine.add(img, "mirror:1")
    report = apply(engine, plan)
    assert outcome(report, img) == (SKIPPED, "changed since plan: new tag mirror:1 points at it")
    assert img in engine.names


def test_a_forced_delete_looks_again_right_before_rmi_f(tmp_path: Path) -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1")
    d = decision("app", img, ("1",), force=True)
    journal = Journal(tmp_path / "j.jsonl", "engine")
    backend = LocalBackend(engine, plan_of(d), journal)  # type: ignore[arg-type]
    assert asyncio.run(backend.verify(d)) is None
    engine.add(img, "mirror:1")  # tagged between the check and the change
    with pytest.raises(ChangedSincePlan, match="new tag mirror:1 points at it"):
        asyncio.run(backend.delete(d))
    journal.close()
    assert img in engine.names and ("rmi -f", img) not in engine.calls
    rec = list(read_journal(tmp_path / "j.jsonl"))
    assert (rec[0]["type"], rec[0]["status"], rec[0]["id"]) == ("local", "skipped", img)


def test_a_forced_delete_removes_every_planned_name() -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1", "other:2")
    plan = plan_of(decision("app", img, ("1",), force=True), decision("other", img, ("2",), force=True))
    report = apply(engine, plan)
    assert outcome(report, img, "app") == (
        DONE,
        "forced: layers stay on disk until its containers are removed",
    )
    assert img not in engine.names


def test_names_the_plan_knew_in_other_repositories_are_not_new() -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1", "mirror:1")
    plan = plan_of(decision("app", img, ("1",)), decision("mirror", img, ("1",)))
    report = apply(engine, plan)
    assert {o.status for o in report.outcomes} == {DONE}
    assert img not in engine.names


# rmi by name ---------------------------------------------------------------------------------------


def test_the_last_tag_deletes_the_image_and_nothing_else() -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1", "app:2")
    other = engine.add(iid("other"), "app:3")
    plan = plan_of(decision("app", img, ("1", "2")))
    report = apply(engine, plan)
    assert outcome(report, img) == (DONE, "")
    assert img not in engine.names and engine.names[other] == {"app:3"}
    assert ("rmi", img) not in engine.calls  # by name only


def test_an_image_that_loses_its_tags_but_stays_is_removed_by_id() -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1")
    plan = plan_of(decision("app", img, ("1",)))
    real = engine.remove_image

    def untag_only(image: str, *, force: bool = False) -> list[dict[str, Any]]:
        if image == "app:1":  # an engine that answers only "Untagged" (a parent is still there)
            engine.calls.append(("rmi", image))
            engine.names[img].discard("app:1")
            return [{"Untagged": "app:1"}]
        return real(image, force=force)

    engine.remove_image = untag_only  # type: ignore[method-assign]
    report = apply(engine, plan)
    assert outcome(report, img) == (DONE, "")
    assert ("rmi", img) in engine.calls and img not in engine.names


def test_already_gone_is_done(tmp_path: Path) -> None:
    engine = FakeEngine()
    img = iid("gone")
    journal = Journal(tmp_path / "j.jsonl", "engine")
    report = apply(engine, plan_of(decision("app", img, ("1",))), journal)
    journal.close()
    assert outcome(report, img) == (DONE, "already gone")
    rec = list(read_journal(tmp_path / "j.jsonl"))
    assert (rec[0]["status"], rec[0]["detail"]) == ("done", "already gone")


def test_an_image_removed_by_id_meanwhile_is_already_gone() -> None:
    engine = FakeEngine()
    img = engine.add(iid("dangling"))
    d = decision("", img, ())
    backend = LocalBackend(engine, plan_of(d))  # type: ignore[arg-type]
    del engine.names[img]
    assert asyncio.run(backend.delete(d)) == "already gone"


def test_an_engine_refusal_is_changed_since_plan_and_journaled_skipped(tmp_path: Path) -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1")

    def refuse(image: str, *, force: bool = False) -> list[dict[str, Any]]:
        raise Conflict("conflict: image has dependent child images", "child")

    engine.remove_image = refuse  # type: ignore[method-assign]
    journal = Journal(tmp_path / "j.jsonl", "engine")
    report = apply(engine, plan_of(decision("app", img, ("1",))), journal)
    journal.close()
    assert outcome(report, img) == (SKIPPED, "changed since plan: conflict: image has dependent child images")
    rec = list(read_journal(tmp_path / "j.jsonl"))
    assert rec[0]["status"] == "skipped" and rec[0]["bytes"] == 0


def test_untag_removes_only_the_named_tags(tmp_path: Path) -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1", "app:2", "app:prod")
    d = decision("app", img, ("1", "2", "prod"), Action.UNTAG, remove_tags=("1", "gone"))
    journal = Journal(tmp_path / "j.jsonl", "engine")
    report = apply(engine, plan_of(d), journal)
    journal.close()
    assert outcome(report, img) == (DONE, "")
    assert engine.names[img] == {"app:2", "app:prod"}
    rec = list(read_journal(tmp_path / "j.jsonl"))
    assert (rec[0]["action"], rec[0]["remove_tags"], rec[0]["status"]) == ("untag", ["1", "gone"], "done")


def test_an_untag_leaves_names_the_plan_did_not_list() -> None:
    engine = FakeEngine()
    img = engine.add(iid("app"), "app:1", "app:2")
    d = decision("app", img, ("1", "2"), Action.UNTAG, remove_tags=("1",))
    engine.add(img, "app:new")
    report = apply(engine, plan_of(d))
    # An untag removes only names the plan listed; a new name in the repository is harmless to it.
    assert outcome(report, img) == (DONE, "")
    assert engine.names[img] == {"app:2", "app:new"}


def test_the_image_list_is_reused_within_its_age_and_read_again_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = FakeEngine()
    a = engine.add(iid("a"), "app:1")
    b = engine.add(iid("b"), "app:2")
    plan = plan_of(decision("app", a, ("1",)), decision("app", b, ("2",)))
    backend = LocalBackend(engine, plan)  # type: ignore[arg-type]
    asyncio.run(backend.verify(plan.decisions[0]))
    asyncio.run(backend.verify(plan.decisions[1]))
    assert engine.image_lists == 1
    monkeypatch.setattr(backend_mod, "SNAPSHOT_MAX_AGE", -1.0)
    engine.add(b, "app:late")
    assert asyncio.run(backend.verify(plan.decisions[1])) == "new tag app:late points at it"
    assert engine.image_lists == 2


def test_a_failed_rmi_is_failed_and_the_parent_waits() -> None:
    engine = FakeEngine()
    parent = engine.add(iid("parent"))
    child = engine.add(iid("child"), "app:1")
    plan = plan_of(
        decision("app", child, ("1",), depth=0),
        decision("", parent, (), depth=1),
    )
    plan.decisions[0].artifact.children = (parent,)
    real = engine.remove_image

    def broken(image: str, *, force: bool = False) -> list[dict[str, Any]]:
        if image == "app:1":
            from regcollect.errors import EngineError

            raise EngineError("remove image app:1: 500 driver failed")
        return real(image, force=force)

    engine.remove_image = broken  # type: ignore[method-assign]
    report = apply(engine, plan)
    assert outcome(report, child)[0] == FAILED
    assert outcome(report, parent)[0] == SKIPPED and parent in engine.names
