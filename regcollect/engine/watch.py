"""`regcollect local watch`: keep the engine's images under a budget, continuously, by last use.

Two threads. The event thread follows the engine's event stream, records each use of an image
(pull, tag, load, import, build; container create, start, die) in the state database, and wakes
the main thread; it reconnects with backoff when the engine goes away. The main thread alone
checks and cleans (so never two cleanups at once): after relevant events (debounced), every
interval, and after a reconnect (the image list is read again). A cleanup starts above the high
watermark (--max-size, --min-free) and evicts down to the low one, through the same plan, apply
and journal as a one-shot run. A stop request lets the deletion under way finish and skips the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import fcntl
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from regcollect.engine.client import EngineClient
from regcollect.engine.session import LocalOptions, apply_local, budget_unreachable, engine_key, plan_local
from regcollect.errors import EXIT_CONNECT, EXIT_OK, EXIT_STATE, NotFound, RegcollectError
from regcollect.fsutil import FILE_MODE, private_dir
from regcollect.planner import Action, Plan
from regcollect.state import record_last_use, recorded_last_use
from regcollect.units import format_bytes

USES = {"image": {"pull", "tag", "load", "import", "build"}, "container": {"create", "start", "die"}}
IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
Log = Callable[..., None]  # log(event, message, **fields)


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def now(self) -> dt.datetime: ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class Schedule:
    """When to check: at start, every `interval`, `debounce` seconds after the last relevant event
    (but no later than 4 x debounce after the first of a burst), and at a retry time after failure."""

    def __init__(self, interval: float, debounce: float, now: float):
        self.interval, self.debounce = interval, debounce
        self.next_periodic = now
        self.first_event: float | None = None
        self.last_event: float | None = None

    def event(self, now: float) -> None:
        self.first_event = now if self.first_event is None else self.first_event
        self.last_event = now

    def next_due(self) -> float:
        due = self.next_periodic
        if self.first_event is not None and self.last_event is not None:
            due = min(due, self.last_event + self.debounce, self.first_event + 4 * self.debounce)
        return due

    def checked(self, now: float) -> None:
        self.first_event = self.last_event = None
        self.next_periodic = now + self.interval

    def retry_at(self, when: float) -> None:
        self.next_periodic = min(self.next_periodic, when)


class AlreadyRunning(RegcollectError):
    pass


def take_lock(state_dir: Path) -> IO[str]:
    """One watcher per state directory: an exclusive flock held for the process's life."""
    private_dir(state_dir)
    path = state_dir / "watch.lock"
    fh = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE), "r+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = fh.read().strip() or "?"
        fh.close()
        raise AlreadyRunning(
            f"another regcollect local watch (pid {other}) holds {path}: one watcher per state "
            "directory; stop it first, or give this one another XDG_STATE_HOME"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


@dataclasses.dataclass
class WatchConfig:
    opts: LocalOptions
    interval: float = 300.0
    debounce: float = 5.0
    backoff_max: float = 30.0
    dry_run: bool = False
    journal: Callable[[str], Any] | None = None  # target -> a Journal (one per cleanup)


class Watcher:
    def __init__(
        self,
        connect: Callable[[], EngineClient],
        cfg: WatchConfig,
        log: Log,
        clock: Clock | None = None,
    ):
        self.connect, self.cfg, self.log = connect, cfg, log
        self.clock = clock or RealClock()
        self.opts = dataclasses.replace(cfg.opts, watermarks=True)
        self.schedule = Schedule(cfg.interval, cfg.debounce, self.clock.monotonic())
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.engine: EngineClient | None = None
        self._events_engine: EngineClient | None = None
        self.failures = 0
        self.last_code = EXIT_OK

    # the event side -----------------------------------------------------------------------
    def on_event(self, engine: EngineClient, key: str, ev: dict[str, Any]) -> None:
        kind, action = str(ev.get("Type", "")), str(ev.get("Action", "")).split(":", 1)[0]
        if action not in USES.get(kind, ()):
            return
        iid = self._image_of(engine, kind, ev.get("Actor") or {})
        if iid is not None:
            nanos = ev.get("timeNano") or int(ev.get("time") or 0) * 10**9
            when = dt.datetime.fromtimestamp(int(nanos) / 1e9, dt.UTC) if nanos else self.clock.now()
            record_last_use(key, [(iid, when, f"{kind} {action}")], path=self._state_path())
        self.schedule.event(self.clock.monotonic())
        self.wake.set()

    def _image_of(self, engine: EngineClient, kind: str, actor: dict[str, Any]) -> str | None:
        """The image id an event is about (a pull names a reference; a container names its image)."""
        ref = str(actor.get("ID", ""))
        try:
            if kind == "container":
                try:
                    return str(engine.inspect_container(ref).get("Image") or "") or None
                except NotFound:  # gone already (--rm): its image as it was named
                    ref = str((actor.get("Attributes") or {}).get("image", ""))
            if IMAGE_ID.match(ref):
                return ref
            return str(engine.inspect(ref).get("Id") or "") or None if ref else None
        except RegcollectError:
            return None

    def follow_events(self) -> None:
        """The event thread: follow, record, reconnect with backoff; ends when stop is set."""
        delay = 1.0
        lost = False
        while not self.stop.is_set():
            try:
                engine = self.connect()
                self._events_engine = engine
                engine.ping()
                key = engine_key(engine)
                if lost:
                    self.log(
                        "reconnected", f"reconnected to the engine at {engine.address}; re-reading images"
                    )
                    self.schedule.retry_at(self.clock.monotonic())  # resynchronise: read the images again
                    self.wake.set()
                lost, delay = False, 1.0
                for ev in engine.events():
                    if self.stop.is_set():
                        return
                    self.on_event(engine, key, ev)
                if self.stop.is_set():
                    return
                raise RegcollectError("the engine closed the event stream")
            except RegcollectError as exc:
                if self.stop.is_set():
                    return
                if not lost:
                    self.log(
                        "disconnected",
                        f"lost the engine: {exc}; reconnecting (backoff up to {self.cfg.backoff_max:.0f}s)",
                    )
                lost = True
                self.stop.wait(delay)
                delay = min(delay * 2, self.cfg.backoff_max)

    # the check side -----------------------------------------------------------------------
    def _state_path(self) -> Path | None:
        return Path(self.opts.state_path) if self.opts.state_path else None

    def tick(self) -> bool:
        """Check if due; True when a check ran."""
        now = self.clock.monotonic()
        if now < self.schedule.next_due() or self.stop.is_set():
            return False
        self.check()
        return True

    def check(self) -> int:
        """One check-and-clean pass; the exit code --once uses."""
        now = self.clock.monotonic()
        self.schedule.checked(now)
        try:
            self.engine = self.engine or self.connect()
            code = self._clean(self.engine)
            self.failures = 0
        except RegcollectError as exc:
            if exc.exit_code != EXIT_CONNECT:
                raise
            self.engine = None
            self.failures += 1
            wait = min(2.0**self.failures, self.cfg.backoff_max)
            self.log("error", f"check failed: {exc}; next try in {wait:.0f}s")
            self.schedule.retry_at(now + wait)
            code = EXIT_CONNECT
        self.last_code = code
        return code

    def _clean(self, engine: EngineClient) -> int:
        plan, _errors, before = plan_local(engine, self.opts, self.clock.now())
        ids = {d.digest for d in plan.decisions}
        recorded_last_use(engine_key(engine), forget_except=ids, path=self._state_path())
        budget = plan.stats.get("budget") or {}
        changes = [d for d in plan.changes if d.action is Action.DELETE]
        for w in plan.warnings:
            self.log("warning", w)
        self.log(
            "check",
            f"check: {budget.get('status')}",
            **{k: budget.get(k) for k in ("scope_bytes", "free_bytes")},
        )
        if not changes:
            return EXIT_STATE if budget_unreachable(plan) else EXIT_OK
        self.log(
            "cleanup",
            f"cleanup: {budget.get('status')}; evicting {len({d.digest for d in changes})} images "
            f"({format_bytes(plan.reclaimable_bytes)}) down to the low watermark",
            **{k: budget.get(k) for k in ("scope_bytes", "free_bytes", "need_bytes")},
        )
        if self.cfg.dry_run:
            for d in changes:
                self._decision("would-evict", plan, d, "dry run")
            return EXIT_STATE if budget_unreachable(plan) else EXIT_OK
        journal = self.cfg.journal(str(engine.address)) if self.cfg.journal else None
        try:
            report, notes = asyncio.run(apply_local(engine, plan, before, journal=journal, stop=self.stop))
        finally:
            if journal is not None:
                journal.close()
        for o in report.outcomes:
            self._decision("evicted" if o.status == "done" else o.status, plan, o.decision, o.detail)
        self.log(
            "summary",
            f"cleanup done: {report.count('done')} evicted, {report.count('skipped')} skipped, "
            f"{report.count('failed')} failed; {format_bytes(report.reclaimed_bytes)} freed. {notes[0]}"
            + (f"; journal {journal.path}" if journal is not None else ""),
            done=report.count("done"),
            skipped=report.count("skipped"),
            failed=report.count("failed"),
            freed_bytes=report.reclaimed_bytes,
        )
        if report.failed:
            return report.fatal.exit_code if report.fatal else 1
        return EXIT_STATE if budget_unreachable(plan) else EXIT_OK

    def _decision(self, what: str, plan: Plan, d: Any, detail: str) -> None:
        a = d.artifact
        used = a.last_used.isoformat() if a.last_used else None
        self.log(
            what,
            f"{what} {a.label()} ({a.short}) {format_bytes(d.bytes)}, last used {used or 'never'} "
            f"({a.last_used_source or '-'}): {d.reason}" + (f" [{detail}]" if detail else ""),
            image=a.digest,
            repository=a.repository,
            tags=list(a.tags),
            bytes=d.bytes,
            last_used=used,
            last_used_source=a.last_used_source,
            reason=d.reason,
        )

    # the loop -----------------------------------------------------------------------------
    def request_stop(self) -> None:
        self.stop.set()
        self.wake.set()
        if self._events_engine is not None:
            self._events_engine.close_events()

    def run(self) -> int:
        follower = threading.Thread(target=self.follow_events, name="regcollect-events", daemon=True)
        follower.start()
        self.log("started", f"watching; checks every {self.cfg.interval:.0f}s and after use")
        while not self.stop.is_set():
            wait = max(self.schedule.next_due() - self.clock.monotonic(), 0.0)
            self.wake.wait(timeout=min(wait, 60.0))
            self.wake.clear()
            self.tick()
        follower.join(timeout=5)
        self.log("stopped", "stopped")
        return EXIT_OK
