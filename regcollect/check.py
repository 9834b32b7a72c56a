"""`regcollect check`: the findings, what each means, and the engine's (pure). Which findings are
garbage by construction (orphan referrers and orphan children) is decided here: only those may
`--fix` delete. The registry walk is in check_remote.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from regcollect.model import Artifact
from regcollect.units import format_bytes

BROKEN_INDEX, MISSING_BLOB, ORPHAN_REFERRER, ORPHAN_CHILD, UNREADABLE = (
    "broken-index",
    "missing-blob",
    "orphan-referrer",
    "orphan-child",
    "unreadable",
)
BROKEN_PARENT, MISSING_IMAGE, DANGLING = "broken-parent", "missing-image", "dangling"
FIXABLE = (ORPHAN_REFERRER, ORPHAN_CHILD)
WHY = {
    BROKEN_INDEX: "pulls fail on the platforms whose manifest is gone; re-push the image from its "
    "source (docker buildx build --push, regctl image copy SRC DST) or `regcollect restore` the "
    "journal that deleted the child; --fix never deletes it",
    MISSING_BLOB: "pulls fail: the registry lost content the manifest needs",
    ORPHAN_REFERRER: "a signature, attestation or SBOM of nothing: no retention run ever deletes it",
    ORPHAN_CHILD: "a platform manifest of a deleted index: nothing reaches it, it only holds storage",
    UNREADABLE: "clients refuse it: it does not parse or its bytes do not match its digest",
    BROKEN_PARENT: "the image's parent is gone from the engine's records: docker history and "
    "builds from it may fail",
    MISSING_IMAGE: "the container cannot be started again or committed: its image is gone",
    DANGLING: "untagged and nothing depends on it: space docker image prune would free",
}


@dataclass
class Finding:
    kind: str
    repository: str
    digest: str
    tags: tuple[str, ...] = ()
    detail: str = ""
    bytes: int = 0
    artifact: Artifact | None = field(default=None, repr=False)  # what --fix would delete

    @property
    def why(self) -> str:
        return WHY[self.kind]

    @property
    def fixable(self) -> bool:
        return self.kind in FIXABLE

    def line(self) -> str:
        name = f"{self.repository}@{self.digest}" if self.repository else self.digest
        tags = f" (tags {', '.join(self.tags)})" if self.tags else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.kind:<16} {name}{tags}{detail}; {self.why}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
            "detail": self.detail,
            "why": self.why,
            "fixable": self.fixable,
            "bytes": self.bytes,
        }


# local ---------------------------------------------------------------------------------------
def local_findings(
    images: list[dict[str, Any]], containers: list[dict[str, Any]], df: dict[str, Any]
) -> list[Finding]:
    """From the engine's own lists (pure): broken parent chains, containers without their image,
    dangling images with the bytes only they hold."""
    ids = {i.get("Id") for i in images}
    parents = {i.get("ParentId") for i in images if i.get("ParentId")}
    used = {c.get("ImageID") for c in containers}
    unique = {
        i.get("Id"): max(int(i.get("Size") or 0) - max(int(i.get("SharedSize") or 0), 0), 0)
        for i in df.get("Images") or []
    }
    out: list[Finding] = []
    for img in images:
        iid, parent = str(img.get("Id") or ""), img.get("ParentId") or ""
        tags = tuple(t for t in img.get("RepoTags") or [] if t != "<none>:<none>")
        if parent and parent not in ids:
            out.append(Finding(BROKEN_PARENT, "", iid, tags, f"parent {parent} does not exist"))
        if not tags and iid not in parents and iid not in used:
            size = unique.get(iid, 0)
            out.append(Finding(DANGLING, "", iid, (), f"{format_bytes(size)} reclaimable", bytes=size))
    for c in containers:
        if c.get("ImageID") not in ids:
            name = (c.get("Names") or ["?"])[0].lstrip("/")
            out.append(
                Finding(
                    MISSING_IMAGE, "", str(c.get("ImageID") or ""), (), f"container {name} ({c.get('Image')})"
                )
            )
    return out


def findings_json(
    findings: list[Finding], target: str, errors: list[str], warnings: list[str]
) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return {
        "schema": "regcollect.check/v1",
        "target": target,
        "findings": [f.to_json() for f in findings],
        "summary": counts,
        "errors": errors,
        "warnings": warnings,
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2)
