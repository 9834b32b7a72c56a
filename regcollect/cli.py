"""The command line. Thin over the library: option bundles, the shared
plan -> print -> confirm -> execute -> report flow, and the one place errors become exit codes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import select
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from regcollect import __version__
from regcollect.errors import (
    EXIT_FAILED,
    EXIT_OK,
    ConfirmationRequired,
    RegcollectError,
    UsageError,
)
from regcollect.executor import Report
from regcollect.planner import Plan
from regcollect.policy import Policy, flags_given, load_policy, policy_from_flags
from regcollect.report import (
    SCHEMA,
    dumps,
    plan_json,
    plan_text,
    report_text,
    summary_line,
    summary_markdown,
)


@dataclass
class Console:
    """Where output goes: stdout for the plan/report, stderr for notes, by verbosity."""

    output: str = "text"
    verbose: bool = False
    quiet: bool = False
    summary_file: str | None = None

    def summary(self, text: str) -> None:
        path = self.summary_file or os.environ.get("GITHUB_STEP_SUMMARY")
        if not path:
            return
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            click.echo(f"warning: cannot write summary {path}: {exc.strerror}", err=True)

    def out(self, text: str) -> None:
        click.echo(text)

    def note(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def debug(self, text: str) -> None:
        if self.verbose:
            click.echo(text, err=True)

    def watched(self) -> bool:
        """A person at a terminal, reading text: progress and waiting notes are for them."""
        return self.output == "text" and not self.quiet and sys.stderr.isatty()

    def waiting(self, text: str) -> None:
        click.echo(text, err=True)


@dataclass(frozen=True)
class PolicyFlags:
    """The policy as given on the command line: a file, or the rule flags (one rule)."""

    policy_file: str | None
    repos: tuple[str, ...]
    keep_last: int | None
    keep_tags: tuple[str, ...]
    older_than: str | None
    untagged: bool
    keep_labels: tuple[str, ...]
    unpulled_for: str | None
    order: str | None
    protect_files: tuple[str, ...] = ()


def policy_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The retention policy as flags, or --policy FILE: one Policy either way."""
    opts = [
        click.option(
            "--policy",
            "policy_file",
            type=click.Path(dir_okay=False),
            help="TOML policy file with ordered [[rules]].",
        ),
        click.option(
            "--repo",
            "repos",
            multiple=True,
            metavar="GLOB",
            help="Repositories to govern (repeatable); * stays in a path segment, ** crosses.",
        ),
        click.option(
            "--keep-last",
            type=int,
            metavar="N",
            help="Keep the N most recent images (by created time) per repository.",
        ),
        click.option(
            "--keep-tag",
            "keep_tags",
            multiple=True,
            metavar="GLOB",
            help="Never remove tags matching GLOB (repeatable); their digests stay.",
        ),
        click.option(
            "--older-than", metavar="DUR", help="Only images older than DUR (30d, 12h, 90m, 2w) may go."
        ),
        click.option(
            "--untagged", is_flag=True, help="Also delete untagged content that nothing kept reaches."
        ),
        click.option(
            "--keep-label",
            "keep_labels",
            multiple=True,
            metavar="KEY[=VALUE]",
            help="Keep images carrying this label (repeatable).",
        ),
        click.option(
            "--unpulled-for",
            metavar="DUR",
            help="Only images not pulled for DUR may go (registries that report pulls: Docker Hub, "
            "Harbor; locally, last use).",
        ),
        click.option(
            "--order",
            type=click.Choice(["created", "semver"]),
            help="What --keep-last ranks by: created time (default) or the tags' semantic versions.",
        ),
        click.option(
            "--protect-file",
            "protect_files",
            multiple=True,
            metavar="FILE",
            help="Keep the images FILE references, whatever the rules say (- for stdin): "
            "Kubernetes YAML/JSON, kubectl get pods -o json, compose, Helm output, or one per line.",
        ),
    ]

    @functools.wraps(f)
    def collapse(*args: Any, **kw: Any) -> Any:
        kw["flags"] = PolicyFlags(**{name: kw.pop(name) for name in PolicyFlags.__dataclass_fields__})
        return f(*args, **kw)

    return _stack(collapse, opts)


