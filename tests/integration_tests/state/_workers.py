"""Worker processes for the multi-process state-store tests.

`Workers(n)` starts `n` real OS processes (multiprocessing, spawn) that run
functions of this module on request, so the tests pay the interpreter start
once per module. Every function receives a `Ctx` (the process's pipe and a
barrier shared by all workers) and a store spec (`("sqlite", path)` or
`("redis", url, prefix)`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

from langchain_holysheep.state import (
    BreakerSpec,
    RateSpec,
    RedisStore,
    Reservation,
    SQLiteStore,
    StateStore,
)

StoreSpec = tuple[str, ...]
_STORES: dict[StoreSpec, StateStore] = {}


@dataclass
class Ctx:
    conn: Connection
    barrier: Any  # multiprocessing.synchronize.Barrier


def open_spec(spec: StoreSpec) -> StateStore:
    """The store named by `spec` (one instance per process)."""
    store = _STORES.get(spec)
    if store is None:
        if spec[0] == "sqlite":
            store = SQLiteStore(spec[1])
        else:
            store = RedisStore(spec[1], prefix=spec[2])
        _STORES[spec] = store
    return store


# -- functions run in the workers ------------------------------------------------------
def ping(ctx: Ctx) -> int:
    return os.getpid()


def reserve_concurrently(
    ctx: Ctx, spec: StoreSpec, threads: int, cap: str, seed: int
) -> tuple[int, int, str]:
    """`threads` concurrent reservations of random amounts, all settled in full.

    Returns (admitted, refused, sum of admitted amounts).
    """
    store = open_spec(spec)
    rng = random.Random(seed)
    amounts = [Decimal(rng.randint(10, 50)) / 1000 for _ in range(threads)]
    start = threading.Barrier(threads)
    hold = threading.Barrier(threads)

    def call(amount: Decimal) -> Decimal | None:
        start.wait()
        res = store.reserve("fleet", "2026-11-30", amount, Decimal(cap), 60)
        hold.wait()  # every reservation of this process is in flight at once
        if isinstance(res, Reservation):
            store.settle(res, amount)
            return amount
        return None

    ctx.barrier.wait(timeout=30)  # the four processes start together
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(call, amounts))
    ok = [r for r in results if r is not None]
    return len(ok), len(results) - len(ok), str(sum(ok, Decimal(0)))


def hold_reservations(
    ctx: Ctx, spec: StoreSpec, spent: str, holds: list[str], cap: str, lease: float
) -> None:
    """Settle `spent` in the day's window, then hold reservations until killed."""
    store = open_spec(spec)
    res = store.reserve("daily", "2026-11-30", Decimal(spent), Decimal(cap), lease)
    assert isinstance(res, Reservation)
    store.settle(res, Decimal(spent))
    held = [
        store.reserve("daily", "2026-11-30", Decimal(h), Decimal(cap), lease)
        for h in holds
    ]
    assert all(r.admitted for r in held)
    ctx.conn.send(("ready", os.getpid()))
    ctx.conn.recv()  # never answered: the test kills this process


def spent(ctx: Ctx, spec: StoreSpec, budget: str, window: str) -> str:
    return str(open_spec(spec).spent(budget, window))


def trip_breaker(ctx: Ctx, spec: StoreSpec, key: str, cooldown: float) -> float:
    """Fail until the breaker opens; returns the wall time it was seen open."""
    store = open_spec(spec)
    rules = BreakerSpec(failure_threshold=3, minimum_requests=3, cooldown=cooldown)
    while store.record_failure(key, rules, "HTTP 503").state != "open":
        pass
    return time.time()


def race_for_probe(ctx: Ctx, spec: StoreSpec, key: str, threads: int) -> int:
    """Threads claim the half-open probe of an open breaker; the winner closes it.

    Each thread tries until it wins or sees the breaker closed again (bounded).
    Returns the probes this process won.
    """
    store = open_spec(spec)
    rules = BreakerSpec(failure_threshold=3, minimum_requests=3)
    ctx.barrier.wait(timeout=30)
    deadline = time.monotonic() + 20

    def claim(_: int) -> int:
        while time.monotonic() < deadline:
            if store.try_claim_probe(key, ttl=30):
                store.record_success(key, rules)
                return 1
            if store.breaker(key, rules).state == "closed":
                return 0
        return 0

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(claim, range(threads)))


