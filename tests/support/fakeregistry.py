"""An in-memory registry behind the executor's Backend protocol, with a registry's semantics.

A manifest store per repository and tags -> digest, as distribution keeps them: deleting a digest
removes every tag on it and nothing else (an index's children and a subject's referrers stay,
broken or orphaned, exactly the states regcollect must never leave); untag removes one tag and
keeps the digest. `verify` checks what RemoteBackend.verify checks, against the current state:
every tag the plan saw on the item still points at it, and no tag that is new or kept by the plan
now points at it (or at new content that needs it). Failures are injected per digest.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from regcollect.errors import ChangedSincePlan, DeleteDisabled, RegcollectError, RegistryError
from regcollect.model import Inventory
from regcollect.planner import Action, Decision, Plan


@dataclass(frozen=True)
class Manifest:
    children: tuple[str, ...] = ()
    subject: str | None = None  # OCI subject, or the digest a cosign-style tag names


@dataclass
class FakeRegistry:
    manifests: dict[str, dict[str, Manifest]] = field(default_factory=lambda: defaultdict(dict))
    tags: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    @classmethod
    def from_inventory(cls, inv: Inventory) -> FakeRegistry:
        reg = cls()
        for a in inv.artifacts:
            reg.manifests[a.repository][a.digest] = Manifest(a.children, a.subject)
            for t in a.tags:
                reg.tags[a.repository][t] = a.digest
        return reg

    def snapshot(self) -> FakeRegistry:
        return copy.deepcopy(self)

    def exists(self, repo: str, digest: str) -> bool:
        return digest in self.manifests[repo]

    def move_tag(self, repo: str, tag: str, digest: str) -> None:
        """Someone pushed or re-tagged since the plan (a rollback of `latest`, a new release)."""
        assert self.exists(repo, digest)
        self.tags[repo][tag] = digest

    def reaches(self, repo: str, digest: str) -> set[str]:
        """The digest and its children at any depth (what a pull of it needs)."""
        seen: set[str] = set()
        stack = [digest]
        while stack:
            d = stack.pop()
            if d in seen:
                continue
            seen.add(d)
            m = self.manifests[repo].get(d)
            if m is not None:
                stack.extend(m.children)
        return seen

    def delete(self, repo: str, digest: str) -> bool:
        if digest not in self.manifests[repo]:
            return False
        del self.manifests[repo][digest]
        for t in [t for t, d in self.tags[repo].items() if d == digest]:
            del self.tags[repo][t]
        return True


class FakeBackend:
    """The Backend protocol over a FakeRegistry; `fail` maps (repo, digest) to what its delete raises."""

    def __init__(self, registry: FakeRegistry, plan: Plan):
        self.reg = registry
        self.fail: dict[tuple[str, str], RegcollectError] = {}
        self.deleted: list[tuple[str, str]] = []  # in the order the registry saw them
        self.known_tags: dict[str, set[str]] = defaultdict(set)
        self.known_digests: dict[str, set[str]] = defaultdict(set)
        self.kept_tags: dict[str, dict[str, str]] = defaultdict(dict)
        for d in plan.decisions:
            self.known_tags[d.repository].update(d.artifact.tags)
            self.known_digests[d.repository].add(d.digest)
            for t in d.kept_tags:
                self.kept_tags[d.repository][t] = d.digest

    def fail_delete(self, repo: str, digest: str, how: str) -> None:
        self.fail[(repo, digest)] = {
            "500": RegistryError("HTTP 500 from the registry (after retries)", status=500),
            "changed": ChangedSincePlan("the registry refused: in use"),
            "fatal": DeleteDisabled("the registry has deletion disabled", status=405),
        }[how]

    def _unsafe(self, repo: str) -> dict[str, str]:
        unsafe: dict[str, str] = {}
        for tag, digest in sorted(self.reg.tags[repo].items()):
            watched = tag not in self.known_tags[repo] or tag in self.kept_tags[repo]
            if not watched or self.kept_tags[repo].get(tag) == digest:
                continue
            unsafe.setdefault(digest, f"tag {tag} now points at it")
            m = self.reg.manifests[repo].get(digest)
            if digest not in self.known_digests[repo] and m is not None:
                for need in (*m.children, *([m.subject] if m.subject else [])):
                    unsafe.setdefault(need, f"new content tagged {tag} needs it")
        return unsafe

    async def verify(self, d: Decision) -> str | None:
        if d.action is Action.DELETE:
            why = self._unsafe(d.repository).get(d.digest)
            if why:
                return why
        tags: Iterable[str] = d.artifact.tags if d.action is Action.DELETE else d.remove_tags
        for t in tags:
            now = self.reg.tags[d.repository].get(t)
            if now is not None and now != d.digest:
                return f"tag {t} now points at {now[:19]}"
        return None

    async def untag(self, d: Decision) -> str | None:
        for t in d.remove_tags:
            if self.reg.tags[d.repository].get(t) == d.digest:
                del self.reg.tags[d.repository][t]
        for t in d.kept_tags:
            if self.reg.tags[d.repository].get(t) != d.digest:
                raise RegcollectError(f"after untagging, kept tag {d.repository}:{t} moved")
        return None

    async def delete(self, d: Decision) -> str | None:
        exc = self.fail.get((d.repository, d.digest))
        if exc is not None:
            raise exc
        gone_now = self.reg.delete(d.repository, d.digest)
        self.deleted.append((d.repository, d.digest))
        return None if gone_now else "already gone"
