"""200 concurrent calls against a budget cap never exceed it; refusals send nothing."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from langchain_holysheep.simulator import GatewaySimulator
from langchain_holysheep.spend import (
    Budget,
    BudgetExceededError,
    get_holysheep_callback,
)

from .conftest import BOOK, assert_matches_simulator, chat, ground_truth_cost

LIMIT = Decimal("0.05")  # ~38 worst cases of a gpt-4.1 call with max_tokens=50


def check(sim: GatewaySimulator, budget: Budget, results: list, report) -> None:  # type: ignore[no-untyped-def]
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(ok) + len(refused) == 200, "every error is a clean BudgetExceededError"
    assert refused and ok
    # nothing lost: the server saw exactly the admitted calls, refused ones sent nothing
    assert sim.log.count() == len(ok) == report.calls
    assert report.rejected == len(refused)
    truth = ground_truth_cost(sim, "gpt-4.1")
    assert truth is not None and truth <= LIMIT
    assert budget.spent() == truth == report.cost
    assert budget.reserved() == 0
    assert_matches_simulator(report, sim)
    err = refused[0]
    assert err.holysheep_action == "stop" and "No request was sent" in str(err)


async def test_200_async_calls_never_exceed_the_cap(sim: GatewaySimulator) -> None:
    llm = chat(sim, "gpt-4.1", max_tokens=50)
    budget = Budget(LIMIT, window="total")
    with get_holysheep_callback(budget=budget, pricebook=BOOK) as cb:
        results = await asyncio.gather(
            *(llm.ainvoke(f"Tell me about item {i}") for i in range(200)),
            return_exceptions=True,
        )
    check(sim, budget, list(results), cb.report())


def test_200_threaded_streaming_calls_never_exceed_the_cap(
    sim: GatewaySimulator,
) -> None:
    llm = chat(sim, "gpt-4.1", max_tokens=50)
    budget = Budget(LIMIT, window="total")

    def stream(prompt: str) -> str:
        return "".join(str(c.content) for c in llm.stream(prompt))

    from langchain_core.runnables import RunnableLambda

    with get_holysheep_callback(budget=budget, pricebook=BOOK) as cb:
        results = RunnableLambda(stream).batch(
            [f"Tell me about item {i}" for i in range(200)],
            config={"max_concurrency": 32},
            return_exceptions=True,
        )
    check(sim, budget, results, cb.report())


def test_budget_through_run_metadata_per_user(sim: GatewaySimulator) -> None:
    llm = chat(sim, "deepseek-v3.2", max_tokens=40)
    per_user = Budget("0.0002", window="day", scope="user")
    with get_holysheep_callback(pricebook=BOOK) as cb:
        for user in ("alice", "bob"):
            cfg = {"metadata": {"holysheep_budget": per_user, "user": user}}
            results = llm.batch(["hi"] * 30, config=cfg, return_exceptions=True)
            assert any(isinstance(r, BudgetExceededError) for r in results)
            assert per_user.spent(user) <= per_user.limit
    assert sim.log.count() == cb.report().calls
    assert per_user.spent("alice") + per_user.spent("bob") == cb.report().cost
