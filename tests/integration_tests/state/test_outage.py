"""A real Redis outage: a server of the test's own, killed, paused and restarted."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from langchain_holysheep.state import (
    BreakerSpec,
    GuardedStore,
    RateSpec,
    Reservation,
    StateStoreUnavailableError,
    StoreEvent,
    open_store,
)
from tests._services import unavailable

D = Decimal
RULES = BreakerSpec(failure_threshold=2, minimum_requests=2)
LIMIT = RateSpec(requests=600, burst_requests=5)


class RedisServer:
    """`redis-server --port <free port> --save ''` in a subprocess."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        client.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed", "apt-get install redis-server")
    srv = RedisServer(binary)
    srv.start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.resume()
        srv.kill()


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


def recovered(store: GuardedStore) -> bool:
    """Whether the store answers again (a budget read fails closed until then)."""
    try:
        store.usage("probe", "w")
    except StateStoreUnavailableError:
        return False
    return store.available and store.pending == 0


def guarded(
    server: RedisServer, events: list[StoreEvent], **kw: object
) -> GuardedStore:
    store = open_store(
        server.url,
        on_alert=events.append,
        retry_interval=0.1,
        socket_timeout=0.3,
        connect_timeout=0.3,
        **kw,  # type: ignore[arg-type]
    )
    assert isinstance(store, GuardedStore)
    return store


def test_redis_killed_and_restarted(server: RedisServer) -> None:
    events: list[StoreEvent] = []
    store = guarded(server, events)
    res = store.reserve("team", "2026-11-30", D("0.40"), D("1"), 30)
    assert isinstance(res, Reservation) and not res.fallback
    store.record_failure("gw|m", RULES)

    server.kill()
    # Budgets fail closed with a clear error; the alert fires once.
    for _ in range(20):
        with pytest.raises(StateStoreUnavailableError) as err:
            store.reserve("team", "2026-11-30", D("0.01"), D("1"), 30)
    assert err.value.domain == "budgets" and "redis-cli" in str(err.value)
    assert [e.available for e in events] == [False]
    assert not store.available
    # Billed spend is queued, never dropped; nothing raises.
    done = store.settle(res, D("0.30"))
    assert done.deferred and done.counted == D("0.30") and store.pending == 1
    store.charge("team", "2026-11-30", D("0.05"))
    assert store.pending == 2
    # Breakers and rate limits go on with local state.
    assert store.record_failure("gw|m", RULES).state == "closed"
    assert store.record_failure("gw|m", RULES).state == "open"
    assert sum(store.acquire_rate("rpm", LIMIT).granted for _ in range(10)) == 5

    server.start()  # same port, empty (it keeps nothing on disk)
    wait_until(lambda: recovered(store), timeout=5)
    assert [e.available for e in events] == [False, True]
    assert events[1].replayed == 2 and store.pending == 0
    assert store.spent("team", "2026-11-30") == D("0.35")  # replayed, exactly
    # Shared state again: breakers and limits are the server's, not the outage's.
    assert store.breaker("gw|m", RULES).state == "closed"
    assert store.reserve("team", "2026-11-30", D("0.65"), D("1"), 30).admitted


def test_redis_paused_times_out_without_slowing_every_call(
    server: RedisServer,
) -> None:
    events: list[StoreEvent] = []
    store = guarded(server, events, on_store_error="local")
    assert store.reserve("b", "w", D("0.1"), D("1"), 30).admitted

    server.pause()  # alive but silent: every request would time out
    start = time.monotonic()
    held = [store.reserve("b", "w", D("0.2"), D("1"), 30) for _ in range(50)]
    elapsed = time.monotonic() - start
    assert elapsed < 2.0  # one timeout per retry interval, not one per call
    local = [r for r in held if isinstance(r, Reservation)]
    assert len(local) == 5 and all(r.fallback for r in local)  # a local cap
    for r in local:
        store.settle(r, D("0.1"))
    assert [e.available for e in events] == [False]

    server.resume()
    wait_until(lambda: recovered(store), timeout=5)
    assert store.spent("b", "w") == D("0.5")  # the outage's spend reached Redis
    assert [e.available for e in events] == [False, True]


async def test_async_calls_during_an_outage(server: RedisServer) -> None:
    events: list[StoreEvent] = []
    store = guarded(server, events)
    res = await store.areserve("b", "w", D("0.5"), D("1"), 30)
    assert isinstance(res, Reservation)

    server.kill()
    with pytest.raises(StateStoreUnavailableError):
        await store.areserve("b", "w", D("0.1"), D("1"), 30)
    assert (await store.asettle(res, D("0.2"))).deferred
    assert (await store.aacquire_rate("rpm", LIMIT)).granted
    assert (await store.arecord_failure("gw|m", RULES)).state == "closed"

    server.start()

    async def recovered() -> bool:
        try:
            await store.ausage("b", "w")
        except StateStoreUnavailableError:
            return False
        return store.available

    deadline = time.monotonic() + 5
    while not await recovered():
        assert time.monotonic() < deadline, "no recovery within 5 s"
        time.sleep(0.01)
    assert await store.aspent("b", "w") == D("0.2")
    assert [e.available for e in events] == [False, True]
    await store.aclose()
