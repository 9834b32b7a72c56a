"""The subcommands. Each builds its inputs, then hands over to cli.show_plan_and_apply."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from regcollect.cli import (
    Console,
    PolicyFlags,
    build_policy,
    cli,
    confirm_mode,
    handle_errors,
    now_utc,
    policy_options,
    report_options,
    run_options,
    show_plan_and_apply,
)
from regcollect.errors import EXIT_FAILED, EXIT_OK, EXIT_STATE, UsageError
from regcollect.executor import Report
from regcollect.planner import Plan
from regcollect.policy import API_KINDS
from regcollect.progress import Progress


def registry_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """How to reach and authenticate to a registry: shared by remote, apply and restore."""
    opts = [
        click.option(
            "--concurrency",
            type=click.IntRange(1, 64),
            default=64,
            show_default=True,
            help="Most registry requests in flight at once; regcollect finds how many pay, starting "
            "at 8 (more across a network, fewer when the registry queues or refuses).",
        ),
        click.option(
            "--insecure", is_flag=True, help="Plain HTTP (or, for an https:// URL, no certificate check)."
        ),
        click.option(
            "--ca-cert",
            type=click.Path(exists=True, dir_okay=False),
            help="CA bundle to verify the registry's certificate.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(1, 3600),
            default=30.0,
            show_default=True,
            metavar="SECONDS",
            help="How long to wait for one answer; a request that times out is tried once more.",
        ),
        click.option("--username", "-u", help="Registry user; the password comes from --password-stdin."),
        click.option(
            "--password-stdin", is_flag=True, help="Read the registry password (or GitHub token) from stdin."
        ),
        click.option(
            "--api",
            type=click.Choice(list(API_KINDS)),
            help="How the registry is listed and deleted: the Registry API (distribution, the "
            "default) or a vendor's REST API: github (chosen by itself for ghcr.io), dockerhub "
            "(docker.io), gitlab (registry.gitlab.com), harbor (never guessed).",
        ),
        click.option(
            "--api-url",
            metavar="URL",
            help="Base URL of that API (github: https://api.github.com; GitHub Enterprise Server: "
            "https://HOST/api/v3).",
        ),
        click.option(
            "--max-wait",
            metavar="DUR",
            default="10m",
            show_default=True,
            help="Longest pause for a vendor API's rate limit before stopping cleanly.",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def no_cache_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--no-cache",
        is_flag=True,
        help="Do not read or write the cache of content-addressed facts (manifests, configs, "
        "image layer lists).",
    )(f)


def verify_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """How much to re-verify before each remote delete (remote and apply; not restore)."""
    return click.option(
        "--verify",
        type=click.Choice(["item", "repository"]),
        default="repository",
        show_default=True,
        help="What is re-checked before deletes: the repository's kept and new tags, listed and "
        "resolved at most 15 s before (repository), or also each deleted digest's own tags just "
        "before its delete (item: one HEAD more per deleted tag; see docs/safety.md).",
    )(f)


def journal_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--journal",
        type=click.Path(dir_okay=False),
        help="Undo journal (JSON Lines); default: a new file in $XDG_STATE_HOME/regcollect.",
    )(f)


def _password(username: str | None, password_stdin: bool, dry_run: bool, yes: bool) -> str | None:
    if password_stdin:
        if not dry_run and not yes:
            raise UsageError(
                "--password-stdin uses stdin, so applying needs --yes (or use --dry-run); nothing was deleted"
            )
        return sys.stdin.readline().rstrip("\r\n")
    if username is not None:
        raise UsageError("--username needs --password-stdin (the password is read from stdin)")
    confirm_mode(dry_run, yes)
    return None


def _seconds(flag: str, text: str) -> float:
    from regcollect.units import parse_duration

    try:
        return parse_duration(text).total_seconds()
    except (ValueError, OverflowError) as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _remote_options(
    registry: str,
    kw: dict[str, Any],
    password: str | None,
    console: Console,
    registry_table: dict[str, str] | None = None,
) -> Any:
    from regcollect.registry.session import RemoteOptions

    return RemoteOptions(
        registry=registry,
        insecure=kw["insecure"],
        ca_cert=kw["ca_cert"],
        username=kw["username"],
        password=password,
        concurrency=kw["concurrency"],
        timeout=kw["timeout"],
        api=kw.get("api") or (registry_table or {}).get("api"),
        api_url=kw.get("api_url") or (registry_table or {}).get("api_url"),
        max_wait=_seconds("--max-wait", kw.get("max_wait") or "10m"),
        note=console.note,
        log=console.debug if console.verbose else None,
        notice=console.waiting if console.watched() and not console.verbose else None,
        verify=kw.get("verify", "repository"),
    )


def _journal(path: str | None, target: str) -> Any:
    from regcollect.journal import Journal, default_path

    return Journal(Path(path) if path else default_path(now_utc()), target)


def _remote_flow(
    console: Console,
    opts: Any,
    make_plan: Callable[..., Any] | None,
    plan: Plan | None,
    *,
    dry_run: bool,
    yes: bool,
    journal_path: str | None,
    use_cache: bool,
) -> int:
    """Plan (or take a saved plan), show, confirm, apply with a journal: one event loop throughout."""
    from regcollect.cache import FactCache
    from regcollect.registry.session import apply_remote, open_api

    opts.use_cache = use_cache  # vendors that keep facts of their own (GitLab tag details) honour it
    cache = FactCache() if use_cache else None
    with asyncio.Runner() as runner:
        api = open_api(opts)
        client = api.client

        def in_flight() -> str:
            return f"{client.limiter.inflight} requests in flight"

        try:
            if plan is None:
                assert make_plan is not None
                with Progress(console.output == "text" and not console.quiet) as bars:
                    plan = runner.run(make_plan(api, cache, bars.task("repositories read", status=in_flight)))
            if cache:
                cache.close()
                cache = None
            notes: list[str] = []

            def apply(p: Plan) -> Report:
                journal = _journal(journal_path, client.host)
                try:
                    with Progress(console.output == "text" and not console.quiet) as bars:
                        done = bars.task("changes applied", total=len(p.changes), status=in_flight)
                        report, extra = runner.run(
                            apply_remote(
                                api,
                                p,
                                concurrency=opts.concurrency,
                                journal=journal,
                                verify=opts.verify,
                                on_done=done,
                            )
                        )
                finally:
                    journal.close()
                notes.extend(extra)
                notes.append(
                    f"Journal: {journal.path} (regcollect restore {journal.path} puts deleted "
                    "manifests back until the registry's garbage collection runs)"
                )
                return report

            return show_plan_and_apply(
                console, plan, dry_run=dry_run, yes=yes, apply=apply, after=lambda _r: notes
            )
        finally:
            if cache:
                cache.close()
            runner.run(api.aclose())


@cli.command()
@click.argument("registry")
@policy_options
@run_options
@registry_options
@verify_option
@journal_option
@no_cache_option
@handle_errors
def remote(
    registry: str,
    flags: PolicyFlags,
    dry_run: bool,
    yes: bool,
    output: str,
    verbose: bool,
    quiet: bool,
    summary_file: str | None,
    journal: str | None,
    no_cache: bool,
    **conn: Any,
) -> int:
    """Garbage-collect a registry over the Registry HTTP API.

    REGISTRY is host[:port] or a URL. Loopback hosts (localhost, 127.0.0.0/8, ::1) default to
    plain HTTP, as docker treats them; others use HTTPS unless --insecure.
    """
    from regcollect.registry.session import plan_remote

    console = Console(output=output, verbose=verbose, quiet=quiet, summary_file=summary_file)
    if "-" in flags.protect_files and conn["password_stdin"]:
        raise UsageError(
            "--protect-file - and --password-stdin both read stdin: give the protect file by name "
            "(or the password through a credential helper)"
        )
    policy = build_policy(flags)
    assert policy is not None
    password = _password(conn["username"], conn["password_stdin"], dry_run, yes)
    opts = _remote_options(registry, conn, password, console, policy.registry)
    patterns = list(flags.repos) or policy.patterns

    def make_plan(api: Any, cache: Any, progress: Any = None) -> Any:
        return plan_remote(api, policy, patterns, now_utc(), cache=cache, progress=progress)

    return _remote_flow(
        console, opts, make_plan, None, dry_run=dry_run, yes=yes, journal_path=journal, use_cache=not no_cache
    )


class _LocalCommand(click.Command):
    """`regcollect local watch ...` runs the watcher; any other `regcollect local ARGS` is as before."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        if args and args[0] == "watch":
            from regcollect.watchcmd import watch

            return watch.make_context(f"{info_name} watch", args[1:], parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


@cli.command(cls=_LocalCommand)
@click.argument("images", nargs=-1, metavar="[IMAGE]...")
@policy_options
@run_options
@click.option("--dangling", is_flag=True, help="Untagged images nothing depends on (docker image prune).")
@click.option("--unused", is_flag=True, help="Images no container uses (docker image prune -a).")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="docker's filters: until, label, label!, before, since, reference, dangling.",
)
@click.option(
    "--force",
    "-f",
    is_flag=True,
    help="docker's force: multi-repository ids; images of stopped containers (layers stay).",
)
@click.option(
    "--remove-containers",
    is_flag=True,
    help="Remove the stopped containers that hold a selected image first, so space is freed.",
)
@click.option("--min-age", metavar="DUR", help="Keep images used more recently than DUR.")
@click.option(
    "--max-size",
    metavar="SIZE",
    help="Evict least recently used unused images until the images in scope (--repo, the policy's "
    "repositories; all images when none) fit in SIZE (e.g. 20GB). Combines with --keep-tag, "
    "--keep-label, --min-age and the policy, which protect.",
)
@click.option(
    "--min-free",
    metavar="SIZE",
    help="Evict likewise until the engine's data-root filesystem has SIZE free (a local engine only).",
)
@click.option("--host", "-H", metavar="URL", help="Docker Engine address (default: DOCKER_HOST).")
@journal_option
@no_cache_option
@handle_errors
def local(
    images: tuple[str, ...],
    flags: PolicyFlags,
    dry_run: bool,
    yes: bool,
    output: str,
    verbose: bool,
    quiet: bool,
    summary_file: str | None,
    dangling: bool,
    unused: bool,
    filters: tuple[str, ...],
    force: bool,
    remove_containers: bool,
    min_age: str | None,
    max_size: str | None,
    min_free: str | None,
    host: str | None,
    journal: str | None,
    no_cache: bool,
) -> int:
    """Clean the Docker Engine's images with docker's own semantics.

    Select with IMAGE arguments (as docker rmi), --dangling, --unused, a budget (--max-size,
    --min-free), --filter, or the retention policy. Never stops a container; never deletes
    volumes. `regcollect local watch --help`: keep a budget continuously.
    """
    from regcollect.engine.client import EngineClient
    from regcollect.engine.session import LocalOptions, budget_unreachable, plan_local, validate

    console = Console(output=output, verbose=verbose, quiet=quiet, summary_file=summary_file)
    budget = max_size is not None or min_free is not None
    policy = build_policy(flags, required=False, protect_only=budget)
    protect: tuple[Any, ...] = ()
    if flags.protect_files:
        from regcollect.protect import read_files

        protect = tuple(read_files(flags.protect_files))
    opts = LocalOptions(
        protect=protect,
        targets=list(images),
        repos=flags.repos,
        policy=policy,
        dangling=dangling,
        unused=unused,
        filters=filters,
        force=force,
        remove_containers=remove_containers,
        min_age=min_age,
        max_size=max_size,
        min_free=min_free,
        keep_tags=flags.keep_tags if budget else (),
        keep_labels=flags.keep_labels if budget else (),
    )
    validate(opts)
    confirm_mode(dry_run, yes)
    engine = EngineClient(host, log=console.debug if verbose else None)
    from regcollect.cache import FactCache

    cache = None if no_cache else FactCache()
    try:
        plan, errors, layers_before = plan_local(engine, opts, now_utc(), cache=cache)
    finally:
        if cache:
            cache.close()
    for e in errors:
        click.echo(f"Error: {e}", err=True)
    code = _local_apply(console, engine, plan, layers_before, dry_run=dry_run, yes=yes, journal_path=journal)
    unreachable = EXIT_STATE if budget_unreachable(plan) else EXIT_OK
    return code or (EXIT_FAILED if errors else unreachable)


