"""A fleet of worker processes, each running a real `ChatHolySheep`.

`Fleet(n)` spawns `n` OS processes (multiprocessing, spawn: nothing is
inherited but the arguments) once per test module; `fleet.map(name, args)`
runs one function of this module in every worker at once. Each worker
builds its own `ChatHolySheep` against the simulator the test started
(passed by URL) and a state store (passed by URL), as separate deployments
of one application would.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

PRIMARY, FALLBACK = "gpt-4.1", "gemini-2.5-flash"
Call = tuple[float, float, str]
"""One call seen by a worker: (start, end) on the monotonic clock, served model."""


def _wait_for(start_at: float) -> None:
    """Start together: each worker waits for the same instant of the host clock."""
    left = start_at - time.monotonic()
    if left > 0:
        time.sleep(left)


def _model(sim: dict[str, str], state: Any, **kw: Any) -> Any:
    from langchain_holysheep import ChatHolySheep
    from langchain_holysheep.resilience import RetryPolicy

    return ChatHolySheep(
        model=PRIMARY,
        fallbacks=[FALLBACK],
        base_url=sim["base_url"],
        api_key=sim["api_key"],
        retry=RetryPolicy(max_attempts=1),
        max_tokens=8,
        state=state,
        **kw,
    )


def _served(message: Any) -> str:
    return str(message.response_metadata["holysheep"]["served_model"])


def breaker_calls(
    sim: dict[str, str], state_url: str, start_at: float, stop: str, pace: float
) -> list[Call]:
    """Call `PRIMARY` (falling back to `FALLBACK`) until the file `stop` exists."""
    import os

    from langchain_holysheep.resilience import BreakerConfig

    cooldown = float(sim["cooldown"])
    breaker = BreakerConfig(
        failure_threshold=3, failure_rate=None, minimum_requests=3, cooldown=cooldown
    )
    model = _model(sim, state_url, breaker=breaker)
    calls: list[Call] = []
    _wait_for(start_at)
    give_up = start_at + 30.0  # a safety net: the test creates `stop` long before
    while not os.path.exists(stop) and time.monotonic() < give_up:
        start = time.monotonic()
        served = _served(model.invoke("hi"))
        calls.append((start, time.monotonic(), served))
        time.sleep(pace)  # a steady client, not a tight loop
    return calls


def limited_calls(
    sim: dict[str, str], state_url: str, rpm: float, start_at: float, until: float
) -> int:
    """Two threads calling as fast as the shared limit lets them; the count."""
    from concurrent.futures import ThreadPoolExecutor

    from langchain_holysheep.resilience import RateLimit

    limit = RateLimit(requests_per_minute=rpm, burst_requests=1)
    model = _model(sim, state_url, rate_limit=limit)
    model.invoke("warm up")  # connections and imports before the clock starts

    def loop() -> int:
        n = 0
        while time.monotonic() < until:
            model.invoke("hi")
            n += 1
        return n

    _wait_for(start_at)
    with ThreadPoolExecutor(2) as pool:
        return sum(pool.map(lambda _: loop(), range(2)))


def outage_calls(
    sim: dict[str, str], redis_url: str, start_at: float, stop: str
) -> dict[str, Any]:
    """Calls with breakers and a limit on Redis until the file `stop` exists."""
    import os

    from langchain_holysheep.resilience import RateLimit
    from langchain_holysheep.state import GuardedStore, StoreEvent, open_store

    events: list[StoreEvent] = []
    store = open_store(
        redis_url,
        on_alert=events.append,
        retry_interval=0.1,
        socket_timeout=0.3,
        connect_timeout=0.3,
    )
    assert isinstance(store, GuardedStore)
    model = _model(sim, store, rate_limit=RateLimit(requests_per_minute=60_000))
    ok = errors = 0
    failures: list[str] = []
    _wait_for(start_at)
    give_up = start_at + 30.0  # a safety net: the test creates `stop` long before
    while not os.path.exists(stop) and time.monotonic() < give_up:
        try:
            model.invoke("hi")
            ok += 1
        except Exception as exc:  # counted: the test requires none
            errors += 1
            failures.append(repr(exc)[:300])
        time.sleep(0.01)
    return {
        "ok": ok,
        "errors": errors,
        "failures": failures[:3],
        "alerts": [(e.available, e.reason) for e in events],
        "available": store.available,
    }


def ping() -> int:
    """The worker's pid (it has started and imported the package)."""
    import os

    return os.getpid()


def serve(conn: Connection) -> None:
    """The worker's loop: run `(name, args)` requests, answer each."""
    import langchain_holysheep  # noqa: F401 (imported once, before any timing)

    while True:
        message = conn.recv()
        if message is None:
            return
        name, args = message
        try:
            conn.send(("ok", globals()[name](*args)))
        except BaseException as exc:
            conn.send(("error", f"{exc!r}\n{traceback.format_exc()}"))


class Fleet:
    """`n` worker processes (spawned), each answering requests in order."""

    def __init__(self, n: int = 4) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=serve, args=(child,), daemon=True)
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)

    def start(self, name: str, args: Callable[[int], tuple[Any, ...]]) -> None:
        """Start `name` in every worker at once (`args(i)` for worker i)."""
        for i, conn in enumerate(self.conns):
            conn.send((name, args(i)))

    def results(self, timeout: float = 60.0) -> list[Any]:
        """What every worker's function returned (in worker order)."""
        return [self._recv(i, timeout) for i in range(len(self.conns))]

    def map(
        self, name: str, args: Callable[[int], tuple[Any, ...]], timeout: float = 60.0
    ) -> list[Any]:
        """Run `name` in every worker and wait for every result."""
        self.start(name, args)
        return self.results(timeout)

    def _recv(self, i: int, timeout: float) -> Any:
        conn = self.conns[i]
        if not conn.poll(timeout):
            raise TimeoutError(f"worker {i} did not answer within {timeout} s")
        status, value = conn.recv()
        if status == "error":
            raise RuntimeError(f"worker {i} failed: {value}")
        return value

    def close(self) -> None:
        """Stop every worker."""
        for proc, conn in zip(self.procs, self.conns, strict=True):
            if proc.is_alive():
                conn.send(None)
            proc.join(10)
            if proc.is_alive():
                proc.kill()
