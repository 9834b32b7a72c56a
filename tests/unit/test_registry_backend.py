"""Deleting and untagging in a registry, through the real client, DistributionApi and RemoteBackend
over an in-process registry (httpx.MockTransport). What a user relies on: a failed DELETE is
reported failed and frees no bytes, a refusal that concerns the whole run stops it, a tag that
moved since the plan saves its image, and the undo journal is on disk before anything changes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from regcollect.errors import AuthError, DeleteDisabled, NotFound, RegistryError, UsageError
from regcollect.executor import DONE, FAILED, SKIPPED, Report, execute
from regcollect.journal import Journal
from regcollect.journal import read as read_journal
from regcollect.model import Artifact, Kind
from regcollect.planner import Action, Decision, Plan
from regcollect.registry import backend as backend_mod
from regcollect.registry.api import PROBE_DIGEST, DistributionApi
from regcollect.registry.backend import THROWAWAY_ARTIFACT, RemoteBackend
from regcollect.registry.client import RegistryClient
from tests.support.fakeoci import OCI_MANIFEST, FakeRegistry, digest

Handler = Callable[[httpx.Request], httpx.Response | None]


def errors(status: int, code: str | None = None) -> httpx.Response:
    body = {"errors": [{"code": code, "message": "refused"}]} if code else {}
    return httpx.Response(status, json=body)


def refuse(reg: FakeRegistry, method: str, answer: httpx.Response, repo: str = "") -> None:
    """The registry answers `method` (in `repo`, or anywhere) with `answer`."""

    def override(request: httpx.Request) -> httpx.Response | None:
        if request.method == method and f"/v2/{repo}" in request.url.path:
            return answer
        return None

    reg.override = override


def writable(reg: FakeRegistry) -> None:
    """Blob uploads and manifest PUTs, as distribution does them (the untag path needs them)."""

    def override(request: httpx.Request) -> httpx.Response | None:
        path = request.url.path.removeprefix("/v2/")
        if request.method == "POST" and path.endswith("/blobs/uploads/"):
            return httpx.Response(202, headers={"Location": f"/v2/{path}session-1"})
        if request.method == "PUT" and "/blobs/uploads/" in path:
            data = request.content
            reg.blobs[digest(data)] = data
            return httpx.Response(201)
        if request.method == "PUT" and "/manifests/" in path:
            repo, _, ref = path.partition("/manifests/")
            d = reg.put(repo, request.content, request.headers["content-type"], ref)
            return httpx.Response(201, headers={"Docker-Content-Digest": d})
        return None

    reg.override = override


def decision(
    reg: FakeRegistry, repo: str, d: str, action: Action = Action.DELETE, *, size: int = 0, **kw: Any
) -> Decision:
    tags = tuple(sorted(t for t, x in reg.tags.get(repo, {}).items() if x == d))
    data, media_type = reg.manifests[d]
    art = Artifact(repository=repo, digest=d, tags=tags, media_type=media_type, raw=data)
    remove = kw.pop("remove_tags", tags if action is Action.DELETE else ())
    return Decision(art, action, f"{action.value}: test", remove_tags=remove, bytes=size, **kw)


def plan_of(*decisions: Decision) -> Plan:
    import datetime as dt

    return Plan("remote", "registry.test", dt.datetime(2026, 11, 1, tzinfo=dt.UTC), {}, list(decisions))


def apply(
    reg: FakeRegistry,
    plan: Plan,
    *,
    journal: Journal | None = None,
    verify: str = "item",
    concurrency: int = 1,
) -> Report:
    async def main() -> Report:
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport(), max_wait=0) as c:
            backend = RemoteBackend(DistributionApi(c), plan, journal, verify=verify)
            return await execute(plan, backend, concurrency=concurrency)

    return asyncio.run(main())


def statuses(report: Report) -> dict[str, tuple[str, str]]:
    return {o.decision.digest: (o.status, o.detail) for o in report.outcomes}


def deletes(reg: FakeRegistry) -> list[str]:
    return [p for m, p in reg.log if m == "DELETE"]


# DELETE semantics ---------------------------------------------------------------------------


def test_a_deleted_manifest_is_done_and_its_bytes_count_as_freed() -> None:
    reg = FakeRegistry()
    old = reg.image("team/app", "v1")
    report = apply(reg, plan_of(decision(reg, "team/app", old, size=1000)))
    assert statuses(report)[old] == (DONE, "")
    assert report.reclaimed_bytes == 1000 and not report.failed
    assert old not in reg.manifests


def test_a_manifest_someone_else_deleted_is_done_as_already_gone() -> None:
    reg = FakeRegistry()
    old = reg.image("team/app", "v1")
    plan = plan_of(decision(reg, "team/app", old))
    refuse(reg, "DELETE", errors(404, "MANIFEST_UNKNOWN"))
    report = apply(reg, plan)
    assert statuses(report)[old] == (DONE, "already gone")
    assert not report.failed


@pytest.mark.parametrize("status", [500, 400])
def test_an_error_answer_to_delete_is_failed_not_already_gone_and_frees_nothing(status: int) -> None:
    """A 500 must never read as "already gone": the run would exit 0 with the manifest still there."""
    reg = FakeRegistry()
    old = reg.image("team/app", "v1")
    plan = plan_of(decision(reg, "team/app", old, size=1000))
    refuse(reg, "DELETE", errors(status, "UNKNOWN" if status == 500 else "DIGEST_INVALID"))
    report = apply(reg, plan)
    got_status, detail = statuses(report)[old]
    assert got_status == FAILED
    assert f"{status}" in detail and "already gone" not in detail
    assert report.failed and report.reclaimed_bytes == 0 and report.fatal is None
    assert old in reg.manifests


def test_client_delete_tells_gone_from_failed() -> None:
    reg = FakeRegistry()
    d = reg.image("team/app", "v1")

    async def main(answer: httpx.Response | None) -> bool:
        reg.override = (lambda r: answer) if answer is not None else None
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport(), max_wait=0) as c:
            return await c.delete_manifest("team/app", d)

    assert asyncio.run(main(httpx.Response(202))) is True
    assert asyncio.run(main(errors(404, "MANIFEST_UNKNOWN"))) is False
    with pytest.raises(RegistryError) as exc:
        asyncio.run(main(errors(500, "UNKNOWN")))
    assert exc.value.status == 500 and not isinstance(exc.value, NotFound)


# refusals that concern the whole run --------------------------------------------------------


@pytest.mark.parametrize(
    "answer, error, words",
    [
        (errors(405, "UNSUPPORTED"), DeleteDisabled, "deletion disabled"),
        (errors(400, "UNSUPPORTED"), DeleteDisabled, "storage.delete.enabled"),
        (httpx.Response(400), DeleteDisabled, "deletion disabled"),
        (errors(401, "UNAUTHORIZED"), AuthError, "may not delete in repository a/first"),
        (errors(403, "DENIED"), AuthError, "action 'delete' needed"),
    ],
)
def test_a_fatal_refusal_stops_the_run_before_other_repositories(
    answer: httpx.Response, error: type, words: str
) -> None:
    """Deletes disabled or the permission missing: nothing more is tried, even where it would work."""
    reg = FakeRegistry()
    first = reg.image("a/first", "v1")
    second = reg.image("b/second", "v1", salt="2")
    plan = plan_of(decision(reg, "a/first", first), decision(reg, "b/second", second))
    refuse(reg, "DELETE", answer, repo="a/first/")
    report = apply(reg, plan)
    assert isinstance(report.fatal, error)
    assert words in str(report.fatal)
    got = statuses(report)
    assert got[first][0] == FAILED
    assert got[second] == (SKIPPED, "not attempted: stopped by the error above")
    assert second in reg.manifests  # allowed there, and still not touched
    assert not [p for p in deletes(reg) if "b/second" in p]


@pytest.mark.parametrize(
    "answer, gone",
    [
        (errors(404, "MANIFEST_UNKNOWN"), False),
        (errors(400, "DIGEST_INVALID"), False),
        (httpx.Response(202), True),
    ],
)
def test_probe_delete_passes_where_deletes_work(answer: httpx.Response, gone: bool) -> None:
    reg = FakeRegistry()
    reg.image("team/app", "v1")
    refuse(reg, "DELETE", answer)

    async def main() -> bool:
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport(), max_wait=0) as c:
            api = DistributionApi(c)
            await api.probe_delete("team/app")
            return await api.delete("team/app", PROBE_DIGEST)

    assert asyncio.run(main()) is gone
    assert deletes(reg)[0] == f"/v2/team/app/manifests/{PROBE_DIGEST}"


def test_a_400_on_a_real_digest_is_not_taken_for_a_working_probe() -> None:
    reg = FakeRegistry()
    d = reg.image("team/app", "v1")
    refuse(reg, "DELETE", errors(400, "DIGEST_INVALID"))

    async def main() -> bool:
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport(), max_wait=0) as c:
            return await DistributionApi(c).delete("team/app", d)

    with pytest.raises(RegistryError) as exc:
        asyncio.run(main())
    assert exc.value.status == 400 and not isinstance(exc.value, DeleteDisabled)


def test_untag_in_a_registry_without_deletes_stops_before_writing_a_throwaway() -> None:
    reg = FakeRegistry()
    d = reg.image("team/app", "v1", "keep")
    plan = plan_of(decision(reg, "team/app", d, Action.UNTAG, remove_tags=("v1",)))
    writable(reg)
    inner = reg.override
    reg.override = lambda r: errors(405, "UNSUPPORTED") if r.method == "DELETE" else inner(r)  # type: ignore[misc]
    report = apply(reg, plan)
    assert isinstance(report.fatal, DeleteDisabled)
    assert not [m for m, _ in reg.log if m in ("PUT", "POST")]  # nothing written that would stay
    assert reg.tags["team/app"]["v1"] == d


# repositories --------------------------------------------------------------------------------


def test_repositories_by_name_need_no_catalog_and_wildcards_read_it() -> None:
    reg = FakeRegistry(page_size=2)
    for repo in ("team/app", "team/web", "other/x", "team/db"):
        reg.image(repo, "v1", salt=repo)

    async def main(patterns: list[str]) -> list[str]:
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport(), max_wait=0) as c:
            return await DistributionApi(c).repositories(patterns)

    assert asyncio.run(main(["team/app"])) == ["team/app"]
    assert not [p for _, p in reg.log if "_catalog" in p]
    assert asyncio.run(main(["team/*", "solo"])) == ["solo", "team/app", "team/db", "team/web"]
    with pytest.raises(UsageError, match="invalid repository name 'Team/App'"):
        asyncio.run(main(["Team/App"]))
    reg.override = lambda r: httpx.Response(404) if "_catalog" in r.url.path else None
    with pytest.raises(UsageError, match="has no catalog"):
        asyncio.run(main(["team/*"]))


# pagination ----------------------------------------------------------------------------------


def test_every_page_of_tags_is_read() -> None:
    """A tag on page three can be the one that keeps a digest: a listing is never cut short."""
    reg = FakeRegistry(page_size=2)
    tags = [f"t{i}" for i in range(7)]
    reg.image("team/app", *tags)

    async def main() -> list[str]:
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport(), max_wait=0) as c:
            return await c.tags("team/app")

    assert asyncio.run(main()) == tags
    assert len([p for _, p in reg.log if "tags/list" in p]) == 4


def test_a_new_tag_on_a_later_page_still_saves_its_image() -> None:
    reg = FakeRegistry(page_size=2)
    old = reg.image("team/app", "a1", "a2", "a3")
    plan = plan_of(decision(reg, "team/app", old))
    reg.tags["team/app"]["zz-rollback"] = old  # pushed since the plan; sorts onto the last page
    report = apply(reg, plan, verify="repository")
    assert statuses(report)[old] == (SKIPPED, "changed since plan: tag zz-rollback now points at it")
    assert old in reg.manifests


# re-verification -----------------------------------------------------------------------------


def test_a_tag_moved_to_other_content_since_the_plan_is_not_deleted_with_it() -> None:
    reg = FakeRegistry()
    old = reg.image("team/app", "v1")
    new = reg.image("team/app", salt="new")
    plan = plan_of(decision(reg, "team/app", old))
    reg.tags["team/app"]["v1"] = new  # v1 re-pushed: deleting `old` by digest is harmless ...
    reg.tags["team/app"]["v0"] = old  # ... but someone tagged it again (a rollback)
    report = apply(reg, plan)
    assert statuses(report)[old] == (SKIPPED, "changed since plan: tag v0 now points at it")


def test_per_item_check_catches_a_planned_tag_that_now_names_other_content() -> None:
    reg = FakeRegistry()
    old = reg.image("team/app", "v1", "v2")
    new = reg.image("team/app", salt="new")
    plan = plan_of(decision(reg, "team/app", old))
    reg.tags["team/app"]["v2"] = new
    report = apply(reg, plan)
    assert statuses(report)[old] == (SKIPPED, f"changed since plan: tag v2 now points at {new[:19]}")
    heads = [p for m, p in reg.log if m == "HEAD"]
    assert "/v2/team/app/manifests/v1" in heads and "/v2/team/app/manifests/v2" in heads


def test_verify_repository_skips_the_per_item_heads_of_deletes() -> None:
    reg = FakeRegistry()
    old = reg.image("team/app", "v1", "v2")
    report = apply(reg, plan_of(decision(reg, "team/app", old)), verify="repository")
    assert statuses(report)[old] == (DONE, "")
    assert not [m for m, _ in reg.log if m == "HEAD"]


def test_new_content_that_needs_a_planned_child_saves_the_child() -> None:
    reg = FakeRegistry()
    child = reg.image("team/app", salt="child")
    plan = plan_of(decision(reg, "team/app", child))
    reg.index("team/app", [child], "v2")  # a new multi-arch release reuses the child
    report = apply(reg, plan)
    assert statuses(report)[child] == (SKIPPED, "changed since plan: new content tagged v2 needs it")


def test_a_kept_tag_moved_onto_a_doomed_digest_saves_it() -> None:
    reg = FakeRegistry()
    kept = reg.image("team/app", "prod")
    old = reg.image("team/app", "v0", salt="old")
    plan = plan_of(decision(reg, "team/app", kept, Action.KEEP), decision(reg, "team/app", old))
    reg.tags["team/app"]["prod"] = old  # production rolled back onto the old image
    report = apply(reg, plan)
    assert statuses(report)[old] == (SKIPPED, "changed since plan: tag prod now points at it")


def test_a_long_run_reads_the_repository_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_mod, "SNAPSHOT_AGE", 0.0)  # every check finds the snapshot stale
    reg = FakeRegistry()
    a = reg.image("team/app", salt="a")
    b = reg.image("team/app", salt="b")
    plan = plan_of(decision(reg, "team/app", a), decision(reg, "team/app", b))

    async def main() -> tuple[str | None, str | None]:
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport(), max_wait=0) as c:
            backend = RemoteBackend(DistributionApi(c), plan, verify="repository")
            first = await backend.verify(plan.decisions[0])
            reg.tags["team/app"]["late"] = b  # tagged while the run goes on
            return first, await backend.verify(plan.decisions[1])

    assert asyncio.run(main()) == (None, "tag late now points at it")


# untag ---------------------------------------------------------------------------------------


def test_untag_removes_only_the_named_tag_and_leaves_no_throwaway() -> None:
    reg = FakeRegistry()
    d = reg.image("team/app", "v1", "keep")
    plan = plan_of(decision(reg, "team/app", d, Action.UNTAG, remove_tags=("v1",)))
    writable(reg)
    report = apply(reg, plan)
    assert statuses(report)[d] == (DONE, "")
    assert reg.tags["team/app"] == {"keep": d}
    assert d in reg.manifests
    throwaways = [x for x, (data, _) in reg.manifests.items() if THROWAWAY_ARTIFACT.encode() in data]
    assert throwaways == []
    assert f"/v2/team/app/manifests/{d}" not in deletes(reg)  # the kept digest itself: never


def test_a_throwaway_that_cannot_be_removed_is_named_in_the_report() -> None:
    reg = FakeRegistry()
    d = reg.image("team/app", "v1", "keep")
    plan = plan_of(decision(reg, "team/app", d, Action.UNTAG, remove_tags=("v1",)))
    writable(reg)
    inner = reg.override
    deletes_seen: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response | None:
        if request.method == "DELETE":
            deletes_seen.append(request.url.path)
            if len(deletes_seen) > 1:  # the probe passes, the throwaway's delete fails
                return errors(500, "UNKNOWN")
        return inner(request)  # type: ignore[misc]

    reg.override = flaky
    report = apply(reg, plan)
    status, detail = statuses(report)[d]
    assert status == DONE
    assert (
        detail.startswith("throwaway manifest team/app@sha256:")
        and "on tag v1 could not be removed" in detail
    )


@pytest.mark.parametrize("what", ["digest gone", "kept tag moved"])
def test_an_untag_that_cost_more_than_the_tag_is_reported_failed(what: str) -> None:
    """A registry that deletes the image (or another tag) when asked to untag must not pass silently."""
    reg = FakeRegistry()
    d = reg.image("team/app", "v1", "keep")
    other = reg.image("team/app", salt="other")
    plan = plan_of(decision(reg, "team/app", d, Action.UNTAG, remove_tags=("v1",)))
    writable(reg)
    inner = reg.override

    def bad(request: httpx.Request) -> httpx.Response | None:
        answer = inner(request)  # type: ignore[misc]
        if request.method == "PUT" and "/manifests/" in request.url.path:
            if what == "digest gone":
                reg.manifests.pop(d, None)
            else:
                reg.tags["team/app"]["keep"] = other
        return answer

    reg.override = bad
    report = apply(reg, plan)
    status, detail = statuses(report)[d]
    assert status == FAILED
    assert ("no longer exists" if what == "digest gone" else "kept tag team/app:keep resolves to") in detail


# the journal -----------------------------------------------------------------------------------


class Fsyncs(list[tuple[int, bytes]]):
    """Each os.fsync of a file: (requests `reg` had seen by then, the file's bytes then)."""

    reg: FakeRegistry


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Fsyncs:
    calls = Fsyncs()
    real = os.fsync

    def spy(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if not os.path.isdir(path):
            calls.append((len(calls.reg.log), Path(path).read_bytes()))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def test_the_journal_intent_is_on_disk_before_the_delete_is_sent(tmp_path: Path, fsyncs: Fsyncs) -> None:
    reg = FakeRegistry()
    fsyncs.reg = reg
    old = reg.image("team/app", "v1", "v2")
    raw = reg.manifests[old][0]
    journal = Journal(tmp_path / "j.jsonl", "registry.test")
    report = apply(reg, plan_of(decision(reg, "team/app", old)), journal=journal)
    journal.close()
    assert statuses(report)[old] == (DONE, "")
    sent = next(i for i, (m, _) in enumerate(reg.log) if m == "DELETE" and old in _)
    durable = [data for seen, data in fsyncs if seen <= sent and old.encode() in data]
    assert durable, "no fsync of the intent before the DELETE went out"
    intent = json.loads(durable[0].splitlines()[-1])
    assert intent["type"] == "intent" and intent["digest"] == old
    assert base64.b64decode(intent["manifest"]) == raw
    assert intent["tags"] == ["v1", "v2"] and intent["action"] == "delete"
    assert intent["registry"] == "registry.test" and intent["repository"] == "team/app"
    assert intent["media_type"] == OCI_MANIFEST and intent["api"] == "distribution"
    records = list(read_journal(tmp_path / "j.jsonl"))
    assert [r["type"] for r in records] == ["intent", "outcome"]
    assert records[1]["status"] == "done" and records[1]["detail"] == ""


def test_a_failed_delete_is_journaled_as_failed(tmp_path: Path) -> None:
    reg = FakeRegistry()
    old = reg.image("team/app", "v1")
    plan = plan_of(decision(reg, "team/app", old))
    refuse(reg, "DELETE", errors(500, "UNKNOWN"))
    journal = Journal(tmp_path / "j.jsonl", "registry.test")
    apply(reg, plan, journal=journal)
    journal.close()
    outcome = [r for r in read_journal(tmp_path / "j.jsonl") if r["type"] == "outcome"]
    assert outcome[0]["status"] == "failed" and "500" in outcome[0]["detail"]


def test_an_already_gone_delete_is_journaled_so(tmp_path: Path) -> None:
    reg = FakeRegistry()
    old = reg.image("team/app", "v1")
    plan = plan_of(decision(reg, "team/app", old))
    refuse(reg, "DELETE", errors(404, "MANIFEST_UNKNOWN"))
    journal = Journal(tmp_path / "j.jsonl", "registry.test")
    apply(reg, plan, journal=journal)
    journal.close()
    outcome = [r for r in read_journal(tmp_path / "j.jsonl") if r["type"] == "outcome"]
    assert (outcome[0]["status"], outcome[0]["detail"]) == ("done", "already gone")


def test_a_manifest_gone_before_its_intent_is_not_deleted_again(tmp_path: Path) -> None:
    """No manifest to journal (someone deleted it): "already gone", and no DELETE is sent."""
    reg = FakeRegistry()
    old = reg.image("team/app")
    d = decision(reg, "team/app", old)
    d.artifact.raw = None  # a saved plan: the journal fetches the manifest
    del reg.manifests[old]
    journal = Journal(tmp_path / "j.jsonl", "registry.test")
    report = apply(reg, plan_of(d), journal=journal)
    journal.close()
    assert statuses(report)[old] == (DONE, "already gone")
    assert deletes(reg) == []


def test_an_untag_is_journaled_before_the_throwaway_is_pushed(tmp_path: Path, fsyncs: Fsyncs) -> None:
    reg = FakeRegistry()
    fsyncs.reg = reg
    d = reg.image("team/app", "v1", "keep")
    plan = plan_of(decision(reg, "team/app", d, Action.UNTAG, remove_tags=("v1",)))
    writable(reg)
    journal = Journal(tmp_path / "j.jsonl", "registry.test")
    apply(reg, plan, journal=journal)
    journal.close()
    first_put = next(i for i, (m, p) in enumerate(reg.log) if m == "PUT" and "/manifests/" in p)
    durable = [data for seen, data in fsyncs if seen <= first_put and d.encode() in data]
    assert durable
    intent = json.loads(durable[0].splitlines()[-1])
    assert (
        intent["action"] == "untag" and intent["remove_tags"] == ["v1"] and intent["tags"] == ["keep", "v1"]
    )
    records = list(read_journal(tmp_path / "j.jsonl"))
    assert [r["type"] for r in records] == ["intent", "outcome"]


def test_a_referrers_subject_is_journaled(tmp_path: Path) -> None:
    reg = FakeRegistry()
    image = reg.image("team/app", "v1")
    sig = reg.image("team/app", image.replace(":", "-") + ".sig", salt="sig")
    d = decision(reg, "team/app", sig)
    d.artifact.kind, d.artifact.subject = Kind.REFERRER, image
    journal = Journal(tmp_path / "j.jsonl", "registry.test")
    apply(reg, plan_of(d), journal=journal)
    journal.close()
    intent = next(iter(read_journal(tmp_path / "j.jsonl")))
    assert intent["kind"] == "referrer" and intent["subject"] == image and intent["children"] == []
