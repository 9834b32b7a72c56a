"""Property: whatever the inventory, policy and failures, a run never breaks what the plan keeps.

Planner + executor against an in-memory registry (tests/support/fakeregistry.py) with random
inventories (images, nested multi-arch indexes with shared children, OCI and cosign-style
referrers, multi-tagged digests, untagged orphans), random policies, and random trouble: deletes
answered 500, deletes refused as changed, a fatal error mid-run, tags moved since the plan.
After any run: every tag the plan kept still points where it did, and everything it reaches
exists; no referrer that still exists lost its subject in the run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from regcollect.errors import PolicyError
from regcollect.executor import execute
from regcollect.model import Artifact, Inventory, Kind
from regcollect.planner import Action, evaluate
from regcollect.policy import policy_from_flags
from tests.support.fakeregistry import FakeBackend, FakeRegistry

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
REPOS = ("team/app", "team/web")


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


@st.composite
def repository(draw: st.DrawFn, repo: str) -> list[Artifact]:
    arts: list[Artifact] = []
    n = draw(st.integers(1, 9))
    for i in range(n):
        kind = (
            draw(st.sampled_from(["image", "image", "index", "oci-ref", "cosign-ref"])) if arts else "image"
        )
        tags = [
            f"{p}{i}"
            for p in draw(st.lists(st.sampled_from(["v", "prod-", "dev-"]), max_size=2, unique=True))
        ]
        a = Artifact(repository=repo, digest=dg(f"{repo}/{i}"), tags=tuple(tags))
        if kind == "image":
            days = draw(st.one_of(st.none(), st.integers(0, 90)))
            a.created = None if days is None else NOW - dt.timedelta(days=days)
        elif kind == "index":
            # Earlier images and indexes: nested indexes, children shared between indexes.
            pool = [x for x in arts if x.kind is not Kind.REFERRER]
            kids = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique_by=lambda x: x.digest))
            a.kind, a.children = Kind.INDEX, tuple(k.digest for k in kids)
        else:
            subject = draw(st.sampled_from(arts)).digest  # referrers of referrers too
            a.kind, a.subject = Kind.REFERRER, subject
            a.created = NOW - dt.timedelta(days=draw(st.integers(0, 90)))
            if kind == "cosign-ref":
                suffix = draw(st.sampled_from([".sig", ".att", ""]))
                cosign_tag = subject.replace(":", "-") + suffix
                if any(cosign_tag in x.tags for x in arts):
                    a.tags = ()  # one tag names one digest
                else:
                    a.tags = (cosign_tag,)
        arts.append(a)
    return arts


class Case:
    """A random inventory that prints as one short line per artifact (hypothesis shows it)."""

    def __init__(self, arts: list[Artifact]):
        self.inv = Inventory(source="remote", target="fake", artifacts=arts)
        self.names = {(a.repository, a.digest): f"{a.repository}/{i}" for i, a in enumerate(arts)}

    def name(self, repo: str, digest: str) -> str:
        return self.names.get((repo, digest), digest[:19])

    def __repr__(self) -> str:
        lines = []
        for a in self.inv.artifacts:
            line = f"{self.name(a.repository, a.digest)} {a.kind.value} tags={list(a.tags)}"
            if a.created:
                line += f" age={(NOW - a.created).days}d"
            if a.children:
                line += " children=" + ",".join(self.name(a.repository, c) for c in a.children)
            if a.subject:
                line += f" subject={self.name(a.repository, a.subject)}"
            lines.append(line)
        return "Case(\n  " + "\n  ".join(lines) + ")"


@st.composite
def inventories(draw: st.DrawFn) -> Case:
    repos = draw(st.lists(st.sampled_from(REPOS), min_size=1, max_size=2, unique=True))
    return Case([a for r in repos for a in draw(repository(r))])


policies = st.builds(
    lambda keep_last, keep_tags, older_than, untagged: policy_from_flags(
        repos=(),
        keep_last=keep_last,
        keep_tags=tuple(keep_tags),
        older_than=older_than,
        untagged=untagged,
        keep_labels=(),
    ),
    st.one_of(st.none(), st.integers(0, 3)),
    st.lists(st.sampled_from(["prod-*", "v1*", "dev-2"]), max_size=2, unique=True),
    st.sampled_from([None, "30d"]),
    st.booleans(),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=inventories(), data=st.data())
def test_a_run_never_breaks_what_the_plan_keeps(case: Case, data: st.DataObject) -> None:
    inv = case.inv
    try:
        pol = data.draw(policies, label="policy")
    except PolicyError:
        assume(False)
        return
    plan = evaluate(inv, pol, NOW)
    registry = FakeRegistry.from_inventory(inv)
    backend = FakeBackend(registry, plan)

    # Trouble since the plan: tags moved (kept, doomed or new ones) onto any digest of the repository.
    for _ in range(data.draw(st.integers(0, 2), label="moves")):
        repo = data.draw(st.sampled_from(sorted(registry.manifests)), label="repo")
        tag = data.draw(st.sampled_from(sorted(registry.tags[repo]) + ["new-tag"]), label="tag")
        onto = data.draw(st.sampled_from(sorted(registry.manifests[repo])), label="onto")
        registry.move_tag(repo, tag, onto)
    # Trouble during the run: deletes that fail, are refused, or stop the run.
    deletes = [d for d in plan.decisions if d.action is Action.DELETE]
    if deletes:
        for d in data.draw(st.lists(st.sampled_from(deletes), max_size=3, unique_by=id), label="failing"):
            backend.fail_delete(
                d.repository, d.digest, data.draw(st.sampled_from(["500", "changed", "fatal"]))
            )
    before = registry.snapshot()
    report = asyncio.run(
        execute(plan, backend, concurrency=data.draw(st.integers(1, 4), label="concurrency"))
    )
    note(
        "\n".join(
            f"{case.name(o.decision.repository, o.decision.digest)}: {o.status} {o.detail}"
            for o in report.outcomes
        )
    )

    kept = {(d.repository, t) for d in plan.decisions for t in d.kept_tags}
    for repo, tag in sorted(kept):
        target = before.tags[repo].get(tag)
        if target is None:
            continue
        assert registry.tags[repo].get(tag) == target, f"kept tag {repo}:{tag} lost"
        for need in sorted(before.reaches(repo, target)):
            if before.exists(repo, need):
                assert registry.exists(repo, need), (
                    f"kept tag {repo}:{tag} reaches deleted {case.name(repo, need)}"
                )
    for a in inv.artifacts:
        repo, subject = a.repository, a.subject
        if subject and registry.exists(repo, a.digest) and before.exists(repo, subject):
            assert registry.exists(repo, subject), (
                f"referrer {case.name(repo, a.digest)} lost its subject {case.name(repo, subject)}"
            )
