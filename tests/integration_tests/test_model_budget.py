"""`ChatHolySheep(..., budget=...)`: caps that hold under concurrency, and downgrade."""

import asyncio
from decimal import Decimal

import pytest

from langchain_holysheep import Budget, BudgetExceededError, ChatHolySheep
from langchain_holysheep.simulator import GatewaySimulator


def _model(sim: GatewaySimulator, budget: Budget, **kw: object) -> ChatHolySheep:
    return ChatHolySheep(  # type: ignore[call-arg]
        model="gpt-4.1",
        fallbacks=["deepseek-v3.2"],
        max_tokens=40,
        budget=budget,
        base_url=sim.base_url,
        api_key=sim.api_key,
        **kw,
    )


def test_model_budget_stops_before_sending(sim: GatewaySimulator) -> None:
    budget = Budget("0.02")  # ~13 calls: each reserves ~$0.0054 (3 attempts x 2 routes)
    model = _model(sim, budget)
    sent = 0
    with pytest.raises(BudgetExceededError, match="No request was sent"):
        for _ in range(50):
            model.invoke("hello there")
            sent += 1
    assert sent >= 1
    assert sim.log.count() == sent  # the refused call never reached the gateway
    assert budget.spent() <= Decimal("0.02")


async def test_model_budget_holds_under_concurrency(sim: GatewaySimulator) -> None:
    budget = Budget("0.01", window="total")
    model = _model(sim, budget)

    async def one(i: int) -> bool:
        try:
            await model.ainvoke(f"question number {i}")
        except BudgetExceededError:
            return False
        return True

    results = await asyncio.gather(*(one(i) for i in range(60)))
    assert 0 < sum(results) < 60
    assert budget.spent() <= Decimal("0.01")
    assert sim.log.count() == sum(results)


def test_downgrade_sends_unaffordable_calls_to_cheaper_routes(
    sim: GatewaySimulator,
) -> None:
    # gpt-4.1's worst case (~$0.001) does not fit $0.0006; deepseek-v3.2's does.
    budget = Budget("0.0006", window="total", on_exceeded="downgrade")
    model = _model(sim, budget)
    served = []
    with pytest.raises(BudgetExceededError):
        for _ in range(40):
            reply = model.invoke("hello there")
            served.append(reply.response_metadata["model_name"])
    assert served and set(served) == {"deepseek-v3.2"}
    assert sim.log.count("gpt-4.1") == 0
    assert budget.spent() <= Decimal("0.0006")
