"""Read a dry run's JSON back as a Plan, for review-then-apply (`regcollect apply PLAN.json`).

Only what the plan said is applied; the backends re-verify every item against the current state
just before changing it, so an item that changed since the review is skipped with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from regcollect.errors import UsageError
from regcollect.model import Artifact, ContainerUse, Kind
from regcollect.planner import Action, Decision, Plan
from regcollect.report import SCHEMA
from regcollect.units import parse_time


def load_plan(path: str | Path) -> Plan:
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except OSError as exc:
        raise UsageError(f"{p}: cannot read plan: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{p}: not a plan file: invalid JSON at line {exc.lineno}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise UsageError(f"{p}: not a plan file (expected schema {SCHEMA})")
    if doc.get("source") not in ("remote", "local") or not doc.get("target"):
        raise UsageError(f"{p}: plan has no valid source and target")
    if doc["source"] == "remote" and (not isinstance(doc["target"], str) or "@" in doc["target"]):
        # user:password@host must never be used, shown or stored again (journal, cache keys)
        raise UsageError(
            f"{p}: plan target holds credentials (user:password@); make the plan again naming the "
            "registry by host[:port]"
        )
    now = parse_time(doc.get("now"))
    if now is None:
        raise UsageError(f"{p}: plan has no valid 'now'")
    plan = Plan(source=doc["source"], target=doc["target"], now=now, policy=doc.get("policy") or {})
    try:
        for a in doc.get("actions") or []:
            plan.decisions.append(_decision(a))
    except (KeyError, ValueError, TypeError) as exc:
        raise UsageError(f"{p}: malformed action in plan: {exc}") from None
    plan.reclaimable_bytes = sum(d.bytes for d in plan.decisions if d.action is Action.DELETE)
    plan.untouched_repositories = list((doc.get("summary") or {}).get("untouched_repositories") or [])
    api = doc.get("api") or {}
    if not isinstance(api, dict) or not all(isinstance(v, str) for v in api.values()):
        raise UsageError(f"{p}: 'api' must be an object of strings")
    plan.api = {k: v for k, v in api.items() if k in ("api", "api_url")}
    return plan


def _decision(a: dict[str, Any]) -> Decision:
    art = Artifact(
        repository=a["repository"],
        digest=a["digest"],
        kind=Kind(a.get("kind") or "image"),
        media_type=a.get("media_type") or "",
        tags=tuple(a.get("tags") or ()),
        created=parse_time(a.get("created")),
        children=tuple(a.get("children") or ()),
        subject=a.get("subject"),
        platform=a.get("platform") or "",
        version_id=str(a["version_id"]) if a.get("version_id") is not None else None,
        containers=tuple(ContainerUse(id=c, name=c[:12], running=False) for c in a.get("containers") or ()),
    )
    return Decision(
        artifact=art,
        action=Action(a["action"]),
        reason=a.get("reason") or "",
        remove_tags=tuple(a.get("remove_tags") or ()),
        rule=a.get("rule"),
        bytes=int(a.get("bytes") or 0),
        depth=int(a.get("depth") or 0),
        containers_first=tuple(a.get("containers_first") or ()),
        force=bool(a.get("force")),
    )
