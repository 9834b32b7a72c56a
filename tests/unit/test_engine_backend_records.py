"""LocalBackend (engine/backend.py): the journal record each local change leaves (the engine keeps
no undo, so the record is all a user has), deletes that survive a tag removed meanwhile, one
image's items never racing each other, and a stop signal (issue 21: mutation survivors)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from regcollect.engine.backend import LocalBackend
from regcollect.errors import ChangedSincePlan, NotFound
from regcollect.executor import DONE, execute
from regcollect.planner import Action, Decision
from tests.unit.test_engine_backend import FakeEngine, apply, decision, iid, outcome, plan_of


class Records:
    """The journal seam LocalBackend writes to: (image id, status, detail) per change."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def local(self, d: Decision, status: str, detail: str = "") -> None:
        self.rows.append((d.digest, status, detail))


def run(engine: FakeEngine, d: Decision) -> tuple[str | None, list[tuple[str, str, str]]]:
    rec = Records()
    backend = LocalBackend(engine, plan_of(d), rec)  # type: ignore[arg-type]
    return asyncio.run(backend.delete(d)), rec.rows


def test_a_forced_delete_is_recorded_done() -> None:
    engine = FakeEngine()
    img = engine.add(iid("a"), "app:1")
    got, rows = run(engine, decision("app", img, ("1",), force=True))
    assert got == "forced: layers stay on disk until its containers are removed"
    assert rows == [(img, "done", "")]


def test_a_delete_by_its_last_tag_is_recorded_done() -> None:
    engine = FakeEngine()
    img = engine.add(iid("a"), "app:1")
    assert run(engine, decision("app", img, ("1",))) == (None, [(img, "done", "")])


def test_an_image_other_repositories_still_name_is_recorded_done_and_not_removed_by_id() -> None:
    engine = FakeEngine()
    img = engine.add(iid("a"), "app:1", "mirror:1")
    got, rows = run(engine, decision("app", img, ("1",)))
    assert (got, rows) == (None, [(img, "done", "")])
    assert engine.names[img] == {"mirror:1"} and ("rmi", img) not in engine.calls


def test_an_image_gone_before_the_delete_is_recorded_already_gone() -> None:
    engine = FakeEngine()
    img = iid("gone")
    assert run(engine, decision("app", img, ("1",))) == ("already gone", [(img, "done", "already gone")])


def test_an_image_removed_between_inspect_and_rmi_is_recorded_already_gone() -> None:
    engine = FakeEngine()
    img = engine.add(iid("dangling"))
    real = engine.remove_image

    def vanish(image: str, *, force: bool = False) -> list[dict[str, Any]]:
        if image == img:
            raise NotFound(f"no such image {image}", status=404)
        return real(image, force=force)

    engine.remove_image = vanish  # type: ignore[method-assign]
    assert run(engine, decision("", img, ())) == ("already gone", [(img, "done", "already gone")])


def test_an_engine_refusal_is_recorded_skipped_with_the_engines_words() -> None:
    engine = FakeEngine()
    img = engine.add(iid("a"), "app:1")
    engine.run("c1", "web", img)  # a stopped container the plan did not know: the engine refuses
    d = decision("app", img, ("1",))
    rec = Records()
    with pytest.raises(ChangedSincePlan) as err:
        asyncio.run(LocalBackend(engine, plan_of(d), rec).delete(d))  # type: ignore[arg-type]
    assert str(err.value) == "container is using its referenced image"
    assert rec.rows == [(img, "skipped", "container is using its referenced image")]


def test_a_tag_removed_meanwhile_does_not_stop_the_delete_by_the_others() -> None:
    """Someone ran `docker rmi app:1` after the plan: app:2 still goes, and with it the image."""
    engine = FakeEngine()
    img = engine.add(iid("a"), "app:2")
    got, rows = run(engine, decision("app", img, ("1", "2")))
    assert (got, rows) == (None, [(img, "done", "")])
    assert img not in engine.names and ("rmi", img) not in engine.calls


def test_an_untag_goes_on_after_a_tag_already_gone() -> None:
    engine = FakeEngine()
    img = engine.add(iid("a"), "app:2", "app:3")
    d = decision("app", img, ("1", "2", "3"), Action.UNTAG, remove_tags=("1", "2"))
    rec = Records()
    asyncio.run(LocalBackend(engine, plan_of(d), rec).untag(d))  # type: ignore[arg-type]
    assert engine.names[img] == {"app:3"} and rec.rows == [(img, "done", "")]


def test_items_of_one_image_never_run_at_once() -> None:
    """The engine answers the loser of two concurrent removals of one image with a 500."""
    engine = FakeEngine()
    img = engine.add(iid("a"), "app:1", "mirror:1")
    real = engine.remove_image
    lock = threading.Lock()
    inflight, most = 0, 0

    def slow(image: str, *, force: bool = False) -> list[dict[str, Any]]:
        nonlocal inflight, most
        with lock:
            inflight += 1
            most = max(most, inflight)
        time.sleep(0.05)
        try:
            return real(image, force=force)
        finally:
            with lock:
                inflight -= 1

    engine.remove_image = slow  # type: ignore[method-assign]
    report = apply(engine, plan_of(decision("app", img, ("1",)), decision("mirror", img, ("1",))))
    assert {o.status for o in report.outcomes} == {DONE} and most == 1


def test_a_stop_signal_leaves_the_rest_not_attempted() -> None:
    engine = FakeEngine()
    img = engine.add(iid("a"), "app:1")
    stop = threading.Event()
    stop.set()
    plan = plan_of(decision("app", img, ("1",)))
    report = asyncio.run(execute(plan, LocalBackend(engine, plan, stop=stop)))  # type: ignore[arg-type]
    assert outcome(report, img)[1] == "changed since plan: not attempted: stopping (signal)"
    assert engine.names[img] == {"app:1"}


def test_a_new_container_is_named_without_its_slash_or_as_unknown() -> None:
    engine = FakeEngine()
    img = engine.add(iid("a"))
    engine.run("c1", "web", img)
    d = decision("", img, ())
    assert asyncio.run(LocalBackend(engine, plan_of(d)).verify(d)) == (  # type: ignore[arg-type]
        "container web was created from it since the plan"
    )
    engine.containers_ = [{"Id": "c2", "ImageID": img, "State": "running"}]
    assert asyncio.run(LocalBackend(engine, plan_of(d)).verify(d)) == "container ? now runs it"  # type: ignore[arg-type]


def test_an_image_with_no_names_is_not_new_tagged_by_none() -> None:
    engine = FakeEngine()
    img = engine.add(iid("a"))
    d = decision("", img, (), force=True)
    real = engine.inspect
    engine.inspect = lambda image: {**real(image), "RepoTags": ["<none>:<none>"]}  # type: ignore[method-assign]
    got, rows = run(engine, d)
    assert rows == [(img, "done", "")] and img not in engine.names
