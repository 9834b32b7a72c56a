"""Requests in flight adapt to the registry: more across a network, fewer when it queues or
refuses, never more than --concurrency (issue 19)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from regcollect.registry.limiter import Limiter


def answer(lim: Limiter, latency: float | None, congested: bool = False, kind: str = "HEAD") -> None:
    lim.inflight += 1  # as acquire would have
    lim.release(kind, latency, congested)


def test_a_far_registry_that_keeps_up_gets_the_maximum() -> None:
    lim = Limiter(64)
    assert lim.limit == 8
    for _ in range(200):
        answer(lim, 0.030)  # 30 ms round trips, steady
    assert lim.limit == 64


def test_a_refusal_halves_once_per_window_and_ends_slow_start() -> None:
    lim = Limiter(64)
    for _ in range(30):
        answer(lim, 0.030)
    before = lim.limit
    lim.inflight = 10
    lim.release("HEAD", None, congested=True)
    assert lim.limit == before / 2
    lim.release("HEAD", None, congested=True)  # the same window: in flight before the cut
    assert lim.limit == before / 2
    assert not lim.slow_start


def test_a_queue_forming_at_the_registry_shrinks_the_limit() -> None:
    lim = Limiter(64, start=32)
    for _ in range(20):
        answer(lim, 0.030)  # a far registry's round trips set the baseline
    high = lim.limit
    answer(lim, 0.100)  # three times slower: a queue at the registry
    assert lim.limit < high


def test_kinds_have_their_own_baseline() -> None:
    lim = Limiter(64, start=16)
    for _ in range(20):
        answer(lim, 0.020, kind="HEAD/manifests/")
    before = lim.limit
    answer(lim, 0.050, kind="DELETE/manifests/")  # slower than a HEAD, but its own first answer
    assert lim.limit >= before


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 40),
    st.lists(st.tuples(st.floats(0.001, 0.2), st.booleans()), min_size=1, max_size=120),
)
def test_in_flight_never_exceeds_the_limit_or_the_maximum(maximum: int, events) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        lim = Limiter(maximum)
        peak = 0

        async def one(latency: float, congested: bool) -> None:
            nonlocal peak
            await lim.acquire()
            peak = max(peak, lim.inflight)
            await asyncio.sleep(0)
            lim.release("GET", latency, congested)

        await asyncio.gather(*(one(lat, c) for lat, c in events))
        assert peak <= maximum
        assert lim.inflight == 0 and not lim.waiters

    asyncio.run(main())


def test_a_registry_near_by_stays_at_the_start() -> None:
    """On loopback or a LAN more in flight only queues at the registry's CPU."""
    lim = Limiter(64)
    for _ in range(300):
        answer(lim, 0.002)
    assert lim.limit == 8


def test_a_registry_near_by_is_not_starved_by_its_own_queue() -> None:
    lim = Limiter(64)
    for i in range(300):
        answer(lim, 0.001 if i % 2 else 0.009)  # answers slow down as the registry's CPU queues
    assert lim.limit == 8
    lim.inflight = 4
    lim.release("HEAD", None, congested=True)  # a 503 halves it ...
    assert lim.limit == 4
    for _ in range(100):
        answer(lim, 0.002)
    assert lim.limit == 8  # ... and it comes back to the start, not beyond
