"""Agent caps are budgets in a state store: concurrent runs share one cap.

20 runs of one thread at once, in OS threads, asyncio tasks or two worker
processes (spawned) sharing a SQLite file or a Redis server: what the
simulator billed (its own log, priced) never passes the thread's cap. And a
run whose expensive model does not fit what is left is answered by the
cheaper model of its chain.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import uuid
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelFallbackMiddleware
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.middleware import SpendLimitMiddleware
from langchain_holysheep.simulator import GatewaySimulator
from langchain_holysheep.state import MemoryStore, SQLiteStore, open_store
from tests.integration_tests.agents._agents import (
    ASK,
    PRICES,
    billed,
    get_weather,
    outcome,
    run_concurrently,
    thread_agent,
    worker,
)

CAP = Decimal("0.100")  # five calls' worst case ($0.020 each) at a time
RUNS = 20


def thread_id() -> str:
    return f"t-{uuid.uuid4().hex}"


def check_shared_cap(
    sim: GatewaySimulator, outcomes: list[str], spent: Decimal
) -> None:
    """The cap held, the runs it could not fit were told so, the store is exact."""
    total = billed(sim.log.records())
    assert total <= CAP
    assert spent == total  # the store counted every billed call, nothing else
    assert set(outcomes) <= {"answered", "thread"}
    assert "thread" in outcomes  # 20 runs cost far more than the cap: some stopped
    assert sim.log.count() >= 1
    # A thread cap that each run checked on its own copy of the state would
    # have let every run through: two calls each, several times the cap.
    assert sim.log.count() < 2 * RUNS


def test_concurrent_runs_of_one_thread_share_its_cap(sim: GatewaySimulator) -> None:
    agent = thread_agent(sim.base_url, sim.api_key, str(CAP), state=None)
    tid = thread_id()
    outcomes = run_concurrently(agent, tid, RUNS)
    store = SpendLimitMiddleware(thread_limit="1").store  # the process's store
    check_shared_cap(sim, outcomes, store.spent(f"agent-thread/{tid}/global", "total"))


async def test_concurrent_async_runs_share_the_cap(sim: GatewaySimulator) -> None:
    store = MemoryStore()
    agent = thread_agent(sim.base_url, sim.api_key, str(CAP), state=store)
    tid = thread_id()
    config: Any = {"configurable": {"thread_id": tid}}
    results = await asyncio.gather(*(agent.ainvoke(ASK, config) for _ in range(RUNS)))
    outcomes = [outcome(r) for r in results]
    spent = store.spent(f"agent-thread/{tid}/global", "total")
    check_shared_cap(sim, outcomes, spent)
    # Each run's state mirrors the store: never more than the thread spent.
    assert all(r["thread_spend_usd"] <= spent for r in results)
    assert max(r["thread_spend_usd"] for r in results) > 0


@pytest.fixture(params=["sqlite", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """A store URL and key prefix that two processes can both open."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}", ""
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    return url, prefix


