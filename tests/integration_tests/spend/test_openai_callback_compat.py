"""`get_holysheep_callback()` is a drop-in for `get_openai_callback()`.

The same calls run under langchain-community's `get_openai_callback()`,
langchain-core's `get_usage_metadata_callback()` and `get_holysheep_callback()`
at once, against the simulator over real HTTP; the three report the same counts,
and they equal the simulator's billing log. `get_openai_callback()` prices OpenAI
model names only, so the cost is compared with the simulator's billing instead.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.callbacks import (
    UsageMetadataCallbackHandler,
    get_usage_metadata_callback,
)
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_holysheep import ChatHolySheep, RetryPolicy
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.spend import HolySheepCallbackHandler, get_holysheep_callback

from .conftest import BOOK, UNPRICED, ground_truth_cost

with warnings.catch_warnings():  # the package warns on import that it is sunset
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.callbacks import (
        OpenAICallbackHandler,
        get_openai_callback,
    )

PRIMARY = "gpt-4.1"
FALLBACK = "deepseek-reasoner"  # bills reasoning tokens


def prompt(i: int) -> list[Any]:
    # one shared system message: later calls read it from the prompt cache
    return [
        SystemMessage("You are a careful assistant for a Vietnamese shop."),
        HumanMessage(f"Question {i}: how many items are in order {i}?"),
    ]


def gateway_model(sim: GatewaySimulator, model: str = PRIMARY) -> ChatHolySheep:
    return ChatHolySheep(
        model=model,
        base_url=sim.base_url,
        api_key=sim.api_key,  # type: ignore[arg-type]
        fallbacks=[FALLBACK],
        retry=RetryPolicy.none(),  # a 503 on the primary goes to the fallback
        max_tokens=40,
    )


Blocks = tuple[
    OpenAICallbackHandler, UsageMetadataCallbackHandler, HolySheepCallbackHandler
]


@contextmanager
def three_callbacks() -> Iterator[Blocks]:
    """The three context managers, open at once over the same calls."""
    with ExitStack() as stack:
        yield (
            stack.enter_context(get_openai_callback()),
            stack.enter_context(get_usage_metadata_callback()),
            stack.enter_context(get_holysheep_callback(pricebook=BOOK)),
        )


def counts(cb: OpenAICallbackHandler | HolySheepCallbackHandler) -> tuple[int, ...]:
    return (
        cb.prompt_tokens,
        cb.prompt_tokens_cached,
        cb.completion_tokens,
        cb.reasoning_tokens,
        cb.total_tokens,
        cb.successful_requests,
    )


def assert_same_as_openai_and_simulator(
    blocks: Blocks, sim: GatewaySimulator, calls: int
) -> None:
    openai_cb, usage_cb, cb = blocks
    billed = sim.log.billed()
    assert billed.requests == calls  # failed attempts billed nothing
    assert (
        counts(cb)
        == counts(openai_cb)
        == (
            billed.prompt_tokens,
            billed.cached_tokens,
            billed.completion_tokens,
            billed.reasoning_tokens,
            billed.total_tokens,
            calls,
        )
    )
    assert cb.usage_metadata == usage_cb.usage_metadata
    for model, usage in cb.usage_metadata.items():
        per_model = sim.log.billed(model)
        assert (
            usage["input_tokens"],
            usage.get("input_token_details", {}).get("cache_read", 0),
            usage["output_tokens"],
            usage.get("output_token_details", {}).get("reasoning", 0),
            usage["total_tokens"],
        ) == (
            per_model.prompt_tokens,
            per_model.cached_tokens,
            per_model.completion_tokens,
            per_model.reasoning_tokens,
            per_model.total_tokens,
        ), model
    truth = sum(
        (ground_truth_cost(sim, model) or Decimal(0) for model in cb.usage_metadata),
        Decimal(0),
    )
    assert cb.total_cost == truth > 0
    # the same summary as get_openai_callback()'s, with the exact cost
    *lines, cost_line = str(cb).splitlines()
    assert lines == repr(openai_cb).splitlines()[:-1]
    assert cost_line == f"Total Cost (USD): ${truth.normalize():f}"


def script_fallbacks(sim: GatewaySimulator) -> None:
    sim.script(PRIMARY, [Fault.ok(), Fault.status(503)] * 4)


def assert_fell_back(cb: HolySheepCallbackHandler, sim: GatewaySimulator) -> None:
    failed = sim.log.count(PRIMARY) - sim.log.billed(PRIMARY).requests
    assert failed > 0 and set(cb.usage_metadata) == {PRIMARY, FALLBACK}
    assert cb.report().fallbacks == sim.log.billed(FALLBACK).requests > 0
    assert cb.prompt_tokens_cached > 0 and cb.reasoning_tokens > 0


def test_invoke_stream_batch_and_fallback_count_the_same(
    sim: GatewaySimulator,
) -> None:
    script_fallbacks(sim)
    model = gateway_model(sim)
    with three_callbacks() as blocks:
        model.invoke(prompt(0))
        model.invoke(prompt(1))  # 503 -> the fallback answers
        assert "".join(str(c.content) for c in model.stream(prompt(2))) != ""
        model.batch([prompt(i) for i in range(3, 9)], config={"max_concurrency": 3})
    assert_same_as_openai_and_simulator(blocks, sim, calls=9)
    assert_fell_back(blocks[2], sim)


async def test_async_calls_and_tasks_count_the_same(sim: GatewaySimulator) -> None:
    script_fallbacks(sim)
    model = gateway_model(sim)
    with three_callbacks() as blocks:
        await model.ainvoke(prompt(0))
        async for _ in model.astream(prompt(1)):
            pass
        await model.abatch([prompt(i) for i in range(2, 6)])
        await asyncio.gather(
            *(asyncio.create_task(model.ainvoke(prompt(i))) for i in range(6, 10))
        )
    assert_same_as_openai_and_simulator(blocks, sim, calls=10)
    assert_fell_back(blocks[2], sim)


def test_nested_blocks_report_usage_metadata_like_langchain(
    sim: GatewaySimulator,
) -> None:
    model = gateway_model(sim)
    with (
        get_usage_metadata_callback() as outer_usage,
        get_holysheep_callback() as outer,
    ):
        model.invoke(prompt(0))
        with (
            get_usage_metadata_callback() as inner_usage,
            get_holysheep_callback() as inner,
        ):
            model.invoke(prompt(1))
    assert outer.usage_metadata == outer_usage.usage_metadata
    assert inner.usage_metadata == inner_usage.usage_metadata
    assert (
        outer.usage_metadata[PRIMARY]["input_tokens"] == sim.log.billed().prompt_tokens
    )
    assert inner.prompt_tokens < outer.prompt_tokens == sim.log.billed().prompt_tokens


@pytest.mark.filterwarnings("ignore::langchain_holysheep.spend.UnpricedModelWarning")
def test_unpriced_calls_are_named_never_zero(sim: GatewaySimulator) -> None:
    priced = gateway_model(sim)
    unpriced = gateway_model(sim, UNPRICED)
    with get_holysheep_callback(pricebook=BOOK) as only_unpriced:
        unpriced.invoke(prompt(0))
    first = sim.log.billed(UNPRICED).total_tokens
    assert str(only_unpriced).splitlines()[-1] == (
        f"Total Cost (USD): unpriced (1 call, {first:,} tokens: cost unknown)"
    )
    assert only_unpriced.report().unpriced_calls == 1

    with get_holysheep_callback(pricebook=BOOK) as cb:
        priced.invoke(prompt(1))
        unpriced.invoke(prompt(2))
        unpriced.invoke(prompt(3))
    truth = ground_truth_cost(sim, PRIMARY)
    assert truth is not None and cb.total_cost == truth > 0
    tokens = sim.log.billed(UNPRICED).total_tokens - first
    assert str(cb).splitlines()[-1] == (
        f"Total Cost (USD): ${truth.normalize():f} + unpriced (2 calls, "
        f"{tokens:,} tokens: cost unknown, not included)"
    )


def test_total_cost_works_where_code_expects_a_float(sim: GatewaySimulator) -> None:
    with get_holysheep_callback(pricebook=BOOK) as cb:
        gateway_model(sim).invoke(prompt(0))
    truth = ground_truth_cost(sim, PRIMARY)
    assert truth is not None and cb.total_cost == truth
    as_float = float(truth)
    assert cb.total_cost > as_float / 2 and not cb.total_cost > as_float * 2
    assert cb.total_cost > 0 and cb.total_cost < 0.5
    assert float(f"{cb.total_cost:.4f}") == pytest.approx(as_float, abs=5e-5)
    assert 0.0 + float(cb.total_cost) == as_float
    with pytest.raises(TypeError):
        _ = 0.0 + cb.total_cost  # type: ignore[operator]