def _local_apply(
    console: Console,
    engine: Any,
    plan: Plan,
    layers_before: int,
    *,
    dry_run: bool,
    yes: bool,
    journal_path: str | None,
) -> int:
    from regcollect.engine.session import apply_local

    notes: list[str] = []

    def apply(p: Plan) -> Report:
        journal = _journal(journal_path, str(engine.address))
        try:
            report, extra = asyncio.run(apply_local(engine, p, layers_before, journal=journal))
        finally:
            journal.close()
        notes.extend(extra)
        notes.append(f"Journal: {journal.path}")
        return report

    return show_plan_and_apply(console, plan, dry_run=dry_run, yes=yes, apply=apply, after=lambda _r: notes)


@cli.command("apply")
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(dir_okay=False))
@report_options
@registry_options
@verify_option
@click.option("--host", "-H", metavar="URL", help="Docker Engine address, for a local plan.")
@journal_option
@handle_errors
def apply_cmd(
    plan_file: str,
    yes: bool,
    output: str,
    verbose: bool,
    quiet: bool,
    summary_file: str | None,
    host: str | None,
    journal: str | None,
    **conn: Any,
) -> int:
    """Apply exactly a reviewed plan (the JSON of a dry run).

    Every item is re-verified against the current state first; an item that changed since the
    plan was made is skipped with the reason, the rest are applied.
    """
    from regcollect.saved import load_plan

    console = Console(output=output, verbose=verbose, quiet=quiet, summary_file=summary_file)
    plan = load_plan(plan_file)
    if plan.source == "local":
        from regcollect.engine.client import EngineClient

        confirm_mode(False, yes)
        engine = EngineClient(host, log=console.debug if verbose else None)
        before = int(engine.df().get("LayersSize") or 0)
        return _local_apply(console, engine, plan, before, dry_run=False, yes=yes, journal_path=journal)
    password = _password(conn["username"], conn["password_stdin"], False, yes)
    opts = _remote_options(plan.target, conn, password, console, plan.api)
    return _remote_flow(
        console, opts, None, plan, dry_run=False, yes=yes, journal_path=journal, use_cache=False
    )


