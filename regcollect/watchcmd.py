"""`regcollect local watch`: the command over regcollect/engine/watch.py (commands.py routes
`regcollect local watch ...` here; every other `regcollect local ARGS` is unchanged)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
from typing import Any

import click

from regcollect.cli import PolicyFlags, build_policy, handle_errors, policy_options
from regcollect.errors import UsageError
from regcollect.units import parse_duration


def _logger(output: str, quiet: bool) -> Any:
    lock = threading.Lock()

    def log(event: str, message: str, **fields: Any) -> None:
        now = dt.datetime.now(dt.UTC)
        if output == "json":
            line = json.dumps({"ts": now.isoformat(), "event": event, "message": message, **fields})
        elif quiet and event not in ("error", "warning", "disconnected"):
            return
        else:
            line = f"{now:%Y-%m-%dT%H:%M:%SZ} {message}"
        with lock:
            click.echo(line, err=True)

    return log


@click.command("watch")
@click.option("--max-size", metavar="SIZE", help="High watermark: the images in scope take at most SIZE.")
@click.option(
    "--min-free",
    metavar="SIZE",
    help="High watermark: the engine's data root keeps SIZE free (a local engine only); a cleanup "
    "stops at 125% of it.",
)
@click.option(
    "--low", metavar="SIZE", help="Low watermark: where a cleanup stops. Default: 80% of --max-size."
)
@click.option("--interval", metavar="DUR", default="5m", show_default=True, help="Check at least this often.")
@click.option("--once", is_flag=True, help="One check-and-clean pass, then exit (cron, systemd timers).")
@click.option("--dry-run", is_flag=True, help="Log what would be evicted; change nothing.")
@policy_options
@click.option("--min-age", metavar="DUR", help="Never evict images used more recently than DUR.")
@click.option("--host", "-H", metavar="URL", help="Docker Engine address (default: DOCKER_HOST).")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as text or JSON lines.",
)
@click.option("--quiet", "-q", is_flag=True, help="Log only warnings and errors.")
@click.option("--debounce", type=float, default=5.0, hidden=True)
@handle_errors
def watch(
    max_size: str | None,
    min_free: str | None,
    low: str | None,
    interval: str,
    once: bool,
    dry_run: bool,
    flags: PolicyFlags,
    min_age: str | None,
    host: str | None,
    output: str,
    quiet: bool,
    debounce: float,
) -> int:
    """Keep the engine's images under a budget, continuously, least recently used first.

    Follows the engine's events to record when each image was last used (state database), and
    cleans when the images in scope exceed --max-size or free space falls below --min-free, down
    to the low watermark. Only images no container uses (running or stopped) are evicted, never
    what the policy keeps (--keep-tag, --keep-label, --min-age, --policy). SIGTERM or SIGINT stop
    it between deletions. One watcher per state directory.
    """
    from regcollect.commands import _journal
    from regcollect.engine.client import EngineClient
    from regcollect.engine.session import LocalOptions, validate
    from regcollect.engine.watch import WatchConfig, Watcher, take_lock
    from regcollect.state import default_path

    if max_size is None and min_free is None:
        raise UsageError("regcollect local watch needs a budget: --max-size SIZE or --min-free SIZE")
    try:
        seconds = parse_duration(interval).total_seconds()
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None
    if seconds < 1:
        raise UsageError("--interval must be at least 1s")
    opts = LocalOptions(
        repos=flags.repos,
        policy=build_policy(flags, required=False, protect_only=True),
        min_age=min_age,
        max_size=max_size,
        min_free=min_free,
        low=low,
        keep_tags=flags.keep_tags,
        keep_labels=flags.keep_labels,
    )
    validate(opts)
    lock = take_lock(default_path().parent)
    log = _logger(output, quiet)
    cfg = WatchConfig(
        opts, interval=seconds, debounce=debounce, dry_run=dry_run, journal=lambda t: _journal(None, t)
    )
    watcher = Watcher(lambda: EngineClient(host), cfg, log)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def on_signal(signum: int, _frame: Any) -> None:
        log("stopping", f"{signal.Signals(signum).name}: stopping after the deletion under way")
        watcher.request_stop()

    try:
        for s in previous:
            signal.signal(s, on_signal)
        return watcher.check() if once else watcher.run()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        lock.close()
