"""Render a plan (and what apply did) as text for people or as JSON for machines.

The JSON schema is documented in docs/json-schema.md; `schema` names its version, and fields are
only ever added. A dry run's JSON is also a plan file for `regcollect apply`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from regcollect.executor import Report
from regcollect.planner import Action, Decision, Plan
from regcollect.units import format_bytes

SCHEMA = "regcollect.plan/v1"


def decision_json(d: Decision) -> dict[str, Any]:
    a = d.artifact
    return {
        "repository": a.repository,
        "digest": a.digest,
        "kind": a.kind.value,
        "media_type": a.media_type,
        "platform": a.platform or None,
        "tags": list(a.tags),
        "action": d.action.value,
        "remove_tags": list(d.remove_tags),
        "kept_tags": list(d.kept_tags),
        "reason": d.reason,
        "rule": d.rule,
        "bytes": d.bytes,
        "created": a.created.isoformat() if a.created else None,
        "time": d.age.time.isoformat() if d.age and d.age.time else None,
        "time_source": d.age.source if d.age else None,
        "subject": a.subject,
        "children": list(a.children),
        "depth": d.depth,
        "containers": [c.id for c in a.containers],
        "containers_first": list(d.containers_first),
        "force": d.force,
        "version_id": a.version_id,
        "last_used": a.last_used.isoformat() if a.last_used else None,
        "last_used_source": a.last_used_source,
    }


def plan_json(
    plan: Plan,
    *,
    dry_run: bool,
    report: Report | None = None,
    errors: list[str] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "source": plan.source,
        "target": plan.target,
        "dry_run": dry_run,
        "now": plan.now.isoformat(),
        "policy": plan.policy,
        "actions": [decision_json(d) for d in plan.decisions],
        "summary": {
            "artifacts": len(plan.decisions),
            "delete": plan.count(Action.DELETE),
            "untag": plan.count(Action.UNTAG),
            "keep": plan.count(Action.KEEP),
            "reclaimable_bytes": plan.reclaimable_bytes,
            "untouched_repositories": plan.untouched_repositories,
        },
        "warnings": list(plan.warnings),
        "errors": list(plan.errors) + list(errors or []),
        "stats": dict(plan.stats),
        "api": dict(plan.api),
    }
    if report is not None:
        doc["results"] = [
            {
                "repository": o.decision.repository,
                "digest": o.decision.digest,
                "action": o.decision.action.value,
                "status": o.status,
                "detail": o.detail,
            }
            for o in report.outcomes
        ]
        doc["outcome"] = {
            "done": report.count("done"),
            "failed": report.count("failed"),
            "skipped": report.count("skipped"),
            "reclaimed_bytes": report.reclaimed_bytes,
            "fatal": str(report.fatal) if report.fatal else None,
        }
        if report.fatal:
            doc["errors"].append(str(report.fatal))
    return doc


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False)


def _tags(d: Decision) -> str:
    a = d.artifact
    if d.action is Action.UNTAG:
        gone = ", ".join(d.remove_tags)
        kept = ", ".join(d.kept_tags)
        return f"-{gone} (keeps {kept})" if kept else f"-{gone} (image stays)"
    return ", ".join(a.tags) if a.tags else "<untagged>"


def plan_text(plan: Plan, *, verbose_keep: bool = True) -> str:
    lines: list[str] = []
    groups: dict[str, list[Decision]] = defaultdict(list)
    for d in plan.decisions:
        groups[d.repository].append(d)
    untouched = set(plan.untouched_repositories)
    # Local --repo: repositories outside the scope whose images all stay are one line, not a list.
    scope = plan.stats.get("outside_scope") or {}
    outside = {
        r for r in scope.get("repositories", ()) if all(d.action is Action.KEEP for d in groups.get(r, ()))
    }
    for repo in sorted(groups):
        if repo in outside:
            continue
        if repo in untouched:
            lines.append(f"{repo or '<none>'}: untouched (no policy rule matches)")
            continue
        order = {Action.DELETE: 0, Action.UNTAG: 1, Action.KEEP: 2}
        rows = []
        for d in sorted(groups[repo], key=lambda d: (order[d.action], d.depth, d.artifact.tags)):
            if d.action is Action.KEEP and (not verbose_keep or d.reason == "kept: not selected"):
                continue
            size = f"  {format_bytes(d.bytes)}" if d.bytes else ""
            plat = f" [{d.artifact.platform}]" if d.artifact.platform else ""
            rows.append(f"  {d.action.value:<6} {d.artifact.short}{plat}  {_tags(d)}{size}  {d.reason}")
        if rows:
            lines.append(repo or "<none>")
            lines.extend(rows)
    if outside:
        lines.append(f"{len(outside)} repositories outside {scope.get('flag')}, untouched")
    budget = plan.stats.get("budget")
    if budget and budget.get("status"):
        met = "exceeded" if budget.get("need_bytes") else "met"
        lines.append(f"budget {met}: {budget['status']}")
    for w in plan.warnings:
        lines.append(f"warning: {w}")
    for e in plan.errors:
        lines.append(f"error: {e}")
    lines.append(summary_line(plan))
    return "\n".join(lines)


def summary_line(plan: Plan) -> str:
    repos = len({d.repository for d in plan.decisions})
    line = (
        f"Plan: {plan.count(Action.DELETE)} to delete, {plan.count(Action.UNTAG)} to untag, "
        f"{plan.count(Action.KEEP)} kept, in {repos} repositories; "
        f"{format_bytes(plan.reclaimable_bytes)} reclaimable"
    )
    if plan.errors:
        line += f"; {len(plan.errors)} repositories could not be read and were left untouched"
    low, limit = plan.stats.get("rate_limit_lowest"), plan.stats.get("rate_limit")
    if low is not None:
        line += f"; rate limit: at least {low}" + (f" of {limit}" if limit else "") + " requests left"
    return line


def report_text(report: Report) -> str:
    lines = []
    for o in report.outcomes:
        if o.status != "done" or o.detail:
            d = o.decision
            lines.append(f"{o.status}: {d.action.value} {d.artifact.label()}: {o.detail}".rstrip(": "))
    if report.fatal:
        lines.append(f"error: {report.fatal}")
    lines.append(
        f"Done: {report.count('done')} done, {report.count('failed')} failed, "
        f"{report.count('skipped')} skipped; {format_bytes(report.reclaimed_bytes)} reclaimed"
    )
    return "\n".join(lines)


def summary_markdown(plan: Plan, *, dry_run: bool, report: Report | None = None) -> str:
    """A CI job summary (GitHub's GITHUB_STEP_SUMMARY, GitLab artifacts): the plan and outcome."""
    mode = "dry run" if dry_run else "applied"
    lines = [
        f"## regcollect {plan.source}: {plan.target} ({mode})",
        "",
        f"**{plan.count(Action.DELETE)}** to delete, **{plan.count(Action.UNTAG)}** to untag, "
        f"**{plan.count(Action.KEEP)}** kept; **{format_bytes(plan.reclaimable_bytes)}** reclaimable.",
        "",
    ]
    if report is not None:
        lines += [
            f"Outcome: {report.count('done')} done, {report.count('failed')} failed, "
            f"{report.count('skipped')} skipped; {format_bytes(report.reclaimed_bytes)} reclaimed.",
            "",
        ]
        if report.fatal:
            lines += [f"> **Error:** {report.fatal}", ""]
    changes = plan.changes
    if changes:
        status = (
            {id(o.decision): f"{o.status}{': ' + o.detail if o.detail else ''}" for o in report.outcomes}
            if report
            else {}
        )
        head = "| action | repository | digest | tags | bytes | reason |" + (" result |" if report else "")
        lines += [head, "|" + "---|" * (7 if report else 6)]
        for d in changes:
            tags = ", ".join(d.remove_tags) or "&lt;untagged&gt;"
            row = (
                f"| {d.action.value} | {d.repository} | `{d.artifact.short}` | {tags} | "
                f"{format_bytes(d.bytes) if d.bytes else ''} | {d.reason} |"
            )
            if report:
                row += f" {status.get(id(d), 'not attempted')} |"
            lines.append(row.replace("\n", " "))
    else:
        lines.append("Nothing to do.")
    for w in plan.warnings:
        lines.append(f"\n> warning: {w}")
    for e in plan.errors:
        lines.append(f"\n> **error:** {e}")
    return "\n".join(lines) + "\n"
