"""How many requests to keep in flight: grown while the registry keeps up, cut when it does not
(additive increase, multiplicative decrease, as TCP does).

A run costs about (requests x round trip) / requests in flight. Across a network a registry
answers 8 requests as fast as 1, so a fixed 8 wastes most of the time; on loopback or a LAN the
registry's own CPU is the limit, and more in flight only queues (measured: a cold run on loopback
took 60% longer at 64 in flight than at 8). So the limit grows only while the fastest answer seen
takes at least GROW_ABOVE, i.e. while the round trip, not the registry, is what we wait for. It
starts at START, doubles each window of answers while latency holds (slow start), then grows by
one a window; it halves on 429/503 or a timeout, and shrinks by a quarter when answers take more
than twice as long as the fastest seen for that kind of request (a queue forming at the registry).
It never exceeds the user's `--concurrency`, the maximum.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

START = 8
SLOW = 2.0  # latency over this many times the baseline is a queue forming
SLACK = 0.005  # seconds: jitter on a fast local answer is no signal
WINDOW = 256  # answers per kind after which the baseline is taken afresh (the network may change)
GROW_ABOVE = 0.010  # seconds: a fastest answer quicker than this is a registry near by


class Limiter:
    def __init__(self, maximum: int, start: int = START, clock=time.monotonic):  # type: ignore[no-untyped-def]
        self.maximum = max(1, maximum)
        self.start = start
        self.limit = float(min(start, self.maximum))
        self.inflight = 0
        self.slow_start = True
        self.clock = clock
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.base: dict[str, float] = {}  # fastest answer per kind in this window
        self.seen: dict[str, list[float]] = {}
        self.calm_until = 0  # answers before another decrease may count (one per window)
        self.fastest = float("inf")  # the fastest answer of any kind: the round trip's floor
        self.answers = 0
        self.peak = int(self.limit)

    async def acquire(self) -> None:
        if self.inflight < int(self.limit) and not self.waiters:
            self.inflight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self._release_slot()  # granted as we were cancelled: hand it on
            elif fut in self.waiters:
                self.waiters.remove(fut)
            raise

    def release(self, kind: str, latency: float | None, congested: bool = False) -> None:
        """An answer arrived after `latency` seconds (None: failed without one)."""
        self.answers += 1
        if congested:
            self._decrease(0.5)
        elif latency is not None:
            self._observe(kind, latency)
        self._release_slot()

    def _observe(self, kind: str, latency: float) -> None:
        window = self.seen.setdefault(kind, [])
        window.append(latency)
        self.fastest = min(self.fastest, latency)
        base = self.base.get(kind)
        if base is None or latency < base:
            self.base[kind] = base = latency
        if len(window) >= WINDOW:
            self.base[kind] = min(window)
            window.clear()
        if self.fastest < GROW_ABOVE:
            # A registry near by: its CPU, not the round trip, sets the pace; hold at the start
            # (back to it after a refusal), neither more nor fewer.
            self.limit = min(self.limit + 1 / self.limit, float(min(self.start, self.maximum)))
            return
        if latency > SLOW * base + SLACK:
            self._decrease(0.75)
        elif self.slow_start:
            self.limit = min(self.maximum, self.limit + 1)  # +1 an answer: doubles each window
        else:
            self.limit = min(self.maximum, self.limit + 1 / self.limit)  # +1 a window
        self.peak = max(self.peak, int(self.limit))

    def _decrease(self, factor: float) -> None:
        if self.answers < self.calm_until:
            return  # one cut per window: the answers in flight still reflect the old limit
        self.slow_start = False
        self.limit = max(1.0, self.limit * factor)
        self.calm_until = self.answers + max(1, self.inflight)

    def _release_slot(self) -> None:
        self.inflight -= 1
        while self.waiters and self.inflight < int(self.limit):
            fut = self.waiters.popleft()
            if not fut.done():
                self.inflight += 1
                fut.set_result(None)
