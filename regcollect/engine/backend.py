"""Apply plan items to the Docker Engine, with docker's semantics and nothing more forceful.

A delete removes the repository's tags by name, so the last one deletes the image exactly as
`docker rmi name` does: a name never removes a tag the plan did not name, and the engine itself
refuses (409) an image a container uses, reported as "changed since plan". Re-verification uses a
snapshot of the engine's images (one list call, never older than SNAPSHOT_MAX_AGE seconds when an
item is checked): an image with a tag that is new since the plan is skipped whole. A delete by
id (untagged images, --force) removes every name the image has, so for it a new tag in ANY
repository counts (checked again by inspect right before `rmi -f`); it is also checked against the
containers, since the engine would not refuse it for a new container.
Untagged parents go with their last child, as docker prunes them.
Items of different images run concurrently (the engine deletes a few at once faster than one by
one); items of one image (its tags in several repositories) run one after another, because the
engine answers the loser of such a race with a 500.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

from regcollect.engine.client import EngineClient
from regcollect.engine.inventory import repo_and_tag
from regcollect.errors import ChangedSincePlan, Conflict, NotFound
from regcollect.planner import Action, Decision, Plan

SNAPSHOT_MAX_AGE = 1.0  # seconds; a list call costs ~60 ms on an engine with 1,000 images


class LocalBackend:
    def __init__(
        self, engine: EngineClient, plan: Plan, journal: object = None, stop: threading.Event | None = None
    ):
        self.engine = engine
        self.stop = stop
        self.journal = journal
        self._taken = 0.0
        self._tags: dict[str, set[str]] | None = None
        self._lock = threading.Lock()
        self._image_locks: dict[str, threading.Lock] = {}
        self.planned_containers = {d.digest: {c.id for c in d.artifact.containers} for d in plan.decisions}
        # Every (repository, tag) the plan knew for each image id, in any repository.
        self.planned_tags: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for d in plan.decisions:
            self.planned_tags[d.digest].update((d.repository, t) for t in d.artifact.tags)

    def _new_tags(self, d: Decision, refs: Iterable[str], *, any_repository: bool) -> list[str]:
        """The image's names the plan did not know: in d's repository, or in any (a delete by id)."""
        known = self.planned_tags.get(d.digest, set())
        new = []
        for ref in refs:
            if ref == "<none>:<none>":
                continue
            repo, tag = repo_and_tag(ref)
            if (repo, tag or "") in known or (repo == d.repository and tag in d.artifact.tags):
                continue
            if any_repository or repo == d.repository:
                new.append(ref)
        return sorted(new)

    def _snapshot(self) -> dict[str, set[str]]:
        with self._lock:
            if self._tags is None or time.monotonic() - self._taken > SNAPSHOT_MAX_AGE:
                self._taken = time.monotonic()
                self._tags = {
                    i["Id"]: set(i.get("RepoTags") or []) - {"<none>:<none>"} for i in self.engine.images()
                }
            return self._tags

    def _image_lock(self, digest: str) -> threading.Lock:
        with self._lock:
            return self._image_locks.setdefault(digest, threading.Lock())

    async def verify(self, d: Decision) -> str | None:
        return await asyncio.to_thread(self._verify, d)

    def _verify(self, d: Decision) -> str | None:
        if self.stop is not None and self.stop.is_set():
            return "not attempted: stopping (signal)"
        tags = self._snapshot().get(d.digest)
        if tags is None:
            return None  # already gone: delete reports it so
        by_id = d.force or not d.artifact.tags  # removes every name the image has, in any repository
        if d.action is Action.DELETE:
            new = self._new_tags(d, tags, any_repository=by_id)
            if new:
                return f"new tag {new[0]} points at it"
        if d.action is Action.DELETE and by_id:
            users = [c for c in self.engine.containers() if c.get("ImageID") == d.digest]
            known = self.planned_containers.get(d.digest, set())
            for c in users:
                name = (c.get("Names") or ["?"])[0].lstrip("/")
                if c.get("State") == "running":
                    return f"container {name} now runs it"
                if c["Id"] not in known:
                    return f"container {name} was created from it since the plan"
        return None

    async def untag(self, d: Decision) -> str | None:
        return await asyncio.to_thread(self._one_image_at_a_time, self._untag, d)

    async def delete(self, d: Decision) -> str | None:
        return await asyncio.to_thread(self._one_image_at_a_time, self._delete, d)

    def _one_image_at_a_time(self, change: Callable[[Decision], str | None], d: Decision) -> str | None:
        with self._image_lock(d.digest):
            return change(d)

    def _untag(self, d: Decision) -> str | None:
        for tag in d.remove_tags:
            try:
                self.engine.remove_image(f"{d.repository}:{tag}")
            except NotFound:
                continue
        self._record(d, "done")
        return None

    def _delete(self, d: Decision) -> str | None:
        for cid in d.containers_first:
            try:
                self.engine.remove_container(cid)
            except NotFound:
                pass
        try:
            if d.force:
                # rmi -f removes every tag: look again, as late as possible, for one the plan never saw.
                names = self.engine.inspect(d.digest).get("RepoTags") or []
                new = self._new_tags(d, names, any_repository=True)
                if new:
                    raise Conflict(f"new tag {new[0]} points at it", "new-tag")
                self.engine.remove_image(d.digest, force=True)
                self._record(d, "done")
                return "forced: layers stay on disk until its containers are removed"
            deleted = False
            for tag in d.artifact.tags:
                try:
                    result = self.engine.remove_image(f"{d.repository}:{tag}")
                except NotFound:
                    continue
                deleted = deleted or any(e.get("Deleted") == d.digest for e in result)
            if not deleted:
                try:
                    info = self.engine.inspect(d.digest)
                except NotFound:
                    self._record(d, "done", "already gone")
                    return "already gone"
                if info.get("RepoTags"):
                    self._record(d, "done")
                    return None  # other repositories still name it; their items remove those tags
                self.engine.remove_image(d.digest)
        except Conflict as exc:
            self._record(d, "skipped", str(exc))
            raise ChangedSincePlan(str(exc)) from None
        except NotFound:
            self._record(d, "done", "already gone")
            return "already gone"
        self._record(d, "done")
        return None

    def _record(self, d: Decision, status: str, detail: str = "") -> None:
        if self.journal is not None:
            self.journal.local(d, status, detail)  # type: ignore[attr-defined]
