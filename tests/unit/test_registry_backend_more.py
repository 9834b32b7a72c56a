"""RemoteBackend edges (issue 21: mutation survivors): a signature pushed since the plan saves
its subject, a fresh listing is reused rather than read twice, what a vendor API's delete is
given, and the exact words when a registry's untag deleted the image."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import httpx

from regcollect.executor import FAILED, SKIPPED, execute
from regcollect.journal import Journal
from regcollect.journal import read as read_journal
from regcollect.planner import Action
from regcollect.registry.api import DistributionApi
from regcollect.registry.backend import RemoteBackend
from regcollect.registry.client import RegistryClient
from tests.support.fakeoci import OCI_MANIFEST, FakeRegistry, canonical
from tests.unit.test_registry_backend import apply, decision, plan_of, statuses, writable


def test_a_signature_pushed_since_the_plan_saves_its_subject() -> None:
    reg = FakeRegistry()
    image = reg.image("team/app", salt="image")
    plan = plan_of(decision(reg, "team/app", image))
    data, _ = reg.manifests[image]
    sig = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": image, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": image, "size": len(data)},
    }
    reg.put("team/app", canonical(sig), OCI_MANIFEST, "sha256-sig")
    report = apply(reg, plan)
    assert statuses(report)[image] == (SKIPPED, "changed since plan: new content tagged sha256-sig needs it")


class RecordingApi(DistributionApi):
    """DistributionApi that remembers what each delete was given (vendor APIs delete by id/tag)."""

    def __init__(self, client: RegistryClient) -> None:
        super().__init__(client)
        self.deletes: list[tuple[Any, ...]] = []
        self.listings = 0

    async def delete(
        self, repo: str, digest: str, version_id: str | None = None, tags: tuple[str, ...] = ()
    ) -> bool:
        self.deletes.append((repo, digest, version_id, tags))
        return await super().delete(repo, digest, version_id, tags)

    async def listing(self, repo: str):  # type: ignore[no-untyped-def]
        self.listings += 1
        return await super().listing(repo)


def test_a_delete_gives_the_api_the_version_id_and_the_tags_the_plan_saw() -> None:
    reg = FakeRegistry()
    old = reg.image("team/app", "v1", "v2")
    d = decision(reg, "team/app", old)
    d.artifact.version_id = "4711"
    plan = plan_of(d)

    async def main() -> RecordingApi:
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport(), max_wait=0) as c:
            api = RecordingApi(c)
            await execute(plan, RemoteBackend(api, plan, verify="repository"))
            return api

    assert asyncio.run(main()).deletes == [("team/app", old, "4711", ("v1", "v2"))]


def test_a_listing_the_inventory_just_read_is_reused_a_stale_one_is_not() -> None:
    reg = FakeRegistry()
    old = reg.image("team/app", "v1")
    plan = plan_of(decision(reg, "team/app", old))

    async def main(age: float) -> tuple[int, str | None]:
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport(), max_wait=0) as c:
            api = RecordingApi(c)
            listing = await DistributionApi(c).listing("team/app")
            c.recent["team/app"] = (time.monotonic() - age, listing)
            reg.tags["team/app"]["late"] = old  # tagged after that listing
            why = await RemoteBackend(api, plan, verify="repository").verify(plan.decisions[0])
            assert "team/app" not in c.recent  # used once
            return api.listings, why

    assert asyncio.run(main(0.0)) == (0, None)  # fresh: reused (the late tag is not in it)
    reg.tags["team/app"].pop("late")
    assert asyncio.run(main(3600.0)) == (1, "tag late now points at it")


def test_an_untag_journal_intent_fetches_the_manifest_it_lacks(tmp_path: Path) -> None:
    reg = FakeRegistry()
    d = reg.image("team/app", "v1", "keep")
    dec = decision(reg, "team/app", d, Action.UNTAG, remove_tags=("v1",))
    dec.artifact.raw = None
    writable(reg)
    journal = Journal(tmp_path / "j.jsonl", "registry.test")
    apply(reg, plan_of(dec), journal=journal)
    journal.close()
    intent = next(r for r in read_journal(tmp_path / "j.jsonl") if r["type"] == "intent")
    assert base64.b64decode(intent["manifest"]) == reg.manifests[d][0]


def test_an_untag_that_deleted_the_image_says_so_exactly() -> None:
    reg = FakeRegistry()
    d = reg.image("team/app", "v1", "keep")
    plan = plan_of(decision(reg, "team/app", d, Action.UNTAG, remove_tags=("v1",)))
    writable(reg)
    inner = reg.override

    def bad(request: httpx.Request) -> httpx.Response | None:
        answer = inner(request)  # type: ignore[misc]
        if request.method == "PUT" and "/manifests/" in request.url.path:
            reg.manifests.pop(d, None)
        return answer

    reg.override = bad
    assert statuses(apply(reg, plan))[d] == (
        FAILED,
        f"after untagging, team/app@{d} no longer exists: the registry deleted the image, not only "
        "the tag (restore it from the journal)",
    )
