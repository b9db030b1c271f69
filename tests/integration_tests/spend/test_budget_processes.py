"""One budget shared by OS processes through SQLite and Redis: the cap holds.

The test process starts ONE simulator that bills 60 hidden prompt tokens per
request (a gateway's own system prompt: more than any tokenizer estimates
from the request) and 4 spawned processes that each make 50 concurrent
`ChatHolySheep` calls against one `Budget` on a shared store. The
simulator's log is the ground truth of what was sent and billed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from langchain_holysheep import ChatHolySheep, RetryPolicy
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.spend import Budget, PriceBook, TokenUsage
from langchain_holysheep.spend.budgets import call_cost, call_shape
from langchain_holysheep.state import open_store

from . import _budget_workers as workers
from ._redis import redis_prefix, redis_url  # noqa: F401 (fixtures)

WORKERS, CALLS = 4, 50
HIDDEN = 60
LIMIT = "0.10"
BOOK = PriceBook(use_env=False)  # the catalogue: gpt-4.1 $8 / $24 per 1M


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(hidden_prompt_tokens=HIDDEN) as sim:
        yield sim


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    with ProcessPoolExecutor(
        WORKERS, mp_context=ctx, initializer=workers.init, initargs=(barrier,)
    ) as executor:
        pids = list(executor.map(_ready, range(WORKERS)))
        assert len(set(pids)) == WORKERS  # 4 distinct OS processes
        yield executor


def _ready(_: int) -> int:
    return workers.ready()


def _sim(sim: GatewaySimulator) -> dict[str, str]:
    return {"url": sim.base_url, "key": sim.api_key}


def billed_cost(sim: GatewaySimulator) -> Decimal:
    """What the simulator billed, at catalogue prices (the ground truth)."""
    billed = sim.log.billed("gpt-4.1")
    usage = TokenUsage(
        input=billed.prompt_tokens,
        output=billed.completion_tokens,
        cached=billed.cached_tokens,
    )
    cost = BOOK.cost("gpt-4.1", usage, warn=False)
    assert cost is not None
    return cost


def ledger_rows(paths: list[Path]) -> tuple[int, Decimal]:
    """Rows and total cost over the workers' spend ledgers."""
    rows, cost = 0, Decimal(0)
    for path in paths:
        with closing(sqlite3.connect(path)) as db:
            for (value,) in db.execute("SELECT cost FROM calls"):
                rows += 1
                cost += Decimal(str(value))
    return rows, cost


def run_fleet(
    pool: ProcessPoolExecutor,
    sim: GatewaySimulator,
    store: dict[str, Any],
    tmp_path: Path,
) -> None:
    sim.reset()
    name = f"fleet-{uuid.uuid4().hex[:8]}"
    ledgers = [tmp_path / f"ledger-{i}.sqlite3" for i in range(WORKERS)]
    jobs = [
        pool.submit(
            workers.concurrent_calls, _sim(sim), store, name, LIMIT, CALLS, str(path)
        )
        for path in ledgers
    ]
    results = [job.result(timeout=120) for job in jobs]
    assert len({pid for *_, pid in results}) == WORKERS
    admitted = sum(a for a, _, _ in results)
    refusals = [r for _, refused, _ in results for r in refused]
    assert set(refusals) == {"BudgetExceededError"}, "every refusal is clean"
    assert admitted + len(refusals) == WORKERS * CALLS
    assert sim.log.count() == admitted  # refused calls sent nothing
    assert all(r.billed for r in sim.log.records())
    truth = billed_cost(sim)
    limit = Decimal(LIMIT)
    assert truth <= limit, f"billed {truth} over the cap {limit}"
    assert truth > limit / 2  # the cap was what stopped the fleet
    budget = Budget(
        LIMIT, window="day", name=name, store=open_store(**store_args(store))
    )
    assert budget.spent() == truth  # every settle reached the shared store
    assert budget.reserved() == 0  # nothing leaked
    assert ledger_rows(ledgers) == (admitted, truth)  # the ledgers are complete


def store_args(store: dict[str, Any]) -> dict[str, Any]:
    return {"url": store["url"], **store.get("options", {})}


def test_the_hidden_prompt_beats_the_heuristic_but_not_the_bound(
    gateway: GatewaySimulator,
) -> None:
    gateway.reset()
    model = ChatHolySheep(  # type: ignore[call-arg]
        model="gpt-4.1",
        base_url=gateway.base_url,
        api_key=gateway.api_key,
        max_tokens=30,
        retry=RetryPolicy(max_attempts=1),
    )
    prompt = "Question 7: how many sheep on the hill?"
    model.invoke(prompt)
    shape = call_shape(
        [[HumanMessage(prompt)]], model._get_invocation_params(), "gpt-4.1"
    )
    (heuristic,), _ = call_cost(Budget("1", estimate="heuristic"), shape, BOOK)
    (bound,), _ = call_cost(Budget("1"), shape, BOOK)
    truth = billed_cost(gateway)
    assert heuristic[1] is not None and bound[1] is not None
    assert heuristic[1] < truth <= bound[1]  # the test above could fail


def test_four_processes_share_one_cap_through_sqlite(
    pool: ProcessPoolExecutor, gateway: GatewaySimulator, tmp_path: Path
) -> None:
    run_fleet(pool, gateway, {"url": f"sqlite:///{tmp_path / 'state.db'}"}, tmp_path)


def test_four_processes_share_one_cap_through_redis(
    pool: ProcessPoolExecutor,
    gateway: GatewaySimulator,
    redis_url: str,  # noqa: F811
    redis_prefix: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = {"url": redis_url, "options": {"prefix": redis_prefix}}
    run_fleet(pool, gateway, store, tmp_path)


def test_a_restarted_process_sees_the_days_spend(
    pool: ProcessPoolExecutor, gateway: GatewaySimulator, tmp_path: Path
) -> None:
    gateway.reset()
    store = {"url": f"sqlite:///{tmp_path / 'day.db'}"}
    budget = Budget(
        "1", window="day", name="daily", store=open_store(**store_args(store))
    )
    model = workers._model(_sim(gateway), budget)
    for i in range(3):
        model.invoke(f"hello {i}")
    budget.store.close()
    spent, reserved = pool.submit(workers.spent, store, "daily", "1").result(60)
    assert Decimal(spent) == billed_cost(gateway) > 0 and Decimal(reserved) == 0


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_kill_9_frees_the_reservation_within_the_lease(
    backend: str, gateway: GatewaySimulator, tmp_path: Path, request: Any
) -> None:
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        store = {
            "url": url,
            "options": {"prefix": request.getfixturevalue("redis_prefix")},
        }
    else:
        store = {"url": f"sqlite:///{tmp_path / 'kill.db'}"}
    gateway.reset()
    gateway.script("gpt-4.1", [Fault.silent()])
    lease = 3.0
    budget = Budget("0.01", name="killed", store=open_store(**store_args(store)))
    proc = mp.get_context("spawn").Process(
        target=workers.hold_and_hang,
        args=(_sim(gateway), store, "killed", "0.01", lease),
    )
    proc.start()
    try:
        # the call is in flight: reserved, sent, and never answered
        wait_for(lambda: budget.reserved() > 0 and gateway.log.count() == 1, 60)
        seen = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert budget.reserved() > 0  # the store cannot know the process died
        wait_for(lambda: budget.reserved() == 0, lease + 2)
        assert time.monotonic() - seen <= lease + 1  # freed within the lease
        assert budget.remaining() == budget.limit  # whole again
    finally:
        if proc.is_alive():
            proc.kill()
        gateway.reset()
