"""The subcommands. Each builds its inputs, then hands over to cli.show_plan_and_apply."""

from __future__ import annotations

import asyncio
import sys

import click

from regcollect.cache import FactCache
from regcollect.cli import (
    Console,
    build_policy,
    cli,
    confirm_mode,
    handle_errors,
    now_utc,
    policy_options,
    run_options,
    show_plan_and_apply,
)
from regcollect.errors import UsageError


@cli.command()
@click.argument("registry")
@policy_options
@run_options
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=6,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option("--insecure", is_flag=True, help="Plain HTTP (or, for an https:// URL, no certificate check).")
@click.option(
    "--ca-cert",
    type=click.Path(exists=True, dir_okay=False),
    help="CA bundle to verify the registry's certificate.",
)
@click.option("--username", "-u", help="Registry user; the password comes from --password-stdin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the manifest/config cache.")
@handle_errors
def remote(
    registry: str,
    policy_file: str | None,
    repos: tuple[str, ...],
    keep_last: int | None,
    keep_tags: tuple[str, ...],
    older_than: str | None,
    untagged: bool,
    keep_labels: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    output: str,
    verbose: bool,
    quiet: bool,
    concurrency: int,
    insecure: bool,
    ca_cert: str | None,
    username: str | None,
    password_stdin: bool,
    no_cache: bool,
) -> int:
    """Garbage-collect a registry over the Registry HTTP API.

    REGISTRY is host[:port] or a URL. Loopback hosts (localhost, 127.0.0.0/8, ::1) default to
    plain HTTP, as docker treats them; others use HTTPS unless --insecure.
    """
    from regcollect.registry.session import RemoteOptions, apply_remote, open_client, plan_remote

    console = Console(output=output, verbose=verbose, quiet=quiet)
    policy = build_policy(policy_file, repos, keep_last, keep_tags, older_than, untagged, keep_labels)
    assert policy is not None
    password = None
    if password_stdin:
        if username is None:
            raise UsageError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
    elif username is not None:
        raise UsageError("--username needs --password-stdin (the password is read from stdin)")
    if not password_stdin:
        confirm_mode(dry_run, yes)
    elif not dry_run and not yes:
        raise UsageError(
            "--password-stdin uses stdin, so apply needs --yes (or use --dry-run); nothing was deleted"
        )
    patterns = list(repos) or policy.patterns
    opts = RemoteOptions(
        registry=registry,
        insecure=insecure,
        ca_cert=ca_cert,
        username=username,
        password=password,
        concurrency=concurrency,
        log=console.debug if verbose else None,
    )
    cache = None if no_cache else FactCache()
    with asyncio.Runner() as runner:
        client = open_client(opts)
        try:
            plan = runner.run(plan_remote(client, policy, patterns, now_utc(), cache=cache))
            if cache:
                cache.close()
                cache = None
            notes: list[str] = []

            def apply(p):  # type: ignore[no-untyped-def]
                report, extra = runner.run(apply_remote(client, p, concurrency=concurrency))
                notes.extend(extra)
                return report

            return show_plan_and_apply(
                console, plan, dry_run=dry_run, yes=yes, apply=apply, after=lambda _r: notes
            )
        finally:
            if cache:
                cache.close()
            runner.run(client.http.aclose())


@cli.command()
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
    help="Evict least recently used unused images until images fit in SIZE (e.g. 20GB).",
)
@click.option("--host", "-H", metavar="URL", help="Docker Engine address (default: DOCKER_HOST).")
@handle_errors
def local(
    images: tuple[str, ...],
    policy_file: str | None,
    repos: tuple[str, ...],
    keep_last: int | None,
    keep_tags: tuple[str, ...],
    older_than: str | None,
    untagged: bool,
    keep_labels: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    output: str,
    verbose: bool,
    quiet: bool,
    dangling: bool,
    unused: bool,
    filters: tuple[str, ...],
    force: bool,
    remove_containers: bool,
    min_age: str | None,
    max_size: str | None,
    host: str | None,
) -> int:
    """Clean the Docker Engine's images with docker's own semantics.

    Select with IMAGE arguments (as docker rmi), --dangling, --unused, --max-size, --filter, or
    the retention policy. Never stops a container; never deletes volumes.
    """
    from regcollect.engine.client import EngineClient
    from regcollect.engine.session import LocalOptions, apply_local, plan_local, validate

    console = Console(output=output, verbose=verbose, quiet=quiet)
    policy = build_policy(
        policy_file, repos, keep_last, keep_tags, older_than, untagged, keep_labels, required=False
    )
    opts = LocalOptions(
        targets=list(images),
        repos=repos,
        policy=policy,
        dangling=dangling,
        unused=unused,
        filters=filters,
        force=force,
        remove_containers=remove_containers,
        min_age=min_age,
        max_size=max_size,
    )
    validate(opts)
    confirm_mode(dry_run, yes)
    engine = EngineClient(host, log=console.debug if verbose else None)
    plan, errors, layers_before = plan_local(engine, opts, now_utc())
    for e in errors:
        click.echo(f"Error: {e}", err=True)
    notes: list[str] = []

    def apply(p):  # type: ignore[no-untyped-def]
        report, extra = asyncio.run(apply_local(engine, p, layers_before))
        notes.extend(extra)
        return report

    code = show_plan_and_apply(console, plan, dry_run=dry_run, yes=yes, apply=apply, after=lambda _r: notes)
    return code or (1 if errors else 0)