@cli.command()
@click.argument("journal_file", metavar="JOURNAL", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show what would be restored; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Restore without asking.")
@click.option("--verbose", "-v", is_flag=True, help="Show each HTTP request on stderr.")
@registry_options
@handle_errors
def restore(journal_file: str, dry_run: bool, yes: bool, verbose: bool, **conn: Any) -> int:
    """Put back what a remote apply deleted, from its journal (until the registry's GC runs).

    Re-PUTs each manifest (children before indexes, subjects before referrers) after checking
    with HEAD that its blobs still exist, and re-tags it. Running it twice changes nothing.
    """
    from regcollect import journal as journal_mod
    from regcollect.registry import restore as rs
    from regcollect.registry.session import open_api

    console = Console(verbose=verbose)
    password = _password(conn["username"], conn["password_stdin"], dry_run, yes)
    items = rs.items_from(list(journal_mod.read(journal_file)))
    if not items:
        console.out("Nothing to restore: the journal records no remote changes.")
        return EXIT_OK
    code = EXIT_OK
    for registry, kind, api_url in sorted({(i.registry, i.api, i.api_url or "") for i in items}):
        group = [i for i in items if (i.registry, i.api, i.api_url or "") == (registry, kind, api_url)]
        table = {"api": kind, "api_url": api_url} if kind != "distribution" else {}
        opts = _remote_options(registry, conn, password, console, table)
        with asyncio.Runner() as runner:
            api = open_api(opts)
            client = api.client
            try:
                runner.run(rs.check(client, group))
                for i in group:
                    shown = [r for r in i.put_refs if r != i.digest]
                    refs = f" (tags {', '.join(shown)})" if shown else ""
                    console.out(f"{i.status:<15} {registry}/{i.label}{refs}  {i.detail}".rstrip())
                todo = [i for i in group if i.status == rs.RESTORE]
                blocked = [i for i in group if i.status == rs.BLOCKED]
                console.out(
                    f"Restore: {len(todo)} to restore, {len(group) - len(todo) - len(blocked)} "
                    f"in place, {len(blocked)} cannot come back"
                )
                if dry_run or not todo:
                    code = code or (EXIT_FAILED if blocked else EXIT_OK)
                    continue
                if not yes and not click.confirm(f"Restore {len(todo)} manifests?", default=False, err=True):
                    console.out("Not confirmed: nothing was changed.")
                    continue
                errors = runner.run(rs.restore(client, group, api))
                for e in errors:
                    click.echo(f"Error: {e}", err=True)
                done = [i for i in todo if i.status == rs.RESTORE]
                console.out(f"Restored {len(done)} manifests.")
                if errors or blocked:
                    code = EXIT_FAILED
            finally:
                runner.run(api.aclose())
    return code


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    bash: eval "$(regcollect completion bash)" in ~/.bashrc; zsh: the same in ~/.zshrc;
    fish: regcollect completion fish > ~/.config/fish/completions/regcollect.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "regcollect", "_REGCOLLECT_COMPLETE").source())


from regcollect import check_cmd  # noqa: E402, F401 - registers `check` (it uses the options above)