def hammer_rate(
    ctx: Ctx, spec: StoreSpec, key: str, per_second: float, burst: float, seconds: float
) -> tuple[int, float, float]:
    """Take requests from a shared limit for `seconds`.

    Returns (granted, wall time of the first attempt, wall time of the last).
    """
    store = open_spec(spec)
    limit = RateSpec(requests=per_second, per=1.0, burst_requests=burst)
    ctx.barrier.wait(timeout=30)
    first = time.time()
    end = time.monotonic() + seconds
    granted = 0
    while time.monotonic() < end:
        grant = store.acquire_rate(key, limit)
        if grant.granted:
            granted += 1
        else:  # wait for the slot the store says frees next
            time.sleep(min(grant.wait, max(end - time.monotonic(), 0.0)))
    return granted, first, time.time()


# -- the pool --------------------------------------------------------------------------
def serve_requests(conn: Connection, barrier: Any) -> None:
    """The worker's loop: run `(name, args)` requests, answer each."""
    ctx = Ctx(conn, barrier)
    while True:
        message = conn.recv()
        if message is None:
            return
        name, args = message
        try:
            conn.send(("ok", globals()[name](ctx, *args)))
        except BaseException as exc:
            conn.send(("error", f"{exc!r}\n{traceback.format_exc()}"))


class Workers:
    """`n` worker processes (spawned), addressed by index."""

    def __init__(self, n: int = 4) -> None:
        self._ctx = mp.get_context("spawn")
        self.barrier = self._ctx.Barrier(n)
        self._procs: list[Any] = [None] * n
        self._conns: list[Connection | None] = [None] * n
        for i in range(n):
            self._spawn(i)

    def _spawn(self, i: int) -> None:
        parent, child = self._ctx.Pipe()
        from tests.integration_tests.state._boot import serve

        proc = self._ctx.Process(target=serve, args=(child, self.barrier), daemon=True)
        proc.start()
        child.close()
        self._procs[i], self._conns[i] = proc, parent

    def pid(self, i: int) -> int:
        return int(self._procs[i].pid)

    def send(self, i: int, name: str, *args: Any) -> None:
        if not self._procs[i].is_alive():
            self._spawn(i)
        conn = self._conns[i]
        assert conn is not None
        conn.send((name, args))

    def recv(self, i: int, timeout: float = 60.0) -> Any:
        conn = self._conns[i]
        assert conn is not None
        if not conn.poll(timeout):
            raise TimeoutError(f"worker {i} did not answer within {timeout} s")
        status, value = conn.recv()
        if status == "error":
            raise RuntimeError(f"worker {i} failed: {value}")
        return value

    def call(self, i: int, name: str, *args: Any, timeout: float = 60.0) -> Any:
        self.send(i, name, *args)
        return self.recv(i, timeout)

    def map(
        self, name: str, args: Callable[[int], tuple[Any, ...]], timeout: float = 60.0
    ) -> list[Any]:
        """Run `name` in every worker at once (`args(i)` for worker i)."""
        for i in range(len(self._procs)):
            self.send(i, name, *args(i))
        return [self.recv(i, timeout) for i in range(len(self._procs))]

    def kill(self, i: int) -> None:
        """`kill -9` worker i (respawned on its next use)."""
        os.kill(self.pid(i), signal.SIGKILL)
        self._procs[i].join(10)

    def close(self) -> None:
        for i, proc in enumerate(self._procs):
            conn = self._conns[i]
            if proc.is_alive() and conn is not None:
                conn.send(None)
        for proc in self._procs:
            proc.join(2)
            if proc.is_alive():
                proc.kill()
                proc.join(2)