def _apply_options(output_help: str, summary_help: str) -> list[Callable[..., Any]]:
    """The options of every command that changes things: confirmation, output, CI summary."""
    return [
        click.option("--yes", "-y", is_flag=True, help="Apply without asking."),
        click.option(
            "--output",
            "-o",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help=output_help,
        ),
        click.option(
            "--verbose", "-v", is_flag=True, help="Show each HTTP request and engine call on stderr."
        ),
        click.option("--quiet", "-q", is_flag=True, help="Print only errors (and JSON when asked)."),
        click.option(
            "--summary",
            "summary_file",
            type=click.Path(dir_okay=False),
            help=f"Append a Markdown summary{summary_help} (default: $GITHUB_STEP_SUMMARY when set).",
        ),
    ]


def _stack(f: Callable[..., Any], opts: list[Callable[..., Any]]) -> Callable[..., Any]:
    for opt in reversed(opts):
        f = opt(f)
    return f


def run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """remote and local: plan, then maybe apply."""
    dry_run = click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
    return _stack(f, [dry_run, *_apply_options("Plan and report format.", " of the plan and outcome")])


def report_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """apply: a saved plan, so only the report is printed."""
    return _stack(f, _apply_options("Report format.", ""))


def build_policy(flags: PolicyFlags, *, required: bool = True, protect_only: bool = False) -> Policy | None:
    """One Policy from a file or from the flags; refused (exit 2) before anything is contacted.
    protect_only: --keep-tag / --keep-label alone are fine (a budget selects; they only protect),
    and give no Policy: the caller applies them."""
    rule_flags: dict[str, Any] = dict(
        keep_last=flags.keep_last,
        keep_tags=flags.keep_tags,
        older_than=flags.older_than,
        untagged=flags.untagged,
        keep_labels=flags.keep_labels,
        unpulled_for=flags.unpulled_for,
        order=flags.order,
    )
    policy = _rules(flags, rule_flags, required, protect_only)
    if policy is None or not flags.protect_files:
        return policy
    from regcollect.protect import read_files

    return dataclasses.replace(policy, protect=policy.protect + tuple(read_files(flags.protect_files)))


def _rules(
    flags: PolicyFlags, rule_flags: dict[str, Any], required: bool, protect_only: bool = False
) -> Policy | None:
    if flags.policy_file:
        if flags_given(**rule_flags):
            raise UsageError("--policy and rule flags (--keep-last, --keep-tag, ...) exclude each other")
        return load_policy(flags.policy_file)  # --repo, if given, narrows what is looked at
    protecting = ("keep_tags", "keep_labels", "order")
    if protect_only and not flags_given(**{k: v for k, v in rule_flags.items() if k not in protecting}):
        return None
    if not flags_given(**rule_flags):
        if not required:
            return None
        raise UsageError(
            "no retention rule: give --keep-last, --older-than, --unpulled-for or --untagged, or "
            "--policy FILE (regcollect never deletes everything)"
        )
    if flags.keep_last is not None and flags.keep_last < 0:
        raise UsageError(f"--keep-last must not be negative, got {flags.keep_last}")
    try:
        return policy_from_flags(repos=flags.repos, **rule_flags)
    except UsageError as exc:
        raise UsageError(
            str(exc)
            .replace("flags: key 'older_than'", "--older-than")
            .replace("flags: key 'unpulled_for'", "--unpulled-for")
            .replace("flags: key 'keep_labels'", "--keep-label")
        ) from None


