"""Agent middleware with `create_agent`, real tools and the gateway simulator.

Every test asserts from the simulator's ground-truth log: which model received
which request, what failed, what was billed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import (
    ModelCallLimitMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
)
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from langchain_holysheep import ChatHolySheep, get_holysheep_callback
from langchain_holysheep.middleware import (
    ResilienceMiddleware,
    SpendLimitExceededError,
    SpendLimitMiddleware,
)
from langchain_holysheep.resilience import (
    AllRoutesFailedError,
    BreakerConfig,
    BreakerRegistry,
    RetryPolicy,
    StreamInterruptedError,
)
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.spend import (
    Budget,
    BudgetExceededError,
    PriceBook,
    TokenUsage,
)

FAST = RetryPolicy(max_attempts=2, initial=0.01, max_backoff=0.02, min_wait=0.01)


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"31 C and sunny in {city}"


@tool
def get_exchange_rate(currency: str) -> str:
    """Get how many units of a currency one US dollar buys."""
    return f"1 USD = 25400 {currency}"


TOOLS = [get_weather, get_exchange_rate]
ASK_WEATHER = {"messages": [("user", "What is the weather in Hanoi? Use get_weather.")]}


def holysheep(
    sim: GatewaySimulator, model: str = "gpt-4.1", **kw: Any
) -> ChatHolySheep:
    return ChatHolySheep(model=model, base_url=sim.base_url, api_key=sim.api_key, **kw)


def openai_model(sim: GatewaySimulator, model: str) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=sim.base_url, api_key=sim.api_key)


def resilience(*fallbacks: Any, **kw: Any) -> ResilienceMiddleware:
    kw.setdefault("retry", FAST)
    kw.setdefault("breakers", BreakerRegistry())
    return ResilienceMiddleware(*fallbacks, **kw)


def trail(sim: GatewaySimulator) -> list[tuple[str, Any]]:
    return [(r.model, r.status) for r in sim.log.records()]


def billed_cost(sim: GatewaySimulator, book: PriceBook | None = None) -> Decimal:
    """What the simulator billed, priced per served model (the ground truth)."""
    book = book or PriceBook(use_env=False)
    total = Decimal(0)
    for r in sim.log.records():
        if r.billed:
            usage = TokenUsage(
                r.prompt_tokens,
                r.completion_tokens,
                r.cached_tokens,
                r.reasoning_tokens,
            )
            cost = book.cost(r.model, usage)
            assert cost is not None
            total += cost
    return total


# -- resilience -----------------------------------------------------------------
def test_outage_in_the_middle_of_a_multi_step_run(sim: GatewaySimulator) -> None:
    # The first model call (the tool call) is served; then gpt-4.1 goes down.
    sim.script("gpt-4.1", [Fault.ok()], then=Fault.status(503))
    agent = create_agent(
        holysheep(sim, max_tokens=256),
        tools=TOOLS,
        middleware=[
            SpendLimitMiddleware(run_limit="0.50"),
            resilience("gemini-2.5-flash", "deepseek-v3.2"),
        ],
    )
    out = agent.invoke(ASK_WEATHER)

    msgs = out["messages"]
    assert [type(m).__name__ for m in msgs] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert msgs[1].tool_calls[0]["name"] == "get_weather"
    assert "sunny in Hanoi" in msgs[2].content
    final = msgs[-1]
    assert "sunny in Hanoi" in final.text
    meta = final.response_metadata["holysheep"]
    assert meta["requested_model"] == "gpt-4.1"
    assert meta["served_model"] == "gemini-2.5-flash"
    assert (meta["attempts"], meta["retries"], meta["fallbacks"]) == (3, 1, 1)
    assert [f["status"] for f in meta["failures"]] == [503, 503]
    # Ground truth: one request per attempt, no SDK retries stacked on ours.
    assert trail(sim) == [
        ("gpt-4.1", 200),
        ("gpt-4.1", 503),
        ("gpt-4.1", 503),
        ("gemini-2.5-flash", 200),
    ]
    # Spend is priced by the model that answered, and equals what was billed.
    assert out["run_spend_usd"] == billed_cost(sim)
    assert out["thread_spend_usd"] == billed_cost(sim)


async def test_async_outage_opens_the_circuit(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.ok()], then=Fault.status(503))
    breakers = BreakerRegistry(
        BreakerConfig(failure_threshold=2, minimum_requests=1, cooldown=60)
    )
    agent = create_agent(
        openai_model(sim, "gpt-4.1"),
        tools=TOOLS,
        middleware=[resilience(openai_model(sim, "deepseek-v3.2"), breakers=breakers)],
    )
    first = await agent.ainvoke(ASK_WEATHER)
    assert first["messages"][-1].response_metadata["holysheep"]["served_model"] == (
        "deepseek-v3.2"
    )
    before = sim.log.count("gpt-4.1")
    second = await agent.ainvoke(ASK_WEATHER)
    # The open circuit skips gpt-4.1 without sending it anything.
    assert sim.log.count("gpt-4.1") == before
    meta = second["messages"][-1].response_metadata["holysheep"]
    assert meta["served_model"] == "deepseek-v3.2"
    assert meta["failures"][0]["reason"] == "circuit open"


def test_silent_model_times_out_and_falls_back(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.silent()])
    agent = create_agent(
        openai_model(sim, "gpt-4.1"),
        tools=[],
        middleware=[resilience(openai_model(sim, "gemini-2.5-flash"), timeout=0.3)],
    )
    out = agent.invoke({"messages": [("user", "hello")]})
    meta = out["messages"][-1].response_metadata["holysheep"]
    assert meta["served_model"] == "gemini-2.5-flash"
    assert meta["retries"] == 0  # a silent route is never retried
    assert [r[0] for r in trail(sim)] == ["gpt-4.1", "gemini-2.5-flash"]


def test_all_routes_down_error_or_continue(sim: GatewaySimulator) -> None:
    sim.set_default(Fault.status(503))
    model = openai_model(sim, "gpt-4.1")
    fallback = openai_model(sim, "deepseek-v3.2")
    agent = create_agent(model, tools=[], middleware=[resilience(fallback)])
    with pytest.raises(AllRoutesFailedError):
        agent.invoke({"messages": [("user", "hello")]})
    assert sim.log.count() == 4  # 2 attempts x 2 routes

    agent = create_agent(
        model, tools=[], middleware=[resilience(fallback, on_failure="continue")]
    )
    out = agent.invoke({"messages": [("user", "hello")]})
    final = out["messages"][-1]
    assert final.text.startswith("Model call failed after 4 attempts")
    assert final.response_metadata["holysheep"]["served_model"] is None


def test_stop_errors_are_not_retried(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.status(400, message="bad request")])
    agent = create_agent(
        openai_model(sim, "gpt-4.1"),
        tools=[],
        middleware=[resilience(openai_model(sim, "gemini-2.5-flash"))],
    )
    with pytest.raises(Exception, match="bad request"):
        agent.invoke({"messages": [("user", "hello")]})
    assert trail(sim) == [("gpt-4.1", 400)]


# -- streaming ------------------------------------------------------------------
def _streamed(agent: Any) -> list[Any]:
    return [
        chunk
        for chunk, _ in agent.stream(
            {"messages": [("user", "Tell me about Hanoi")]}, stream_mode="messages"
        )
        if isinstance(chunk, (AIMessage, AIMessageChunk))
    ]


def test_buffered_stream_never_shows_a_failed_attempt(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=3)], then=Fault.status(503))
    agent = create_agent(
        openai_model(sim, "gpt-4.1"),
        tools=[],
        middleware=[resilience(openai_model(sim, "gemini-2.5-flash"))],
    )
    shown = _streamed(agent)
    assert trail(sim) == [
        ("gpt-4.1", "cut"),
        ("gpt-4.1", 503),
        ("gemini-2.5-flash", 200),
    ]
    text = "".join(m.text for m in shown)
    # The cut attempt's tokens never reached the stream; the answer shows once.
    assert "gpt-4.1" not in text
    assert text.count("simulated reply from gemini-2.5-flash") == 1


def test_live_stream_fails_over_only_before_the_first_token(
    sim: GatewaySimulator,
) -> None:
    sim.script("gpt-4.1", [Fault.status(503), Fault.stream_cut(after_chunks=3)])
    agent = create_agent(
        openai_model(sim, "gpt-4.1"),
        tools=[],
        middleware=[
            resilience(openai_model(sim, "gemini-2.5-flash"), streaming="live")
        ],
    )
    shown: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk, _ in agent.stream(
            {"messages": [("user", "Tell me about Hanoi")]}, stream_mode="messages"
        ):
            shown.append(chunk.text)
    # Before any token: retried. After tokens were shown: no other model's
    # answer is spliced on; the partial text comes with the error.
    assert trail(sim) == [("gpt-4.1", 503), ("gpt-4.1", "cut")]
    assert info.value.partial_text == "".join(shown)
    assert info.value.partial_text


# -- spend limits -----------------------------------------------------------------
# Input free, output $1000 per 1M tokens: a call's worst case is exactly
# max_tokens x $0.001, independent of the prompt, so limits are deterministic.
STEEP = PriceBook({"gpt-4.1": {"input": "0", "output": "1000"}}, use_env=False)


def test_run_limit_ends_the_run_with_a_final_message(sim: GatewaySimulator) -> None:
    agent = create_agent(
        holysheep(sim, max_tokens=20),  # worst case per call: $0.020
        tools=TOOLS,
        middleware=[SpendLimitMiddleware(run_limit="0.025", pricebook=STEEP)],
    )
    out = agent.invoke(ASK_WEATHER)
    msgs = out["messages"]
    assert isinstance(msgs[2], ToolMessage)  # the tool ran
    final = msgs[-1]
    assert final.text.startswith("I have stopped here: the spend limit of this run")
    assert final.response_metadata["holysheep_spend"]["limit_reached"] == "run"
    # One request was sent; the second call's worst case did not fit.
    assert trail(sim) == [("gpt-4.1", 200)]
    assert out["run_spend_usd"] == billed_cost(sim, STEEP)
    assert out["run_spend_usd"] <= Decimal("0.025")


async def test_run_limit_can_raise(sim: GatewaySimulator) -> None:
    agent = create_agent(
        holysheep(sim, max_tokens=20),
        tools=TOOLS,
        middleware=[
            SpendLimitMiddleware(
                run_limit="0.025", pricebook=STEEP, exit_behavior="error"
            )
        ],
    )
    with pytest.raises(SpendLimitExceededError) as info:
        await agent.ainvoke(ASK_WEATHER)
    assert info.value.scope == "run"
    assert sim.log.count() == 1


def test_thread_limit_spans_runs_and_run_spend_resets(sim: GatewaySimulator) -> None:
    agent = create_agent(
        holysheep(sim, max_tokens=64),
        tools=TOOLS,
        middleware=[SpendLimitMiddleware(run_limit="1", thread_limit="2")],
        checkpointer=InMemorySaver(),
    )
    config: Any = {"configurable": {"thread_id": "t-1"}}
    first = agent.invoke(ASK_WEATHER, config)
    after_first = billed_cost(sim)
    assert first["run_spend_usd"] == first["thread_spend_usd"] == after_first
    second = agent.invoke({"messages": [("user", "And in Da Nang?")]}, config)
    assert second["thread_spend_usd"] == billed_cost(sim)
    assert second["run_spend_usd"] == billed_cost(sim) - after_first
    state = agent.get_state(config).values
    assert state["thread_spend_usd"] == billed_cost(sim)


def test_spend_is_priced_by_the_served_model_under_model_fallback_middleware(
    sim: GatewaySimulator,
) -> None:
    # LangChain's own fallback middleware swaps the model inside ours: the
    # outer spend middleware never sees the swap, yet prices the right model.
    sim.script("gpt-4.1", [], then=Fault.status(503))
    primary = ChatOpenAI(
        model="gpt-4.1", base_url=sim.base_url, api_key=sim.api_key, max_retries=0
    )
    agent = create_agent(
        primary,
        tools=TOOLS,
        middleware=[
            SpendLimitMiddleware(run_limit="1"),
            ModelCallLimitMiddleware(run_limit=5),
            ModelFallbackMiddleware(openai_model(sim, "deepseek-v3.2")),
        ],
    )
    out = agent.invoke(ASK_WEATHER)
    served = [r.model for r in sim.log.records() if r.billed]
    assert served == ["deepseek-v3.2", "deepseek-v3.2"]
    assert out["run_spend_usd"] == billed_cost(sim)
    gpt_price = PriceBook(use_env=False).price("gpt-4.1")
    assert gpt_price is not None and out["run_spend_usd"] > 0


# -- refusal messages ---------------------------------------------------------------
# max_tokens=20 at $1000 per 1M output tokens: every call's worst case is $0.0200.
def test_budget_refusal_names_the_total_window_once(sim: GatewaySimulator) -> None:
    budget = Budget("0.015", window="total", name="team")
    with (
        get_holysheep_callback(budget=budget, pricebook=STEEP),
        pytest.raises(BudgetExceededError) as info,
    ):
        holysheep(sim, max_tokens=20).invoke("hello")
    assert str(info.value) == (
        "Budget 'team' exceeded (window: total): limit $0.0150, spent $0.0000, "
        "reserved by calls in flight $0.0000, left $0.0150; this call for gpt-4.1 "
        "needs up to $0.0200 (worst case: prompt x input price + max_tokens x "
        "output price). No request was sent. Set a lower max_tokens, use a cheaper "
        "model, raise the limit, or reset the budget."
    )
    assert sim.log.count() == 0


# -- composition with LangChain's middleware -----------------------------------------
def test_budget_refusal_is_not_retried_by_model_retry_middleware(
    sim: GatewaySimulator,
) -> None:
    # A budget from the surrounding block: LangChain's default retry_on reads
    # the ModelError taxonomy and passes the refusal on at once.
    agent = create_agent(
        holysheep(sim, max_tokens=20),
        tools=TOOLS,
        middleware=[ModelRetryMiddleware(initial_delay=0, jitter=False)],
    )
    with (
        get_holysheep_callback(
            budget=Budget("0.015", window="total"), pricebook=STEEP
        ) as cb,
        pytest.raises(BudgetExceededError),
    ):
        agent.invoke(ASK_WEATHER)
    assert cb.report().rejected == 1
    assert sim.log.count() == 0


def test_spend_limit_outside_model_retry_ends_the_run(sim: GatewaySimulator) -> None:
    agent = create_agent(
        holysheep(sim, max_tokens=20),
        tools=TOOLS,
        middleware=[
            SpendLimitMiddleware(run_limit="0.015", pricebook=STEEP),
            ModelRetryMiddleware(initial_delay=0, jitter=False),
        ],
    )
    final = agent.invoke(ASK_WEATHER)["messages"][-1]
    assert final.text.startswith("I have stopped here: the spend limit of this run")
    assert final.response_metadata["holysheep_spend"]["limit_reached"] == "run"
    assert sim.log.count() == 0


def test_model_retry_outside_spend_limit_does_not_retry_the_refusal(
    sim: GatewaySimulator,
) -> None:
    agent = create_agent(
        holysheep(sim, max_tokens=20),
        tools=TOOLS,
        middleware=[
            ModelRetryMiddleware(initial_delay=0, jitter=False),
            SpendLimitMiddleware(
                run_limit="0.015", pricebook=STEEP, exit_behavior="error"
            ),
        ],
    )
    with pytest.raises(SpendLimitExceededError):
        agent.invoke(ASK_WEATHER)
    assert sim.log.count() == 0


# -- a budget that cannot be checked refuses the call --------------------------------


# -- arguments are checked at construction -------------------------------------------
