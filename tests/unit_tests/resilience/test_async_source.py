"""`AsyncSource`: per-read timeouts over an async chunk iterator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from langchain_holysheep.resilience._async_source import AsyncSource, ReadTimeout


async def _chunks(gaps: list[float]) -> AsyncIterator[int]:
    """Yield 0, 1, ... each after its gap (seconds)."""
    for i, gap in enumerate(gaps):
        await asyncio.sleep(gap)
        yield i


async def test_reads_within_their_limits_return_every_chunk() -> None:
    source = AsyncSource(_chunks([0.0, 0.001, 0.0]))
    got = [await source.next(5.0) for _ in range(3)]
    assert got == [0, 1, 2]
    assert await source.next(5.0) is None
    await source.close()


async def test_a_read_past_its_limit_raises_read_timeout() -> None:
    source = AsyncSource(_chunks([0.0, 10.0]))
    assert await source.next(5.0) == 0
    with pytest.raises(ReadTimeout):
        await source.next(0.02)
    # the timeout left no cancellation behind: the task goes on
    await asyncio.sleep(0)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await source.close()


async def test_a_later_shorter_limit_applies() -> None:
    # the first read arms the timer for its long limit; the second read's short
    # limit must still cut it
    source = AsyncSource(_chunks([0.0, 10.0]))
    assert await source.next(30.0) == 0
    started = asyncio.get_running_loop().time()
    with pytest.raises(ReadTimeout):
        await source.next(0.05)
    assert asyncio.get_running_loop().time() - started < 5.0
    await source.close()


async def test_a_longer_limit_of_a_later_read_is_waited_for() -> None:
    # a timer set for an earlier read's limit must not cut a later read early
    source = AsyncSource(_chunks([0.0, 0.15]))
    assert await source.next(0.05) == 0
    assert await source.next(1.0) == 1
    await source.close()


async def test_a_cancellation_from_elsewhere_is_not_a_timeout() -> None:
    source = AsyncSource(_chunks([10.0]))
    reading = asyncio.ensure_future(source.next(5.0))
    await asyncio.sleep(0.01)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    await source.close()


async def test_a_zero_limit_returns_only_a_ready_chunk() -> None:
    # as `asyncio.timeout(0)`: a read that does not wait returns its chunk; one
    # that waits, even a loop iteration, times out
    async def chunks() -> AsyncIterator[int]:
        yield 0
        await asyncio.sleep(0)
        yield 1

    source = AsyncSource(chunks())
    assert await source.next(0.0) == 0
    with pytest.raises(ReadTimeout):
        await source.next(0.0)
    await source.close()


async def test_close_stops_the_timer_and_the_iterator() -> None:
    closed = asyncio.Event()

    async def chunks() -> AsyncIterator[int]:
        try:
            yield 0
            await asyncio.sleep(10)
            yield 1
        finally:
            closed.set()

    source = AsyncSource(chunks())
    assert await source.next(30.0) == 0
    await source.close()
    assert closed.is_set()
    assert source._limit._timer is None