def confirm_mode(dry_run: bool, yes: bool) -> None:
    """Refuse early, before contacting anything, when apply could not be confirmed."""
    if dry_run and yes:
        raise UsageError("--dry-run and --yes exclude each other")
    if not dry_run and not yes and not sys.stdin.isatty():
        raise ConfirmationRequired(
            "refusing to apply without confirmation: stdin is not a terminal; "
            "use --dry-run to see the plan or --yes to apply (nothing was deleted)"
        )


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def show_plan_and_apply(
    console: Console,
    plan: Plan,
    *,
    dry_run: bool,
    yes: bool,
    apply: Callable[[Plan], Report],
    after: Callable[[Report], list[str]] | None = None,
) -> int:
    """The one flow both sides share: the plan printed is the plan applied."""
    changes = plan.changes
    for n in plan.notes:
        console.debug(n)
    if console.output == "text" and not console.quiet:
        console.out(plan_text(plan))
    # Repositories that could not be read were left untouched: the run did not do all that was
    # asked, and a nightly job must notice (exit 1), dry run or not.
    unread = EXIT_FAILED if plan.errors else EXIT_OK
    for e in plan.errors:
        if console.output == "json" or console.quiet:
            click.echo(f"Error: {e}", err=True)
    if dry_run or not changes:
        console.summary(summary_markdown(plan, dry_run=True))
        if console.output == "json":
            console.out(dumps(plan_json(plan, dry_run=dry_run)))
        elif not console.quiet:
            console.out("Dry run: nothing was changed." if dry_run else "Nothing to do.")
        return unread
    if not yes:
        if console.output == "json":
            click.echo(summary_line(plan), err=True)
        if not click.confirm(f"Apply {len(changes)} changes?", default=False, err=True):
            if console.output == "json":
                console.out(dumps(plan_json(plan, dry_run=True, errors=["not confirmed"])))
            else:
                console.out("Not confirmed: nothing was changed.")
            return unread
    report = apply(plan)
    notes = after(report) if after else []
    console.summary(summary_markdown(plan, dry_run=False, report=report))
    if console.output == "json":
        doc = plan_json(plan, dry_run=False, report=report)
        doc["notes"] = notes
        console.out(dumps(doc))
    else:
        if not console.quiet or report.failed:
            console.out(report_text(report))
        for n in notes:
            console.note(n)
    if report.fatal is not None:
        click.echo(f"Error: {report.fatal}", err=True)
        return report.fatal.exit_code
    return EXIT_FAILED if report.failed else unread


def handle_errors(f: Callable[..., int]) -> Callable[..., None]:
    """Typed errors become one line and an exit code, here and nowhere else."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        output = kwargs.get("output", "text")
        try:
            code = f(*args, **kwargs)
        except RegcollectError as exc:
            _fail(output, str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail(output, "interrupted", 130)
        except BrokenPipeError as exc:
            if _stdout_gone(poll=True):  # `regcollect ... | head`: the reader has what it wanted
                _exit_broken_pipe()
            if os.environ.get("REGCOLLECT_DEBUG"):
                raise
            _fail(output, f"internal error: {type(exc).__name__}: {exc}", EXIT_FAILED)
        except Exception as exc:  # noqa: BLE001 - never a traceback for users
            if os.environ.get("REGCOLLECT_DEBUG"):
                raise
            _fail(output, f"internal error: {type(exc).__name__}: {exc}", EXIT_FAILED)
        sys.exit(code)

    return wrapper


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away


def _stdout_gone(*, poll: bool) -> bool:
    """Whether stdout's reader went away: a flush fails with EPIPE, or (poll, after a
    BrokenPipeError from somewhere) the pipe reports POLLERR, which it does once it has no reader."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    if not poll:
        return False
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # not a real file (tests), or no poll
        return False


def _exit_broken_pipe() -> NoReturn:
    """The Python docs' SIGPIPE recipe: what is left to write (and the flush at exit) goes to
    devnull, so no 'Exception ignored' noise; exit as a shell reports SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_BROKEN_PIPE)


def _fail(output: str, message: str, code: int) -> None:
    if output == "json":
        click.echo(json.dumps({"schema": SCHEMA, "errors": [message], "exit_code": code}, indent=2))
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="regcollect")
def cli() -> None:
    """Garbage-collect container images under one retention policy.

    `regcollect local` cleans the Docker Engine's images; `regcollect remote` prunes a registry.
    Every run prints a plan with a reason for each decision; nothing changes without --yes or a
    confirmation, and --dry-run never changes anything.
    """


def main() -> None:
    # click's own usage errors exit 2, which is also our usage exit code.
    from regcollect import commands  # noqa: F401 - registers the subcommands

    stdout = sys.stdout
    try:
        cli(prog_name="regcollect")  # always ends in SystemExit
    except SystemExit:
        # Output still buffered may meet a reader that went away. click itself turns an EPIPE in a
        # command we do not wrap (completion, --help) into exit 1, replacing sys.stdout with a
        # wrapper that stays quiet: that replacement is how we know.
        if sys.stdout is not stdout or _stdout_gone(poll=False):
            _exit_broken_pipe()
        raise
