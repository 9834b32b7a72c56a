"""Discovery against a registry that lies, truncates or sends odd names: the plan must never be
built on a partial or forged view. A repository that cannot be read whole is left untouched."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import pytest

from regcollect.cache import FactCache
from regcollect.planner import Action, evaluate
from regcollect.policy import policy_from_flags
from regcollect.registry import http as http_mod
from regcollect.registry.api import DistributionApi
from regcollect.registry.client import RegistryClient
from regcollect.registry.inventory import RemoteDiscovery
from tests.support.fakeoci import FakeRegistry, canonical, digest

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def plan(reg: FakeRegistry, *, keep_last: int = 1, cache: FactCache | None = None):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        async with RegistryClient(f"https://{reg.host}", transport=reg.transport()) as c:
            inv = await RemoteDiscovery(DistributionApi(c), cache=cache).inventory(["team/app"])
        return inv, evaluate(
            inv,
            policy_from_flags(
                repos=(),
                keep_last=keep_last,
                keep_tags=("prod",),
                older_than=None,
                untagged=False,
                keep_labels=(),
            ),
            NOW,
        )

    return asyncio.run(main())


def paged(reg: FakeRegistry, link: str) -> None:
    """Tags in pages of one; the next-page link spelled as `link` ({last} is the page's tag)."""

    def override(request: httpx.Request) -> httpx.Response | None:
        if not request.url.path.endswith("/tags/list"):
            return None
        tags = sorted(reg.tags["team/app"])
        last = request.url.params.get("last")
        i = tags.index(last) + 1 if last else 0
        headers = {"Link": f'<{link.format(last=tags[i])}>; rel="next"'} if i + 1 < len(tags) else {}
        return httpx.Response(200, json={"tags": [tags[i]]}, headers=headers)

    reg.override = override


def two_pages() -> FakeRegistry:
    reg = FakeRegistry()
    shared = reg.image("team/app", "old", created="2025-01-01T00:00:00Z")
    reg.tags["team/app"]["prod"] = shared  # the same digest, on the second page
    reg.image("team/app", "new", created="2026-11-01T00:00:00Z", salt="n")
    return reg


@pytest.mark.parametrize(
    "link",
    [
        "http://registry.test/v2/team/app/tags/list?n=1&last={last}",  # http behind a TLS proxy
        "https://10.0.0.7:5000/v2/team/app/tags/list?n=1&last={last}",  # the registry by another name
    ],
)
def test_a_next_page_on_another_origin_leaves_the_repository_untouched(link: str) -> None:
    reg = two_pages()
    paged(reg, link)
    inv, p = plan(reg)
    assert p.count(Action.DELETE) == 0 and p.count(Action.UNTAG) == 0
    assert inv.unread == ["team/app"]
    assert "next page is on another origin" in p.errors[0]
    assert not any(host in path for _, path in reg.log for host in ("10.0.0.7",))


@pytest.mark.parametrize(
    "link",
    [
        "/v2/team/app/tags/list?n=1&last={last}",
        "https://REGISTRY.TEST:443/v2/team/app/tags/list?n=1&last={last}",
        "https://registry.test./v2/team/app/tags/list?n=1&last={last}",
    ],
)
def test_a_next_page_on_the_same_origin_however_spelled_is_followed(link: str) -> None:
    reg = two_pages()
    paged(reg, link)
    inv, p = plan(reg)
    assert not p.errors
    by_tags = {d.artifact.tags: d for d in p.decisions}
    assert by_tags[("old", "prod")].action is Action.UNTAG  # prod (page 2) keeps the digest
    assert by_tags[("old", "prod")].remove_tags == ("old",)


def test_a_link_that_never_ends_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_mod, "MAX_PAGES", 25)
    reg = FakeRegistry()
    reg.image("team/app", "v0")
    count = iter(range(10**6))

    def endless(request: httpx.Request) -> httpx.Response | None:
        if not request.url.path.endswith("/tags/list"):
            return None
        n = next(count)
        return httpx.Response(
            200, json={"tags": [f"t{n}"]}, headers={"Link": f'</v2/team/app/tags/list?p={n}>; rel="next"'}
        )

    reg.override = endless
    inv, p = plan(reg)
    assert inv.unread == ["team/app"] and "more than 25 pages" in p.errors[0]
    assert sum(1 for _, path in reg.log if "tags/list" in path) == 25


def test_a_page_that_adds_nothing_new_ends_the_listing_as_incomplete() -> None:
    reg = FakeRegistry()
    reg.image("team/app", "v0")
    count = iter(range(10**6))

    def repeating(request: httpx.Request) -> httpx.Response | None:
        if not request.url.path.endswith("/tags/list"):
            return None
        return httpx.Response(
            200,
            json={"tags": ["v0"]},
            headers={"Link": f'</v2/team/app/tags/list?p={next(count)}>; rel="next"'},
        )

    reg.override = repeating
    inv, p = plan(reg)
    assert inv.unread == ["team/app"] and "added nothing new" in p.errors[0]


def test_a_forged_config_on_one_registry_cannot_change_the_plan_on_another(tmp_path: Path) -> None:
    """The fact cache is shared across registries: only bytes that match their digest enter it."""
    honest = FakeRegistry()
    honest.image("team/app", "latest", created="2026-11-29T00:00:00Z", salt="l")
    honest.image("team/app", "old", created="2026-01-01T00:00:00Z", salt="o")
    latest = honest.tags["team/app"]["latest"]
    real_config = [d for d in honest.blobs if b"2026-11-29" in honest.blobs[d]][0]

    hostile = FakeRegistry(host="evil.test")
    forged = canonical({"created": "2001-01-01T00:00:00Z"})
    hostile.blobs[real_config] = forged  # the forgery, served under the real config's digest
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": real_config,
            "size": 10,
        },
        "layers": [],
    }
    hostile.put("team/app", canonical(doc), "application/vnd.oci.image.manifest.v1+json", "x")

    cache = FactCache(tmp_path / "facts.sqlite")
    inv, p = plan(hostile, cache=cache)
    assert inv.unread == ["team/app"] and "does not match its digest" in p.errors[0]
    _, p = plan(honest, cache=cache)
    cache.close()
    kept = {d.digest for d in p.decisions if d.action is Action.KEEP}
    assert latest in kept


def test_tags_that_are_not_valid_names_are_dropped_with_a_warning_and_never_requested() -> None:
    reg = FakeRegistry()
    reg.image("team/app", "v1")
    reg.tags["team/app"]["../../../other/manifests/latest"] = reg.tags["team/app"]["v1"]
    reg.tags["team/app"]["bad\x1b[31m"] = reg.tags["team/app"]["v1"]
    inv, p = plan(reg)
    assert not p.errors
    assert any("2 name(s) that are not valid" in w for w in p.warnings)
    assert not any("other" in path or "\x1b" in path or "%1B" in path for _, path in reg.log)


def test_an_index_naming_an_invalid_child_digest_leaves_the_repository_untouched() -> None:
    reg = FakeRegistry()
    child = reg.image("team/app", created="2025-01-01T00:00:00Z")
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"digest": child, "size": 1}, {"digest": "sha256:../../x", "size": 1}],
    }
    reg.put("team/app", canonical(doc), "application/vnd.oci.image.index.v1+json", "v1")
    reg.image("team/app", "v2", salt="2")
    inv, p = plan(reg)
    assert inv.unread == ["team/app"] and "invalid digest" in p.errors[0]
    assert digest(canonical(doc)) not in {d.digest for d in p.decisions}
