"""Redis stopped mid-run and started again, under a budgeted `ChatHolySheep`.

A `redis-server --save ''` of the test's own is killed while a call holds a
reservation, then started again on the same port (empty: it keeps nothing on
disk). Budgets fail closed meanwhile with a clean `BudgetStoreError` and send
nothing; the call in flight settles without an error (its spend is queued and
replayed); calls are admitted again by themselves once Redis answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

from langchain_holysheep import ChatHolySheep, RetryPolicy
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.spend import Budget, BudgetStoreError, TokenUsage
from langchain_holysheep.spend.budgets import BudgetError
from langchain_holysheep.state import GuardedStore, StoreEvent, open_store
from tests.integration_tests.state.test_outage import RedisServer, wait_until
from tests.integration_tests.state.test_outage import server as _server

from .conftest import BOOK

server = _server  # the fixture: a redis-server subprocess on a free port


def _model(sim: GatewaySimulator, budget: Budget) -> ChatHolySheep:
    return ChatHolySheep(  # type: ignore[call-arg]
        model="gpt-4.1",
        base_url=sim.base_url,
        api_key=sim.api_key,
        max_tokens=30,
        retry=RetryPolicy(max_attempts=1),
        budget=budget,
    )


@pytest.fixture
def store(server: RedisServer) -> Iterator[GuardedStore]:
    events: list[StoreEvent] = []
    opened = open_store(
        server.url,
        on_alert=events.append,
        retry_interval=0.1,
        socket_timeout=0.3,
        connect_timeout=0.3,
    )
    assert isinstance(opened, GuardedStore)
    opened.events = events  # type: ignore[attr-defined]
    yield opened
    opened.close()


def test_redis_stopped_mid_run_and_started_again(
    sim: GatewaySimulator, server: RedisServer, store: GuardedStore
) -> None:
    budget = Budget("1", name="outage", store=store)
    model = _model(sim, budget)
    model.invoke("before the outage")
    sim.script("gpt-4.1", [Fault.ok(1.0)])  # a slow call, in flight across the stop
    slow: list[object] = []
    worker = threading.Thread(target=lambda: slow.append(model.invoke("slow one")))
    worker.start()
    wait_until(lambda: budget.reserved() > 0 and sim.log.count() == 2, 10)

    server.kill()
    sent = sim.log.count()
    for i in range(10):  # fail closed: a clean refusal, nothing sent
        with pytest.raises(BudgetStoreError, match=r"state store .* unavailable"):
            model.invoke(f"during the outage {i}")
    assert sim.log.count() == sent
    worker.join(10)
    assert len(slow) == 1  # the call in flight finished; its settle was queued
    assert store.pending >= 1

    server.start()  # same port, empty
    wait_until(lambda: _admitted(model), 10)
    assert [e.available for e in store.events] == [False, True]  # type: ignore[attr-defined]
    # tracking resumed: the queued spend of the slow call was replayed, and the
    # spend before the stop is gone with the server's memory (--save '')
    assert budget.spent() == _slow_and_after(sim) > 0
    assert budget.reserved() == 0  # nothing leaked


def _admitted(model: ChatHolySheep) -> bool:
    try:
        model.invoke("after the outage")
    except BudgetError:
        return False
    return True


def _slow_and_after(sim: GatewaySimulator) -> Decimal:
    """Billed cost of every request but the first (the one before the stop)."""
    records = sim.log.records()[1:]
    prompt = sum(r.prompt_tokens for r in records)
    cached = sum(r.cached_tokens for r in records)
    output = sum(r.completion_tokens for r in records)
    cost = BOOK.cost(
        "gpt-4.1", TokenUsage(input=prompt, output=output, cached=cached), warn=False
    )
    assert cost is not None
    return cost
