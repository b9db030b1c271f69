"""Tracker totals equal the simulator's ground-truth billing, exactly."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.spend import get_holysheep_callback

from .conftest import BOOK, PRICED, UNPRICED, assert_matches_simulator, chat

MODELS = [*PRICED, UNPRICED]


def prompt(i: int) -> list[Any]:
    # shared prefixes make the simulator's prompt cache bill cached tokens
    return [
        SystemMessage("You are a careful assistant for a Vietnamese shop."),
        HumanMessage(f"Question {i % 11}: how many items are in order {i % 5}?"),
    ]


def script_failures(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.status(503), Fault.ok(), Fault.status(429)] * 4)
    # cut before any content (nothing billed); a cut after content is billed
    # and estimated (tests/integration_tests/spend/test_cut_streams.py)
    sim.script("claude-sonnet-4.5", [Fault.status(500), Fault.stream_cut(0)] * 3)
    sim.script("deepseek-v3.2", [Fault.no_done(), Fault.ok()] * 4)


@pytest.mark.filterwarnings("ignore::langchain_holysheep.spend.UnpricedModelWarning")
def test_threads_and_asyncio_streaming_and_not(sim: GatewaySimulator) -> None:
    script_failures(sim)
    llms = {m: chat(sim, m, max_tokens=60) for m in MODELS}
    jobs = list(itertools.product(range(40), MODELS))  # 200 calls per mode

    def run(i: int, model: str, stream: bool) -> bool:
        llm = llms[model]
        try:
            if stream:
                for _ in llm.stream(prompt(i)):
                    pass
            else:
                llm.invoke(prompt(i))
        except Exception:
            return False
        return True

    async def arun(i: int, model: str, stream: bool, gate: asyncio.Semaphore) -> bool:
        llm = llms[model]
        async with gate:
            try:
                if stream:
                    async for _ in llm.astream(prompt(i)):
                        pass
                else:
                    await llm.ainvoke(prompt(i))
            except Exception:
                return False
            return True

    async def async_part() -> list[bool]:
        gate = asyncio.Semaphore(48)
        return await asyncio.gather(*(arun(i, m, i % 2 == 0, gate) for i, m in jobs))

    with get_holysheep_callback(pricebook=BOOK) as cb:
        with ThreadPoolExecutor(16) as pool:
            # LangChain's own executors copy the context; a plain pool needs it
            futures = [
                pool.submit(contextvars.copy_context().run, run, i, m, i % 2 == 1)
                for i, m in jobs
            ]
            outcomes = [f.result() for f in futures]
        outcomes += asyncio.run(async_part())

    report = cb.report()
    assert len(outcomes) == report.calls == 400
    assert report.successes == sum(outcomes)
    assert report.failures == 400 - sum(outcomes)
    assert report.failures >= 10  # the scripted faults happened
    assert_matches_simulator(report, sim)
    assert report.cached_tokens > 0 and report.reasoning_tokens > 0
    unpriced = report.model(UNPRICED)
    assert unpriced is not None and unpriced.cost is None
    assert report.unpriced_calls == unpriced.successes
    assert report.ttft_ms.count > 0 and report.latency_ms.p99 is not None


def test_batch_uses_langchains_threads(sim: GatewaySimulator) -> None:
    llm = chat(sim, "gpt-4.1", max_tokens=40)
    with get_holysheep_callback(pricebook=BOOK) as cb:
        llm.batch([prompt(i) for i in range(100)], config={"max_concurrency": 16})
    assert cb.report().calls == 100
    assert_matches_simulator(cb.report(), sim)


def test_streaming_spend_equals_non_streaming_spend() -> None:
    prompts = [prompt(i) for i in range(40)]
    costs = []
    with_text = 0  # streams that produced content (a first token)
    for stream in (False, True):
        with GatewaySimulator() as sim:
            llms = [chat(sim, m, max_tokens=50) for m in PRICED]
            with get_holysheep_callback(pricebook=BOOK) as cb:
                for p, llm in zip(prompts, itertools.cycle(llms)):
                    if stream:
                        with_text += bool(
                            "".join(str(c.content) for c in llm.stream(p))
                        )
                    else:
                        llm.invoke(p)
            assert_matches_simulator(cb.report(), sim)
            costs.append(cb.report())
    plain, streamed = costs
    assert streamed.cost == plain.cost > 0
    assert [
        (m.model, m.input_tokens, m.cached_tokens, m.output_tokens, m.reasoning_tokens)
        for m in streamed.models
    ] == [
        (m.model, m.input_tokens, m.cached_tokens, m.output_tokens, m.reasoning_tokens)
        for m in plain.models
    ]
    # deepseek-reasoner may spend all of max_tokens on reasoning: no content
    assert streamed.ttft_ms.count == with_text >= 30 and plain.ttft_ms.count == 0
