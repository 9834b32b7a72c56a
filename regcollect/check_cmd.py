"""The `check` commands: findings on stdout, exit 4 when there are any; `--fix` builds a plan of
orphans only and hands it to the same flow, journal and executor as every run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from regcollect.check import FIXABLE, Finding, dumps, findings_json, local_findings
from regcollect.cli import Console, cli, handle_errors, now_utc, show_plan_and_apply
from regcollect.commands import _journal, _password, _remote_options, journal_option, registry_options
from regcollect.errors import EXIT_FAILED, EXIT_OK, EXIT_STATE, UsageError
from regcollect.executor import DONE, Report
from regcollect.planner import Action, Decision, Plan

FIX_POLICY = {"source": "regcollect check --fix", "rules": []}


class _Capture(Console):
    """-o json with --fix: the plan/report document goes inside the check document."""

    captured: list[str]

    def out(self, text: str) -> None:
        self.captured.append(text)


def _show(
    console: Console, findings: list[Finding], target: str, errors: list[str], warnings: list[str]
) -> None:
    if console.output == "json":
        return
    for f in findings:
        console.out(f.line())
    for w in warnings:
        console.note(f"warning: {w}")
    for e in errors:
        click.echo(f"Error: {e}", err=True)
    if not console.quiet:
        fixable = sum(1 for f in findings if f.fixable)
        console.note(
            f"Check of {target}: {len(findings)} finding(s)"
            + (f", {fixable} removable with --fix" if fixable else "")
            + (f"; {len(errors)} repositories could not be checked" if errors else "")
        )


def _code(remaining: list[Finding], errors: list[str]) -> int:
    return EXIT_STATE if remaining else (EXIT_FAILED if errors else EXIT_OK)


_output = click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Findings format.",
)


@cli.group()
def check() -> None:
    """Find what is broken: indexes missing children, orphan signatures, lost blobs, broken images.

    Read-only unless --fix. Exit 0 when clean, 4 when there are findings.
    """


@check.command("remote")
@click.argument("registry")
@click.option("--repo", "repos", multiple=True, metavar="GLOB", help="Repositories to check (default: all).")
@click.option("--blobs", is_flag=True, help="Also HEAD every config and layer blob (a request per blob).")
@click.option("--fix", is_flag=True, help="Delete orphan referrers and orphan children (a plan, a journal).")
@click.option("--dry-run", is_flag=True, help="With --fix: print the plan; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="With --fix: apply without asking.")
@click.option(
    "--read-journal",
    "read_journals",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Journals that show deleted indexes, for orphan children (default: every journal in "
    "$XDG_STATE_HOME/regcollect).",
)
@_output
@click.option("--verbose", "-v", is_flag=True, help="Show each HTTP request on stderr.")
@click.option("--quiet", "-q", is_flag=True, help="Print only findings and errors.")
@registry_options
@journal_option
@handle_errors
def check_remote(
    registry: str,
    repos: tuple[str, ...],
    blobs: bool,
    fix: bool,
    dry_run: bool,
    yes: bool,
    read_journals: tuple[str, ...],
    output: str,
    verbose: bool,
    quiet: bool,
    journal: str | None,
    **conn: Any,
) -> int:
    """Check a registry: broken indexes, orphan referrers and children, unreadable manifests,
    and with --blobs, missing blobs."""
    from regcollect import journal as journal_mod
    from regcollect.registry.session import apply_remote, open_api

    if (dry_run or yes) and not fix:
        raise UsageError("--dry-run and --yes go with --fix (check alone changes nothing)")
    console = Console(output=output, verbose=verbose, quiet=quiet)
    password = _password(conn["username"], conn["password_stdin"], dry_run or not fix, yes)
    opts = _remote_options(registry, conn, password, console)
    paths = list(read_journals) or sorted(str(p) for p in journal_mod.default_dir().glob("*.jsonl"))
    records = [r for p in paths for r in journal_mod.read(p)]
    with asyncio.Runner() as runner:
        api = open_api(opts)
        try:
            from regcollect.check_remote import RemoteCheck  # the HTTP stack only for remote runs

            checker = RemoteCheck(api, blobs=blobs, journal=records)
            findings = runner.run(checker.run(list(repos)))
            target = api.client.host
            _show(console, findings, target, checker.errors, checker.warnings)
            doc = findings_json(findings, target, checker.errors, checker.warnings)
            orphans = [f for f in findings if f.fixable and f.artifact is not None]
            if not fix or not orphans:
                if output == "json":
                    console.out(dumps(doc))
                return _code(findings, checker.errors)
            plan = fix_plan(orphans, target, api.kind)
            done: set[tuple[str, str]] = set()
            fix_notes: list[str] = []

            def apply(p: Plan) -> Report:
                jrnl = _journal(journal, target)
                try:
                    report, notes = runner.run(
                        apply_remote(api, p, concurrency=opts.concurrency, journal=jrnl)
                    )
                finally:
                    jrnl.close()
                done.update(
                    (o.decision.repository, o.decision.digest) for o in report.outcomes if o.status == DONE
                )
                fix_notes.extend([*notes, f"Journal: {jrnl.path}"])
                return report

            shown = _Capture(output=output, verbose=verbose, quiet=quiet) if output == "json" else console
            if isinstance(shown, _Capture):
                shown.captured = []
            code = show_plan_and_apply(
                shown, plan, dry_run=dry_run, yes=yes, apply=apply, after=lambda _r: fix_notes
            )
            if isinstance(shown, _Capture):
                doc["fix"] = json.loads(shown.captured[-1]) if shown.captured else None
                console.out(dumps(doc))
            remaining = [f for f in findings if (f.repository, f.digest) not in done]
            return code or _code(remaining, checker.errors)
        finally:
            runner.run(api.aclose())


def fix_plan(orphans: list[Finding], target: str, kind: str) -> Plan:
    """Deletes of orphans only, each with its finding as the reason; nothing else is touched."""
    plan = Plan(source="remote", target=target, now=now_utc(), policy=dict(FIX_POLICY), api={"api": kind})
    for f in orphans:
        assert f.artifact is not None and f.kind in FIXABLE
        reason = f"deleted: {f.kind}: {f.detail}"
        plan.decisions.append(Decision(f.artifact, Action.DELETE, reason, remove_tags=f.artifact.tags))
    held = {c for d in plan.decisions for c in d.artifact.children}
    for d in plan.decisions:
        d.depth = 1 if d.digest in held else 0  # display order; the executor derives its own
    return plan


@check.command("local")
@click.option("--host", "-H", metavar="URL", help="Docker Engine address (default: DOCKER_HOST).")
@_output
@click.option("--verbose", "-v", is_flag=True, help="Show each engine call on stderr.")
@click.option("--quiet", "-q", is_flag=True, help="Print only findings and errors.")
@handle_errors
def check_local(host: str | None, output: str, verbose: bool, quiet: bool) -> int:
    """Check the Docker Engine: images whose parent chain is broken, containers whose image is
    gone, dangling images with the bytes they hold."""
    from regcollect.engine.client import EngineClient

    console = Console(output=output, verbose=verbose, quiet=quiet)
    engine = EngineClient(host, log=console.debug if verbose else None)
    engine.ping()
    findings = local_findings(engine.images(), engine.containers(), engine.df())
    target = str(engine.address)
    _show(console, findings, target, [], [])
    if output == "json":
        console.out(dumps(findings_json(findings, target, [], [])))
    return _code(findings, [])
