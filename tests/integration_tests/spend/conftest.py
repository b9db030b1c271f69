"""Helpers for spend tests over real HTTP against the gateway simulator."""

from __future__ import annotations

from decimal import Decimal

from langchain_openai import ChatOpenAI

from langchain_holysheep.simulator import GatewaySimulator
from langchain_holysheep.spend import PriceBook, SpendReport, TokenUsage

# Cached and reasoning prices differ from the base prices, so a token counted in
# the wrong bucket changes the cost.
BOOK = PriceBook(
    {
        "gpt-4.1": {"input": "8", "output": "24", "cached_input": "2"},
        "deepseek-reasoner": {
            "input": "0.55",
            "output": "2.19",
            "cached_input": "0.14",
            "reasoning": "3.10",
        },
    },
    use_env=False,
)
PRICED = ["gpt-4.1", "claude-sonnet-4.5", "deepseek-v3.2", "deepseek-reasoner"]
UNPRICED = "moonshot-v1-8k"


def chat(sim: GatewaySimulator, model: str, **kw: object) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=sim.base_url,
        api_key=sim.api_key,  # type: ignore[arg-type]
        model=model,
        stream_usage=True,
        max_retries=0,
        **kw,  # type: ignore[arg-type]
    )


def ground_truth_cost(sim: GatewaySimulator, model: str) -> Decimal | None:
    billed = sim.log.billed(model)
    usage = TokenUsage(
        input=billed.prompt_tokens,
        output=billed.completion_tokens,
        cached=billed.cached_tokens,
        reasoning=billed.reasoning_tokens,
    )
    return BOOK.cost(model, usage, warn=False)


def assert_matches_simulator(report: SpendReport, sim: GatewaySimulator) -> None:
    """Tracker totals equal the simulator's billing exactly, per model and in all."""
    total = sim.log.billed()
    assert (
        report.input_tokens,
        report.cached_tokens,
        report.output_tokens,
        report.reasoning_tokens,
    ) == (
        total.prompt_tokens,
        total.cached_tokens,
        total.completion_tokens,
        total.reasoning_tokens,
    )
    expected_cost = Decimal(0)
    for row in report.models:
        billed = sim.log.billed(row.model)
        assert (
            row.input_tokens,
            row.cached_tokens,
            row.output_tokens,
            row.reasoning_tokens,
        ) == (
            billed.prompt_tokens,
            billed.cached_tokens,
            billed.completion_tokens,
            billed.reasoning_tokens,
        ), row.model
        assert row.requests == sim.log.count(row.model), row.model
        truth = ground_truth_cost(sim, row.model)
        assert row.cost == truth, row.model
        expected_cost += truth or 0
    assert report.cost == expected_cost
    assert report.cost.quantize(Decimal("0.01")) == expected_cost.quantize(
        Decimal("0.01")
    )
    assert report.attempts == sim.log.count()
