"""Shared state across real OS processes: SQLite and Redis.

Four worker processes (spawned once per module) play the fleet; the test
process plays the observer. Crashes are `kill -9`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from langchain_holysheep.state import BreakerSpec, open_store
from tests.integration_tests.state._workers import StoreSpec, Workers, open_spec

D = Decimal
WORKERS = 4


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    pool = Workers(WORKERS)
    try:
        pool.map("ping", lambda i: (), timeout=120)  # all started and importable
        yield pool
    finally:
        pool.close()


@pytest.fixture(params=["sqlite", "redis"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    if request.param == "sqlite":
        return ("sqlite", str(tmp_path / "state.db"))
    url = request.getfixturevalue("redis_url")
    return ("redis", url, request.getfixturevalue("redis_prefix"))


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Poll `condition` until true; returns the seconds it took (fails after)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - start


def test_four_processes_never_overrun_one_cap(
    workers: Workers, spec: StoreSpec
) -> None:
    cap, threads = D("2.00"), 50
    results = workers.map(
        "reserve_concurrently", lambda i: (spec, threads, str(cap), 1000 + i)
    )
    admitted = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
    total = sum((D(r[2]) for r in results), D(0))
    assert admitted + refused == WORKERS * threads
    assert refused > 0 and admitted > 0
    store = open_spec(spec)
    usage = store.usage("fleet", "2026-11-30")
    assert usage.spent == total <= cap  # every admitted cent, and never more
    assert usage.reserved == 0
    # Every refusal was real: reservations only grow into spend here, so what
    # is left is smaller than the largest amount asked for (0.050).
    assert cap - total < D("0.050")


def test_kill_9_frees_reservations_within_the_lease_and_a_restart_sees_the_day(
    workers: Workers, spec: StoreSpec
) -> None:
    cap, lease = D("1.00"), 1.0
    victim = 3 if spec[0] == "sqlite" else 2
    workers.send(
        victim, "hold_reservations", spec, "0.25", ["0.30", "0.40"], "1.00", lease
    )
    assert workers.recv(victim) == workers.pid(victim)  # holding, not yet settled
    observer = open_spec(spec)
    usage = observer.usage("daily", "2026-11-30")
    assert usage.spent == D("0.25") and usage.reserved == D("0.70")
    assert not observer.reserve("daily", "2026-11-30", D("0.75"), cap, 10).admitted

    workers.kill(victim)
    killed = time.monotonic()

    def whole_again() -> bool:
        res = observer.reserve("daily", "2026-11-30", D("0.75"), cap, 10)
        if res.admitted:
            observer.release(res)  # type: ignore[arg-type]
            return True
        return False

    wait_until(whole_again, timeout=lease + 2)
    assert time.monotonic() - killed <= lease + 0.5
    assert observer.usage("daily", "2026-11-30").reserved == 0  # nothing leaked
    # A process started afterwards (a restart) sees the day's spend.
    if spec[0] == "sqlite":
        fresh = open_store(f"sqlite:///{spec[1]}")
    else:
        fresh = open_store(spec[1], prefix=spec[2])
    assert fresh.spent("daily", "2026-11-30") == D("0.25")
    assert D(workers.call(0, "spent", spec, "daily", "2026-11-30")) == D("0.25")


def test_a_breaker_opened_in_one_process_is_open_in_another_and_probed_once(
    workers: Workers, spec: StoreSpec
) -> None:
    rules = BreakerSpec(failure_threshold=3, minimum_requests=3)
    observer = open_spec(spec)
    cooldown = 0.5
    workers.send(0, "trip_breaker", spec, "gateway|gpt-4.1", cooldown)
    wait_until(lambda: observer.breaker("gateway|gpt-4.1", rules).state == "open", 10)
    seen = time.time()
    opened = workers.recv(0)
    assert seen - opened < 1.0, (seen, opened)  # seen open here within 1 s

    # Every process races for the probe as the cooldown ends.
    wins = workers.map("race_for_probe", lambda i: (spec, "gateway|gpt-4.1", 4))
    assert sum(wins) == 1, wins  # one half-open probe across all processes
    view = observer.breaker("gateway|gpt-4.1", rules)
    assert view.state == "closed" and view.trips == 1


def test_a_rate_limit_shared_by_four_processes_holds_within_5_percent(
    workers: Workers, spec: StoreSpec
) -> None:
    # 50 requests a second for 3 s; a burst of 5 absorbs the wake-up jitter of
    # processes sleeping until the next free slot on a busy machine.
    per_second, burst, seconds = 50.0, 5.0, 3.0
    results = workers.map(
        "hammer_rate", lambda i: (spec, "rpm", per_second, burst, seconds)
    )
    granted = sum(r[0] for r in results)
    # Never above the limit over the span the four processes really ran...
    span = max(r[2] for r in results) - min(r[1] for r in results)
    assert granted <= burst + per_second * span + 1, results
    # ...and within 5 % of what the limit allows in the nominal window.
    allowed = burst + per_second * seconds
    assert abs(granted - allowed) <= 0.05 * allowed, results
    assert all(r[0] > 0 for r in results)  # every process got its share of turns
