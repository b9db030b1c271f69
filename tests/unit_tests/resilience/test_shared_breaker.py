"""Shared breakers: two "processes" (two breakers) on one store, a fake clock.

What only sharing adds: the local cache and its sync, one probe for both,
transitions heard by the process that did not cause them, successes sent in
batches. Each store runs it (memory and SQLite here, Redis in
`tests/integration_tests/resilience/test_shared_state_redis.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_holysheep.resilience import (
    BreakerConfig,
    BreakerState,
    SharedCircuitBreaker,
    Transition,
)
from langchain_holysheep.resilience._breaker import LEGAL_TRANSITIONS
from langchain_holysheep.state import MemoryStore, SQLiteStore, StateStore
from tests.unit_tests.resilience.fakes import FakeClock

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
KEY = ("http://gw/v1", "gpt-4.1")
CONFIG = BreakerConfig(
    failure_threshold=3, failure_rate=None, minimum_requests=3, cooldown=10.0
)


@pytest.fixture(params=["memory-store", "sqlite-store"])
def shared(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> Iterator[StateStore]:
    """The store both breakers share (on the fake clock)."""
    if request.param == "memory-store":
        yield MemoryStore(clock=clock)
        return
    store = SQLiteStore(tmp_path / "state.db", clock=clock)
    yield store
    store.close()


def pair(store: StateStore, clock: FakeClock) -> tuple[SharedCircuitBreaker, ...]:
    return tuple(
        SharedCircuitBreaker(KEY, CONFIG, store=store, clock=clock) for _ in range(2)
    )


def test_an_opening_is_seen_at_the_next_sync(
    shared: StateStore, clock: FakeClock
) -> None:
    a, b = pair(shared, clock)
    assert not b.rejects()  # b has read the shared state once
    for _ in range(3):
        a.record_failure("503")
    assert a.state is OPEN
    assert not b.rejects()  # its cache is at most one sync interval old
    clock.advance(b.sync_interval)
    assert b.rejects() and b.state is OPEN
    assert b.retry_in() == pytest.approx(10.0 - b.sync_interval)


def test_one_probe_for_both_and_its_verdict_reaches_the_other(
    shared: StateStore, clock: FakeClock
) -> None:
    a, b = pair(shared, clock)
    heard: list[Transition] = []
    b.on_transition(heard.append)
    a.force_open("down")
    clock.advance(10.0)
    assert a.allow() and a.state is HALF  # a probes
    assert not b.allow()  # b learns the probe is taken: no second request
    assert b.state is HALF
    a.record_success()
    clock.advance(b.sync_interval)
    assert not b.rejects() and b.allow() and b.state is CLOSED
    assert [(t.old, t.new) for t in heard] == [
        (CLOSED, OPEN),
        (OPEN, HALF),
        (HALF, CLOSED),
    ]


def test_a_change_seen_late_is_heard_as_legal_steps(
    shared: StateStore, clock: FakeClock
) -> None:
    a, b = pair(shared, clock)
    b.sync()
    heard: list[Transition] = []
    b.on_transition(heard.append)
    a.force_open("down")
    clock.advance(10.0)
    assert a.allow()  # half-open before b looked again
    b.sync()
    assert [(t.old, t.new) for t in heard] == [(CLOSED, OPEN), (OPEN, HALF)]
    assert all((t.old, t.new) in LEGAL_TRANSITIONS for t in heard)
    assert heard[0].reason.startswith("down")


def test_successes_are_sent_in_batches_and_before_a_failure(
    shared: StateStore, clock: FakeClock
) -> None:
    config = BreakerConfig(failure_threshold=2, failure_rate=0.5, minimum_requests=2)
    a = SharedCircuitBreaker(KEY, config, store=shared, clock=clock)
    a.sync()
    for _ in range(10):
        a.record_success()
    assert shared.breaker(a.store_key, config).successes == 0  # not sent yet
    a.record_failure("503")
    a.record_failure("503")
    view = shared.breaker(a.store_key, config)
    assert (view.successes, view.failures, view.state) == (10, 2, "closed")
    for _ in range(4):
        a.record_success()
    assert a.snapshot().successes == 14  # a snapshot sends them first


def test_only_the_holder_of_the_probe_gives_it_back(
    shared: StateStore, clock: FakeClock
) -> None:
    a, b = pair(shared, clock)
    a.force_open("down")
    clock.advance(10.0)
    assert a.allow()
    b.release()  # b holds nothing: a's probe stays claimed
    assert not b.allow()
    a.release()
    assert b.allow() and b.state is HALF  # now b may probe
