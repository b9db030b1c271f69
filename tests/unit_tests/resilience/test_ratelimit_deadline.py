"""Client-side rate limits and deadlines, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time

import pytest

from langchain_holysheep.resilience import (
    Deadline,
    RateLimit,
    RateLimiter,
    RateLimiterRegistry,
    RateLimitTimeoutError,
    SharedRateLimiter,
)
from langchain_holysheep.state import MemoryStore, StateStore
from tests.unit_tests.resilience.fakes import FakeClock

State = StateStore | str


def limiter(clock: FakeClock, state: State, **kw: float) -> RateLimiter:
    """A limiter on `state`: in-process, or a `SharedRateLimiter` on a store."""
    reg = RateLimiterRegistry(
        clock=clock, sleep=clock.sleep, asleep=clock.asleep, state=state
    )
    rl = reg.configure("gpt-4.1", RateLimit(**kw))
    assert isinstance(rl, SharedRateLimiter) == (state != "memory://")
    return rl


# -- Deadline -------------------------------------------------------------------------
def test_deadline_counts_down(clock: FakeClock) -> None:
    d = Deadline(10.0, clock=clock)
    assert d.remaining() == 10.0
    clock.advance(4)
    assert d.remaining() == 6.0
    assert d.elapsed() == 4.0
    assert d.cap(20.0) == 6.0
    assert d.cap(2.0) == 2.0
    assert d.cap(None) == 6.0
    assert d.fits(5.9) and not d.fits(6.0)
    clock.advance(7)
    assert d.expired and d.remaining() == 0.0 and d.cap(5.0) == 0.0


def test_unbounded_deadline(clock: FakeClock) -> None:
    d = Deadline.never(clock=clock)
    assert d.remaining() == math.inf
    assert d.cap(3.0) == 3.0 and d.cap(None) is None
    assert not d.expired and not d.bounded
    with pytest.raises(ValueError):
        Deadline(-1)


# -- RateLimiter -------------------------------------------------------------------
def test_requests_per_minute_queue_with_computed_waits(
    clock: FakeClock, state: State
) -> None:
    rl = limiter(clock, state, requests_per_minute=60, burst_requests=2)
    assert rl.acquire() == 0.0
    assert rl.acquire() == 0.0
    # bucket empty: the next slot is 1 s away (60/min), then 1 s after that
    assert rl.acquire() == pytest.approx(1.0)
    assert rl.acquire() == pytest.approx(1.0)
    assert clock.sleeps == pytest.approx([1.0, 1.0])


def test_reservations_queue_in_arrival_order(clock: FakeClock, state: State) -> None:
    rl = limiter(clock, state, requests_per_minute=60, burst_requests=1)
    waits = [rl.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.0, 1.0, 2.0, 3.0])


def test_tokens_per_minute(clock: FakeClock, state: State) -> None:
    rl = limiter(clock, state, tokens_per_minute=6000)  # 100 tokens/s, bucket 6000
    assert rl.acquire(tokens=6000) == 0.0
    assert rl.wait_time(500) == pytest.approx(5.0)
    assert rl.acquire(tokens=500) == pytest.approx(5.0)


def test_wait_beyond_deadline_raises_and_reserves_nothing(
    clock: FakeClock, state: State
) -> None:
    rl = limiter(
        clock, state, requests_per_minute=6, burst_requests=1
    )  # 10 s per request
    rl.acquire()
    with pytest.raises(RateLimitTimeoutError) as info:
        rl.acquire(deadline=Deadline(3.0, clock=clock))
    assert info.value.wait_s == pytest.approx(10.0)
    assert "3.00 s remain" in str(info.value)
    assert clock.sleeps == []
    # nothing was reserved: the next caller still waits only 10 s
    assert rl.wait_time() == pytest.approx(10.0)
    with pytest.raises(RateLimitTimeoutError):
        rl.acquire(deadline=2.0)  # a float deadline works too


def test_refill_is_capped_at_capacity(clock: FakeClock, state: State) -> None:
    rl = limiter(clock, state, requests_per_minute=60, burst_requests=2)
    clock.advance(3600)
    assert rl.snapshot().requests_available == 2


def test_penalize_blocks_until_retry_after(clock: FakeClock, state: State) -> None:
    rl = limiter(clock, state, requests_per_minute=600)
    rl.penalize(2.5)
    assert rl.snapshot().blocked_for_s == pytest.approx(2.5)
    assert rl.acquire() == pytest.approx(2.5)
    assert rl.acquire() == 0.0
    rl.penalize(9.0)
    with pytest.raises(RateLimitTimeoutError):
        rl.acquire(deadline=Deadline(5.0, clock=clock))


def test_penalty_imposed_while_waiting_extends_the_wait(
    clock: FakeClock, state: State
) -> None:
    rl = limiter(clock, state, requests_per_minute=60, burst_requests=1)
    rl.acquire()

    def sleep_and_get_penalized(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 1:
            rl.penalize(2.0)

    rl._sleep = sleep_and_get_penalized
    assert rl.acquire() == pytest.approx(3.0)
    assert clock.sleeps == pytest.approx([1.0, 2.0])


def test_adjust_tokens_and_refund(clock: FakeClock, state: State) -> None:
    rl = limiter(clock, state, tokens_per_minute=1000, requests_per_minute=10)
    rl.acquire(tokens=800)
    rl.adjust_tokens(-300)  # used only 500
    assert rl.snapshot().tokens_available == pytest.approx(500)
    rl.refund(tokens=500)
    snap = rl.snapshot()
    assert snap.tokens_available == pytest.approx(1000)
    assert snap.requests_available == pytest.approx(10)


def test_unlimited_limiter_never_waits(clock: FakeClock, state: State) -> None:
    rl = limiter(clock, state)
    for _ in range(1000):
        assert rl.acquire(tokens=10**6) == 0.0


async def test_async_acquire_waits_and_refunds_on_cancel(
    clock: FakeClock, state: State
) -> None:
    rl = limiter(clock, state, requests_per_minute=60, burst_requests=1)
    assert await rl.aacquire() == 0.0
    assert await rl.aacquire() == pytest.approx(1.0)
    with pytest.raises(RateLimitTimeoutError):
        await rl.aacquire(deadline=Deadline(0.5, clock=clock))

    gate = asyncio.Event()

    async def blocked_sleep(seconds: float) -> None:
        await gate.wait()

    rl._asleep = blocked_sleep
    before = rl.snapshot().requests_available
    assert before is not None
    task = asyncio.create_task(rl.aacquire())
    await asyncio.sleep(0)
    assert rl.snapshot().requests_available == pytest.approx(before - 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rl.snapshot().requests_available == pytest.approx(before)


@pytest.mark.parametrize("shared", [False, True])
def test_real_clock_threads_are_spaced_without_busy_waiting(shared: bool) -> None:
    limit = RateLimit(requests_per_minute=1200, burst_requests=1)
    if shared:
        rl: RateLimiter = SharedRateLimiter("k", limit, store=MemoryStore())
    else:
        rl = RateLimiter("k", limit)
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        rl.acquire(deadline=2.0)
        with lock:
            starts.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    t0 = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g > 0.035 for g in gaps)  # 50 ms apart (1200/min)
    assert time.process_time() - t0 < 0.1  # slept, did not spin


def test_registry(clock: FakeClock, state: State) -> None:
    reg = RateLimiterRegistry(clock=clock, state=state)
    key = ("http://gw/v1", "gpt-4.1")
    assert reg.get(key) is None
    rl = reg.configure(key, RateLimit(requests_per_minute=10))
    assert reg.get(key) is rl
    reg.penalize(("http://gw/v1", "other"), 4.0)
    other = reg.get(("http://gw/v1", "other"))
    assert other is not None and other.wait_time() == pytest.approx(4.0)
    assert set(reg.snapshot()) == {key, ("http://gw/v1", "other")}
    reg.clear()
    assert reg.get(key) is None


def test_rate_limit_validation() -> None:
    with pytest.raises(ValueError):
        RateLimit(requests_per_minute=0)
