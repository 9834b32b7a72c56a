"""The seam between the shared remote pipeline and each kind of registry.

Every registry regcollect prunes speaks the Registry API for reading manifests and blobs
(RegistryClient). They differ in how they list what they hold and how they delete: distribution
lists tags and deletes by digest; GitHub Packages lists versions (digest, id, tags, push time,
untagged ones too) and deletes by id over its REST API. A RegistryApi does exactly those parts.
Discovery, planning, re-verification, the executor and the journal are shared and never ask which
kind they talk to (as regclient's schemes). What a kind lacks is declared here, never guessed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from regcollect.errors import AuthError, DeleteDisabled, NotFound, RegistryError, UsageError
from regcollect.globs import has_wildcard, repo_matches
from regcollect.registry.client import RegistryClient, valid_repository

PROBE_DIGEST = "sha256:" + "0" * 64


@dataclass
class Version:
    """One stored manifest as a vendor's API describes it."""

    digest: str
    id: str | None = None
    tags: tuple[str, ...] = ()
    pushed: dt.datetime | None = None
    pulled: dt.datetime | None = None  # last pull, where the API reports it (None: never pulled)


@dataclass
class Listing:
    """What the API says a repository holds. `tags` maps each tag to its digest where the API
    says, or to None where the Registry API must resolve it; `versions` is every stored manifest
    the API can see, untagged ones included (empty where it sees only tags)."""

    tags: dict[str, str | None]
    versions: dict[str, Version] = field(default_factory=dict)


class RegistryApi(Protocol):
    kind: str
    client: RegistryClient  # the Registry API side: manifests, blobs, throwaway pushes
    # The API removes one tag and leaves the manifest and its other tags (Docker Hub, Harbor):
    # untag uses delete_tag. Otherwise untag moves the tag onto a throwaway manifest.
    tag_delete: bool
    # The API reports last pulls (Version.pulled), so `unpulled_for` can be answered.
    pull_times: bool
    # Where regcollect's deletes leave storage to the registry's own garbage collection, a note
    # for the report (distribution: the command to run), else None.
    gc_note: str | None

    async def repositories(self, patterns: list[str]) -> list[str]: ...

    async def listing(self, repo: str) -> Listing: ...

    async def delete(
        self, repo: str, digest: str, version_id: str | None = None, tags: tuple[str, ...] = ()
    ) -> bool:
        """Delete a stored manifest (`tags`: the tags the plan saw on it, for APIs that delete
        by tag); False when it was already gone (idempotent)."""
        ...

    async def delete_tag(self, repo: str, tag: str) -> bool:
        """Only where tag_delete: remove one tag, keep the manifest. False if already gone."""
        ...

    async def probe_delete(self, repo: str) -> None:
        """Raise DeleteDisabled or AuthError when this run may not delete in `repo`, touching
        nothing (before writing a throwaway manifest that would then stay)."""
        ...

    def record(self, repo: str, digest: str, version_id: str | None) -> dict[str, Any]:
        """What the journal must keep so `restore` needs nothing but the journal."""
        ...

    async def aclose(self) -> None: ...


class DistributionApi:
    """The Registry API alone (CNCF distribution, zot, and any OCI registry that deletes)."""

    kind = "distribution"
    pull_times = False
    tag_delete = False  # DELETE by tag is left open by the spec: some registries delete the image
    gc_note: str | None = (
        "Storage returns only after the registry's own garbage collection. For the CNCF distribution "
        "registry, with the registry stopped or read-only: "
        "registry garbage-collect --delete-untagged=false /etc/docker/registry/config.yml"
    )

    def __init__(self, client: RegistryClient):
        self.client = client

    async def repositories(self, patterns: list[str]) -> list[str]:
        """The catalog only when a pattern has a wildcard; literal names work without one."""
        literal = [p for p in patterns if not has_wildcard(p)]
        for name in literal:
            if not valid_repository(name):
                raise UsageError(f"invalid repository name {name!r}")
        wild = [p for p in patterns if has_wildcard(p)]
        names: list[str] = []
        if wild:
            try:
                catalog = await self.client.catalog()
            except NotFound:
                raise UsageError(
                    f"registry {self.client.host} has no catalog (404): name repositories without wildcards"
                ) from None
            names = [r for r in catalog if any(repo_matches(p, r) for p in wild)]
        return sorted(set(names) | set(literal))

    async def listing(self, repo: str) -> Listing:
        return Listing(tags=dict.fromkeys(await self.client.tags(repo)))

    async def delete(
        self, repo: str, digest: str, version_id: str | None = None, tags: tuple[str, ...] = ()
    ) -> bool:
        """DELETE by digest, with the refusals that concern the whole run made clear."""
        try:
            return await self.client.delete_manifest(repo, digest)
        except AuthError as exc:
            raise AuthError(
                f"missing permission: the credentials may not delete in repository {repo} "
                f"(action 'delete' needed; {exc})"
            ) from None
        except DeleteDisabled:
            raise
        except RegistryError as exc:
            if exc.status in (400, 405) and exc.code in (None, "UNSUPPORTED"):
                raise DeleteDisabled(
                    f"the registry has deletion disabled ({exc}); "
                    "in distribution set storage.delete.enabled: true",
                    status=exc.status,
                    code=exc.code,
                ) from None
            if digest == PROBE_DIGEST and exc.status == 400:
                return False  # DIGEST_INVALID and the like on an impossible digest: deletes work
            raise

    async def delete_tag(self, repo: str, tag: str) -> bool:
        raise NotImplementedError("distribution untags with a throwaway manifest")

    async def probe_delete(self, repo: str) -> None:
        """DELETE a digest that cannot exist: 404 means deletes work here."""
        await self.delete(repo, PROBE_DIGEST)

    def record(self, repo: str, digest: str, version_id: str | None) -> dict[str, Any]:
        return {"api": self.kind}

    async def aclose(self) -> None:
        await self.client.aclose()