def test_runs_of_one_thread_in_two_processes_share_its_cap(
    sim: GatewaySimulator, shared_store: tuple[str, str]
) -> None:
    tid = thread_id()
    spawn = mp.get_context("spawn")
    with spawn.Manager() as manager, ProcessPoolExecutor(2, mp_context=spawn) as pool:
        barrier = manager.Barrier(2)
        args = (sim.base_url, sim.api_key, shared_store, tid, str(CAP), RUNS // 2)
        futures = [pool.submit(worker, *args, barrier) for _ in range(2)]
        results = [f.result() for f in futures]
    assert len({pid for pid, _ in results}) == 2  # two processes, at once
    outcomes = [o for _, runs in results for o in runs]
    url, prefix = shared_store
    store = SQLiteStore(url.removeprefix("sqlite:///")) if not prefix else None
    store = store or open_store(url, prefix=prefix)
    try:
        spent = store.spent(f"agent-thread/{tid}/global", "total")
    finally:
        store.close()
    assert len(outcomes) == RUNS
    check_shared_cap(sim, outcomes, spent)


# -- a cheaper route of the chain that fits ------------------------------------------
def test_a_tight_run_limit_downgrades_to_the_cheap_fallback(
    sim: GatewaySimulator,
) -> None:
    # gpt-4.1's worst case ($0.020) does not fit $0.015; deepseek's ($0.0002) does.
    model = ChatHolySheep(
        model="gpt-4.1",
        base_url=sim.base_url,
        api_key=sim.api_key,
        max_tokens=20,
        max_retries=0,
        fallbacks=["deepseek-v3.2"],
    )
    agent = create_agent(
        model,
        tools=[get_weather],
        middleware=[SpendLimitMiddleware(run_limit="0.015", pricebook=PRICES)],
    )
    out = agent.invoke(ASK)
    assert outcome(out) == "answered"
    assert {r.model for r in sim.log.records()} == {"deepseek-v3.2"}
    assert out["run_spend_usd"] == billed(sim.log.records()) > 0


def test_a_fallback_middleware_inside_tries_the_cheap_model(
    sim: GatewaySimulator,
) -> None:
    cheap = ChatOpenAI(
        model="deepseek-v3.2", base_url=sim.base_url, api_key=sim.api_key, max_tokens=20
    )
    primary = ChatHolySheep(
        model="gpt-4.1",
        base_url=sim.base_url,
        api_key=sim.api_key,
        max_tokens=20,
        max_retries=0,
    )
    agent = create_agent(
        primary,
        tools=[get_weather],
        middleware=[
            SpendLimitMiddleware(run_limit="0.015", pricebook=PRICES),
            ModelFallbackMiddleware(cheap),
        ],
    )
    out = agent.invoke(ASK)
    assert outcome(out) == "answered"
    assert {r.model for r in sim.log.records()} == {"deepseek-v3.2"}
    assert out["run_spend_usd"] == billed(sim.log.records()) > 0


def test_when_no_route_fits_the_final_message_names_the_limit(
    sim: GatewaySimulator,
) -> None:
    model = ChatHolySheep(
        model="gpt-4.1",
        base_url=sim.base_url,
        api_key=sim.api_key,
        max_tokens=20,
        max_retries=0,
        fallbacks=["deepseek-v3.2"],
    )
    agent = create_agent(
        model,
        tools=[get_weather],
        middleware=[
            SpendLimitMiddleware(run_limit="1", thread_limit="0.0001", pricebook=PRICES)
        ],
    )
    out = agent.invoke(ASK)
    assert outcome(out) == "thread"
    assert out["messages"][-1].response_metadata["holysheep_spend"] == {
        "limit_reached": "thread",
        "run_spend_usd": "0",
        "thread_spend_usd": "0",
    }
    assert sim.log.count() == 0


# -- the store and the checkpoint ----------------------------------------------------
def test_a_checkpointed_thread_keeps_its_spend_when_the_store_forgot_it(
    sim: GatewaySimulator,
) -> None:
    # A memory store lives as long as its process; the checkpointer may outlive
    # it. A new store (a restart) is told what the checkpoint knows.
    saver = InMemorySaver()
    config: Any = {"configurable": {"thread_id": thread_id()}}

    def agent(store: MemoryStore) -> Any:
        model = ChatHolySheep(
            model="gpt-4.1",
            base_url=sim.base_url,
            api_key=sim.api_key,
            max_tokens=20,
            max_retries=0,
        )
        limit = SpendLimitMiddleware(thread_limit=CAP, pricebook=PRICES, state=store)
        return create_agent(
            model, tools=[get_weather], middleware=[limit], checkpointer=saver
        )

    first = agent(MemoryStore()).invoke(ASK, config)
    spent = first["thread_spend_usd"]
    assert spent == billed(sim.log.records())
    # The next call's worst case ($0.020) would fit a cap of `spent` if the new
    # store started from zero.
    assert spent >= Decimal("0.020")
    sent = sim.log.count()
    again = MemoryStore()
    limit = SpendLimitMiddleware(thread_limit=spent, pricebook=PRICES, state=again)
    model = ChatHolySheep(
        model="gpt-4.1", base_url=sim.base_url, api_key=sim.api_key, max_tokens=20
    )
    second = create_agent(
        model, tools=[get_weather], middleware=[limit], checkpointer=saver
    ).invoke({"messages": [("user", "And in Hue?")]}, config)
    assert outcome(second) == "thread"
    assert sim.log.count() == sent  # nothing sent: the thread had spent its cap
    assert (
        again.spent(
            f"agent-thread/{config['configurable']['thread_id']}/global", "total"
        )
        == spent
    )


def test_state_must_be_a_store_or_a_url() -> None:
    with pytest.raises(ConfigurationError, match="state must be a StateStore"):
        SpendLimitMiddleware(thread_limit="1", state=42)  # type: ignore[arg-type]


def test_the_store_is_named_by_holysheep_state_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOLYSHEEP_STATE_URL", f"sqlite:///{tmp_path / 'caps.db'}")
    assert SpendLimitMiddleware(thread_limit="1").store.kind == "sqlite"
    monkeypatch.setenv("HOLYSHEEP_STATE_URL", "memory://")
    one, two = (SpendLimitMiddleware(thread_limit="1") for _ in range(2))
    assert one.store is two.store  # one memory store for the whole process


def resilient_agent(sim: GatewaySimulator, run_limit: str) -> Any:
    """gpt-4.1 ($0.020 worst case) with a `ResilienceMiddleware` fallback to
    deepseek ($0.0002), inside a run limit."""
    from langchain_holysheep.middleware import ResilienceMiddleware

    cheap = ChatOpenAI(
        model="deepseek-v3.2", base_url=sim.base_url, api_key=sim.api_key, max_tokens=20
    )
    primary = ChatHolySheep(
        model="gpt-4.1",
        base_url=sim.base_url,
        api_key=sim.api_key,
        max_tokens=20,
        max_retries=0,
    )
    return create_agent(
        primary,
        tools=[get_weather],
        middleware=[
            SpendLimitMiddleware(run_limit=run_limit, pricebook=PRICES),
            ResilienceMiddleware(cheap),
        ],
    )


def test_resilience_fallbacks_inside_the_limit_try_the_cheap_model(
    sim: GatewaySimulator,
) -> None:
    """A budget refusal of one route moves on to a cheaper route that fits."""
    out = resilient_agent(sim, "0.015").invoke(ASK)
    assert outcome(out) == "answered"
    assert {r.model for r in sim.log.records()} == {"deepseek-v3.2"}
    assert out["run_spend_usd"] == billed(sim.log.records()) > 0
    served = out["messages"][-1].response_metadata["holysheep"]
    assert served["failures"][0]["reason"] == "over budget"
    assert served["failures"][0]["status"] is None


def test_resilience_fallbacks_that_all_refuse_end_with_the_limit(
    sim: GatewaySimulator,
) -> None:
    out = resilient_agent(sim, "0.00001").invoke(ASK)
    assert outcome(out) == "run"
    assert sim.log.count() == 0
