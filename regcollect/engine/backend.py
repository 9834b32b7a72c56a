"""Apply plan items to the Docker Engine, with docker's semantics and nothing more forceful.

A delete removes the repository's tags by name, so the last one deletes the image exactly as
`docker rmi name` does (a stopped container still refuses it unless the user chose otherwise);
an untagged image goes by id. Untagged parents go with their last child, as docker prunes them.
Each item is re-inspected first: new tags, or a container created since the plan, skip it.
"""

from __future__ import annotations

from regcollect.engine.client import EngineClient
from regcollect.errors import NotFound
from regcollect.planner import Action, Decision, Plan


class LocalBackend:
    def __init__(self, engine: EngineClient, plan: Plan, journal: object = None):
        self.engine = engine
        self.journal = journal
        self.planned_containers = {d.digest: {c.id for c in d.artifact.containers} for d in plan.decisions}

    async def verify(self, d: Decision) -> str | None:
        try:
            info = self.engine.inspect(d.digest)
        except NotFound:
            return None  # already gone: delete reports it so
        tags = {t.rsplit(":", 1)[1] for t in info.get("RepoTags") or [] if _repo(t) == d.repository}
        if d.action is Action.DELETE:
            new = sorted(tags - set(d.artifact.tags))
            if new:
                return f"new tag {d.repository}:{new[0]} points at it"
        users = [c for c in self.engine.containers() if c.get("ImageID") == d.digest]
        planned = self.planned_containers.get(d.digest, set())
        for c in users:
            name = (c.get("Names") or ["?"])[0].lstrip("/")
            if c.get("State") == "running" and d.action is Action.DELETE:
                return f"container {name} now runs it"
            if c["Id"] not in planned and d.action is Action.DELETE:
                return f"container {name} was created from it since the plan"
        return None

    async def untag(self, d: Decision) -> str | None:
        for tag in d.remove_tags:
            try:
                self.engine.remove_image(f"{d.repository}:{tag}")
            except NotFound:
                continue
        self._record(d, "done")
        return None

    async def delete(self, d: Decision) -> str | None:
        for cid in d.containers_first:
            try:
                self.engine.remove_container(cid)
            except NotFound:
                pass
        try:
            if d.force:
                self.engine.remove_image(d.digest, force=True)
                self._record(d, "done")
                return "forced: layers stay on disk until its containers are removed"
            for tag in d.artifact.tags:
                try:
                    self.engine.remove_image(f"{d.repository}:{tag}")
                except NotFound:
                    continue
            try:
                info = self.engine.inspect(d.digest)
            except NotFound:
                self._record(d, "done")
                return None
            if info.get("RepoTags"):
                self._record(d, "done")
                return None  # other repositories still name it; their items remove those tags
            self.engine.remove_image(d.digest)
        except NotFound:
            self._record(d, "done", "already gone")
            return "already gone"
        self._record(d, "done")
        return None

    def _record(self, d: Decision, status: str, detail: str = "") -> None:
        if self.journal is not None:
            self.journal.local(d, status, detail)  # type: ignore[attr-defined]


def _repo(ref: str) -> str:
    from regcollect.engine.inventory import repo_and_tag

    return repo_and_tag(ref)[0]
