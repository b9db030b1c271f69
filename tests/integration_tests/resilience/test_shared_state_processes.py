"""Breakers and rate limits shared by real OS processes through Redis and SQLite.

Four spawned worker processes each run a real `ChatHolySheep` against one
simulator that the test starts and passes by URL; the simulator's log is the
ground truth of what every process sent. The store, also passed by URL, is
a real Redis server (the machine's, `REDIS_URL`) or one SQLite file for the
breaker and the limit, and a Redis server of the test's own, stopped and
restarted mid-run, then frozen (SIGSTOP) and resumed, for the outages.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from langchain_holysheep.simulator import Fault, GatewaySimulator, RequestRecord
from tests._services import unavailable
from tests.integration_tests.resilience._fleet import FALLBACK, PRIMARY, Call, Fleet
from tests.integration_tests.state.conftest import redis_url  # noqa: F401 (fixture)
from tests.integration_tests.state.test_outage import RedisServer

WORKERS = 4
COOLDOWN = 1.5


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    pool = Fleet(WORKERS)
    try:
        pool.map("ping", lambda i: (), timeout=120)  # started, package imported
        yield pool
    finally:
        pool.close()


@pytest.fixture
def sim_keys(sim: GatewaySimulator) -> dict[str, str]:
    """The simulator as the workers see it (its URL and key)."""
    return {"base_url": sim.base_url, "api_key": sim.api_key, "cooldown": str(COOLDOWN)}


@pytest.fixture(params=["redis", "sqlite"])
def state_url(
    request: pytest.FixtureRequest, sim: GatewaySimulator, tmp_path: Path
) -> Iterator[str]:
    """The store every worker opens by URL: the machine's Redis, or one SQLite file.

    Store keys hold the simulator's URL (a port of its own): no test sees
    another's state; its Redis keys are deleted afterwards.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
        return
    url = request.getfixturevalue("redis_url")
    yield url
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"holysheep:*{sim.base_url}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    """Poll `condition` until it holds (fails after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def arrived_after(sim: GatewaySimulator, t: float) -> list[RequestRecord]:
    return [r for r in sim.log.records(PRIMARY) if r.arrived > t]


def test_a_breaker_tripped_in_one_process_is_skipped_by_all_and_probed_once(
    fleet: Fleet,
    sim: GatewaySimulator,
    sim_keys: dict[str, str],
    state_url: str,
    tmp_path: Path,
) -> None:
    start_at = time.monotonic() + 0.5
    stop = str(tmp_path / "stop")
    fleet.start("breaker_calls", lambda i: (sim_keys, state_url, start_at, stop, 0.02))
    # the fleet is calling (each worker imports and builds its model first)
    wait_until(lambda: len(arrived_after(sim, start_at)) >= 8, timeout=60)
    sim.script(PRIMARY, [], then=Fault.status(503))  # the primary goes down
    failed: list[RequestRecord] = []

    def tripped() -> bool:
        failed[:] = [r for r in sim.log.records(PRIMARY) if r.status == 503]
        return len(failed) >= 3

    wait_until(tripped, timeout=5)
    opened = sorted(r.ended or 0.0 for r in failed)[2]  # the third failure opens it
    # two half-open probes fail (one per cooldown, fleet-wide), then it heals
    wait_until(lambda: len(arrived_after(sim, opened + 1.0)) >= 2, timeout=3 * COOLDOWN)
    sim.script(PRIMARY, [])
    healed = time.monotonic()
    good: list[RequestRecord] = []

    def closed() -> bool:  # the next probe succeeds: the breaker closes
        good[:] = [r for r in arrived_after(sim, healed) if r.status == 200]
        return bool(good) and time.monotonic() > (good[0].ended or 0.0) + 1.5

    wait_until(closed, timeout=3 * COOLDOWN)
    Path(stop).touch()
    calls: list[list[Call]] = fleet.results(timeout=30)

    probes = [r for r in sim.log.records(PRIMARY) if opened + 1.0 < r.arrived < healed]
    assert probes and all(r.status == 503 for r in probes)
    starts = [opened] + [p.arrived for p in probes]  # each probe a cooldown later
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.9 * COOLDOWN, f"more than one probe per cooldown: {gaps}"
    for worker, seen in enumerate(calls):  # B skips the open model within 1 s
        skipping = [c for c in seen if c[0] > opened + 1.0 and c[1] < healed]
        assert skipping and {c[2] for c in skipping} == {FALLBACK}, worker

    after = arrived_after(sim, healed)
    closed_at = next(r.ended for r in after if r.status == 200)
    assert closed_at is not None
    assert len([r for r in after if r.arrived <= closed_at]) == 1  # one good probe
    for worker, seen in enumerate(calls):  # and every process uses it again
        back = [c for c in seen if c[0] > closed_at + 1.0]
        assert back and {c[2] for c in back} == {PRIMARY}, worker


def test_a_requests_per_minute_limit_holds_across_four_processes(
    fleet: Fleet,
    sim: GatewaySimulator,
    sim_keys: dict[str, str],
    state_url: str,
) -> None:
    rpm, span = 1200.0, 4.0  # 20 requests/s shared by 4 processes x 2 threads
    start_at = time.monotonic() + 2.0
    until = start_at + span
    counts = fleet.map(
        "limited_calls", lambda i: (sim_keys, state_url, rpm, start_at, until)
    )
    sent = [r for r in sim.log.records(PRIMARY) if start_at <= r.arrived < until]
    expected = 1 + rpm / 60 * span  # a burst of 1, then the rate
    assert all(n > 0 for n in counts), counts
    assert abs(len(sent) - expected) <= 0.05 * expected, (len(sent), expected, counts)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed", "apt-get install redis-server")
    server = RedisServer(binary)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


def test_redis_stopped_restarted_and_frozen_mid_run(
    fleet: Fleet,
    sim: GatewaySimulator,
    sim_keys: dict[str, str],
    own_redis: RedisServer,
    tmp_path: Path,
) -> None:
    start_at = time.monotonic() + 0.5
    stop = str(tmp_path / "stop")
    fleet.start("outage_calls", lambda i: (sim_keys, own_redis.url, start_at, stop))

    def progress(n: int) -> Callable[[], bool]:
        mark = len(sim.log.records())
        return lambda: len(sim.log.records()) >= mark + n

    wait_until(progress(20), timeout=5)
    own_redis.kill()
    wait_until(progress(60), timeout=10)  # the fleet keeps serving on local state
    own_redis.start()
    wait_until(progress(60), timeout=10)  # and returns to the shared state
    own_redis.pause()  # a slow store: requests time out instead of failing fast
    wait_until(progress(60), timeout=15)
    own_redis.resume()
    wait_until(progress(60), timeout=10)
    client = redis.Redis.from_url(own_redis.url)
    try:  # the restarted server (empty) holds the shared state again, while
        # the fleet still runs (a breaker writes at its next sync after recovery)
        for pattern in ("holysheep:rate:*", "holysheep:breaker:*"):
            wait_until(_has_keys(client, pattern), timeout=15)
    finally:
        client.close()
    Path(stop).touch()
    results = fleet.results(timeout=30)

    for worker, result in enumerate(results):
        assert result["errors"] == 0, (worker, result["failures"])
        outages = [a[0] for a in result["alerts"]]
        assert outages == [False, True, False, True], (worker, result)  # once each
        assert result["available"], worker


def _has_keys(client: redis.Redis, pattern: str) -> Callable[[], bool]:
    return lambda: any(True for _ in client.scan_iter(match=pattern))
