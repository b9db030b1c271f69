"""Agents and helpers for the shared-cap tests (also run in worker processes).

Prices are steep and exact: input free, output $1000 per 1M tokens for
gpt-4.1, so a call's worst case is `max_tokens` x $0.001 whatever the prompt,
and deepseek-v3.2 is a hundred times cheaper.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from langchain.agents import create_agent
from langchain_core.tools import tool

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.middleware import SpendLimitMiddleware
from langchain_holysheep.spend import PriceBook, TokenUsage
from langchain_holysheep.state import StateStore, open_store

PRICES = PriceBook(
    {
        "gpt-4.1": {"input": "0", "output": "1000"},
        "deepseek-v3.2": {"input": "0", "output": "10"},
    },
    use_env=False,
)
ASK = {"messages": [("user", "What is the weather in Hanoi? Use get_weather.")]}
STOPPED = "I have stopped here: the spend limit of this {scope} is reached"


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"31 C and sunny in {city}"


def thread_agent(
    base_url: str, api_key: str, thread_limit: str, state: StateStore | str | None
) -> Any:
    """An agent on gpt-4.1 (worst case $0.020 a call) with a thread cap."""
    model = ChatHolySheep(
        model="gpt-4.1",
        base_url=base_url,
        api_key=api_key,
        max_tokens=20,
        max_retries=0,
    )
    limit = SpendLimitMiddleware(
        thread_limit=thread_limit, pricebook=PRICES, state=state
    )
    return create_agent(model, tools=[get_weather], middleware=[limit])


def outcome(result: dict[str, Any]) -> str:
    """ "answered", "thread" / "run" (the limit that ended the run), or "other"."""
    final = result["messages"][-1]
    for scope in ("thread", "run"):
        if final.text.startswith(STOPPED.format(scope=scope)):
            return scope
    return "answered" if "sunny in Hanoi" in final.text else "other"


def run_concurrently(agent: Any, thread_id: str, runs: int) -> list[str]:
    """`runs` concurrent runs of one thread, each in its own OS thread."""
    config = {"configurable": {"thread_id": thread_id}}
    with ThreadPoolExecutor(runs) as pool:
        futures = [pool.submit(agent.invoke, ASK, config) for _ in range(runs)]
        return [outcome(f.result()) for f in futures]


def worker(
    base_url: str,
    api_key: str,
    store: tuple[str, str],
    thread_id: str,
    thread_limit: str,
    runs: int,
    barrier: Any,
) -> tuple[int, list[str]]:
    """A worker process: `runs` concurrent runs on a store shared by URL.

    Every worker waits at `barrier` once its agent is built, so the runs of
    all processes overlap. Returns the process id and the runs' outcomes.
    """
    url, prefix = store
    state = open_store(url, prefix=prefix) if prefix else url
    agent = thread_agent(base_url, api_key, thread_limit, state)
    barrier.wait(timeout=60)
    return os.getpid(), run_concurrently(agent, thread_id, runs)


def billed(records: Any) -> Decimal:
    """What the simulator billed (its log), priced with `PRICES`."""
    total = Decimal(0)
    for r in records:
        if r.billed:
            usage = TokenUsage(
                r.prompt_tokens,
                r.completion_tokens,
                r.cached_tokens,
                r.reasoning_tokens,
            )
            cost = PRICES.cost(r.model, usage)
            assert cost is not None
            total += cost
    return total
