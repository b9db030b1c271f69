"""The Redis store (its Lua scripts) agrees with the memory store on random
operation sequences."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings

from langchain_holysheep.state import MemoryStore, RedisStore
from tests.unit_tests.state._differential import OPERATIONS, next_tag, run
from tests.unit_tests.state._suite import ManualClock


def test_redis_agrees_with_memory(make_redis_store: Callable[..., RedisStore]) -> None:
    clock = ManualClock()
    reference = MemoryStore(clock=clock)
    redis_store = make_redis_store(clock=clock)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(OPERATIONS)
    def check(ops: list[tuple[object, ...]]) -> None:
        start = clock.now
        expected = run(reference, clock, ops, next_tag())
        clock.now = start
        assert run(redis_store, clock, ops, next_tag()) == expected
        clock.advance(10_000)

    check()
