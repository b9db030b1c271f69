"""Agent middleware with `create_agent`, real tools and the gateway simulator.

Every test asserts from the simulator's ground-truth log: which model received
which request, what failed, what was billed.
"""

from __future__ import annotations

import importlib.util
import uuid
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
from langchain_holysheep.errors import ConfigurationError, UnknownModelError
from langchain_holysheep.middleware import (
    ResilienceMiddleware,
    SpendLimitExceededError,
    SpendLimitMiddleware,
)
from langchain_holysheep.resilience import (
    AllRoutesFailedError,
    BreakerConfig,
    BreakerRegistry,
    RateLimit,
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
from langchain_holysheep.spend.budgets._errors import BudgetCheckError

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


def new_thread_id() -> str:
    """A thread id of its own: the caps of a thread live in a process-wide store."""
    return f"t-{uuid.uuid4().hex}"


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
        holysheep(sim, max_tokens=20, max_retries=0),  # worst case per call: $0.020
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
        holysheep(sim, max_tokens=20, max_retries=0),
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
    config: Any = {"configurable": {"thread_id": new_thread_id()}}
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
FIRST_CALL_REFUSED = (
    "Agent spend limit reached: this {scope} has spent $0.0000 of its {scope}_limit "
    "of $0.0150 ($0.0150 left), and the next model call (gpt-4.1) could cost up to "
    "$0.0200 (worst case: prompt x input price + max_tokens x output price). No "
    "request was sent. Set a lower max_tokens on the model, use a cheaper model, "
    "raise {scope}_limit, or {fresh}."
)


@pytest.mark.parametrize(
    ("scope", "fresh"), [("run", "start a new run"), ("thread", "use a new thread")]
)
def test_refusal_message_reads_cleanly(
    sim: GatewaySimulator, scope: str, fresh: str
) -> None:
    limits = {f"{scope}_limit": "0.015"}
    agent = create_agent(
        holysheep(sim, max_tokens=20, max_retries=0),
        tools=TOOLS,
        middleware=[
            SpendLimitMiddleware(**limits, pricebook=STEEP, exit_behavior="error")
        ],
        checkpointer=InMemorySaver(),
    )
    config: Any = {"configurable": {"thread_id": new_thread_id()}}
    with pytest.raises(SpendLimitExceededError) as info:
        agent.invoke(ASK_WEATHER, config)
    assert str(info.value) == FIRST_CALL_REFUSED.format(scope=scope, fresh=fresh)
    assert (info.value.requested, info.value.model) == (Decimal("0.02"), "gpt-4.1")
    assert sim.log.count() == 0


def test_final_message_when_the_first_call_does_not_fit(sim: GatewaySimulator) -> None:
    agent = create_agent(
        holysheep(sim, max_tokens=20, max_retries=0),
        tools=TOOLS,
        middleware=[SpendLimitMiddleware(run_limit="0.015", pricebook=STEEP)],
    )
    final = agent.invoke(ASK_WEATHER)["messages"][-1]
    assert final.text == (
        "I have stopped here: the spend limit of this run is reached ($0.0000 spent "
        "of $0.0150), and the next model call could cost more than what is left."
    )
    assert sim.log.count() == 0


@pytest.mark.filterwarnings("ignore:No price is known for model 'mystery-model'")
def test_unpriced_refusal_says_so(sim: GatewaySimulator) -> None:
    agent = create_agent(
        openai_model(sim, "mystery-model"),
        tools=[],
        middleware=[
            SpendLimitMiddleware(
                run_limit="1",
                pricebook=PriceBook(use_env=False),
                allow_unpriced=False,
                exit_behavior="error",
            )
        ],
    )
    with pytest.raises(SpendLimitExceededError) as info:
        agent.invoke({"messages": [("user", "hello")]})
    assert str(info.value) == (
        "Agent spend limit of this run cannot be checked: no price is known for "
        "'mystery-model', so the next model call's cost cannot be counted against "
        "run_limit ($0.0000 spent of $1.0000). No request was sent. Add a price "
        "(pricebook=PriceBook({...}) or $HOLYSHEEP_PRICING_FILE) or pass "
        "allow_unpriced=True."
    )
    assert info.value.unpriced == ["mystery-model"]
    assert sim.log.count() == 0


def test_budget_refusal_names_the_total_window_once(sim: GatewaySimulator) -> None:
    budget = Budget("0.015", window="total", name="team")
    with (
        get_holysheep_callback(budget=budget, pricebook=STEEP),
        pytest.raises(BudgetExceededError) as info,
    ):
        holysheep(sim, max_tokens=20, max_retries=0).invoke("hello")
    assert str(info.value) == (
        "Budget 'team' exceeded (window: total): limit $0.0150, spent $0.0000, "
        "reserved by calls in flight $0.0000, left $0.0150; this call for gpt-4.1 "
        "needs up to $0.0200 (worst case: prompt x input price + max_tokens x "
        "output price, for every attempt the call can make). No request was sent. "
        "Set a lower max_tokens or fewer retries, use a cheaper model, raise the "
        "limit, or reset the budget."
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


def test_refusal_swallowed_by_an_inner_middleware_still_ends_the_run(
    sim: GatewaySimulator,
) -> None:
    # retry_on=(Exception,) retries anything, and on_failure="continue" turns
    # the last failure into an answer: the limit still decides.
    retry_all = ModelRetryMiddleware(
        retry_on=(Exception,), initial_delay=0, jitter=False
    )
    agent = create_agent(
        holysheep(sim, max_tokens=20),
        tools=TOOLS,
        middleware=[
            SpendLimitMiddleware(run_limit="0.015", pricebook=STEEP),
            retry_all,
        ],
    )
    final = agent.invoke(ASK_WEATHER)["messages"][-1]
    assert final.text.startswith("I have stopped here: the spend limit of this run")
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


def test_model_fallback_outside_spend_limit_does_not_switch_model(
    sim: GatewaySimulator,
) -> None:
    # deepseek-v3.2 (catalogue prices) would fit where gpt-4.1 does not: an
    # "error" refusal must still stop the run, not become a switch of model.
    agent = create_agent(
        holysheep(sim, max_tokens=20),
        tools=TOOLS,
        middleware=[
            ModelFallbackMiddleware(openai_model(sim, "deepseek-v3.2")),
            SpendLimitMiddleware(
                run_limit="0.015", pricebook=STEEP, exit_behavior="error"
            ),
        ],
    )
    with pytest.raises(SpendLimitExceededError) as info:
        agent.invoke(ASK_WEATHER)
    assert info.value.model == "gpt-4.1"
    assert sim.log.count() == 0


async def test_async_model_fallback_inside_spend_limit_does_not_switch_model(
    sim: GatewaySimulator,
) -> None:
    agent = create_agent(
        holysheep(sim, max_tokens=20),
        tools=TOOLS,
        middleware=[
            SpendLimitMiddleware(run_limit="0.015", pricebook=STEEP),
            ModelFallbackMiddleware(openai_model(sim, "deepseek-v3.2")),
        ],
    )
    out = await agent.ainvoke(ASK_WEATHER)
    assert out["messages"][-1].text.startswith(
        "I have stopped here: the spend limit of this run"
    )
    assert sim.log.count() == 0


# -- a budget that cannot be checked refuses the call --------------------------------
class _UnreachablePrices(PriceBook):
    """Prices from a service that is down: every worst case fails."""

    def worst_case_cost(self, *args: Any, **kwargs: Any) -> Decimal | None:
        raise ConnectionError("price service unreachable")


@pytest.mark.parametrize("exit_behavior", ["end", "error"])
def test_reservation_failure_fails_closed(
    sim: GatewaySimulator, exit_behavior: Any
) -> None:
    agent = create_agent(
        holysheep(sim, max_tokens=20),
        tools=TOOLS,
        middleware=[
            SpendLimitMiddleware(
                run_limit="1",
                pricebook=_UnreachablePrices(use_env=False),
                exit_behavior=exit_behavior,
            ),
            ModelRetryMiddleware(initial_delay=0, jitter=False),
        ],
    )
    with pytest.raises(BudgetCheckError) as info:
        agent.invoke(ASK_WEATHER)
    assert str(info.value) == (
        "Budget 'agent run' could not reserve the worst-case cost of this call to "
        "gpt-4.1 (the cause is in the log of langchain_holysheep.spend), "
        "so the call was refused: no request was sent. Fix the cause (usually the "
        "prices: pass a PriceBook, e.g. PriceBook({'my-model': {'input': '1.00', "
        "'output': '3.00'}})) and run again."
    )
    assert sim.log.count() == 0


# -- arguments are checked at construction -------------------------------------------
def test_a_bad_pricebook_fails_before_anything_is_sent(sim: GatewaySimulator) -> None:
    with pytest.raises(ConfigurationError, match=r"pricebook must be a PriceBook"):
        agent = create_agent(
            holysheep(sim, max_tokens=20),
            tools=TOOLS,
            middleware=[SpendLimitMiddleware(run_limit="1", pricebook="x")],  # type: ignore[arg-type]
        )
        agent.invoke(ASK_WEATHER)
    assert sim.log.count() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pricebook": "x"}, r"pricebook must be a PriceBook .* got 'x' \(str\)"),
        ({"pricebook": "prices.toml"}, r"PriceBook\.from_file\(path\)"),
        (
            {"pricebook": {"m": {"input": "1", "output": "2"}}},
            r"PriceBook\(\{\.\.\.\}\)",
        ),
        ({"allow_unpriced": "no"}, r"allow_unpriced must be True or False, got 'no'"),
        ({"allow_unpriced": 0}, r"allow_unpriced must be True or False, got 0 \(int\)"),
        ({"exit_behavior": "stop"}, r"exit_behavior must be 'end' or 'error'"),
        ({"run_limit": "abc"}, r"run_limit must be an amount in USD such as '0.50'"),
        ({"run_limit": True}, r"run_limit must be an amount in USD"),
        ({"run_limit": [1]}, r"run_limit must be an amount in USD"),
        ({"run_limit": "0"}, r"run_limit must be a finite amount of USD above 0"),
        ({"run_limit": -1}, r"run_limit must be a finite amount of USD above 0"),
        ({"run_limit": float("nan")}, r"run_limit must be a finite amount"),
        ({"run_limit": "Infinity"}, r"run_limit must be a finite amount"),
        ({"thread_limit": "1,5"}, r"thread_limit must be an amount in USD"),
        ({"run_limit": None}, r"needs run_limit and/or thread_limit"),
    ],
)
def test_spend_limit_arguments_are_checked(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SpendLimitMiddleware(**{"run_limit": "1", **kwargs})


def test_spend_limits_read_numeric_strings_as_decimal() -> None:
    mw = SpendLimitMiddleware(run_limit=" 0.50 ", thread_limit=0.1)
    assert (mw.run_limit, mw.thread_limit) == (Decimal("0.50"), Decimal("0.1"))
    assert isinstance(mw.run_limit, Decimal)
    assert SpendLimitMiddleware(thread_limit=2).thread_limit == Decimal(2)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((123,), {}, r"fallback #1 is 123 \(int\): pass a chat model instance"),
        (("gemini-2.5-flash", None), {}, r"fallback #2 is None"),
        (({"model": "deepseek-v3.2"},), {}, r"configure the model itself"),
        ((["gemini-2.5-flash"],), {}, r"Fallbacks are positional arguments"),
        (("",), {}, r"fallback #1 is an empty string"),
        (("opneai:gpt-4.1",), {}, r"init_chat_model does not know the provider"),
        (("openai:",), {}, r"is not a 'provider:model' string"),
        ((), {"retry": "fast"}, r"retry must be a RetryPolicy .* use max_retries=N"),
        ((), {"breakers": "x"}, r"breakers must be a BreakerRegistry"),
        ((), {"breakers": BreakerConfig()}, r"breakers=BreakerRegistry\(config\)"),
        ((), {"rate_limits": RateLimit(requests_per_minute=5)}, r"registry\.configure"),
        ((), {"error_policy": {429: "fallback"}}, r"error_policy must be an? Error"),
        (
            (),
            {"deadline": "10"},
            r"deadline must be a number of seconds .* '10' \(str\)",
        ),
        ((), {"deadline": 0}, r"deadline must be more than 0 seconds"),
        ((), {"deadline": float("nan")}, r"deadline must be more than 0 seconds"),
        ((), {"timeout": -1}, r"timeout must be more than 0 seconds"),
        ((), {"timeout": True}, r"timeout must be a number of seconds"),
        ((), {"max_retries": 1.5}, r"max_retries must be a whole number .* 1\.5"),
        ((), {"max_retries": True}, r"max_retries must be a whole number"),
        ((), {"max_retries": -1}, r"max_retries must be 0 or more"),
        ((), {"on_failure": "ignore"}, r"on_failure must be 'error' or 'continue'"),
        ((), {"streaming": "fast"}, r"streaming must be 'buffer' or 'live'"),
        ((), {"sleep": 0.1}, r"sleep must be a function or None"),
    ],
)
def test_resilience_arguments_are_checked(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ResilienceMiddleware(*args, **kwargs)


@pytest.mark.parametrize(
    ("typo", "meant"), [("gpt-4.1-turbo", "gpt-4.1"), ("gtp-4.1", "gpt-4.1")]
)
def test_mistyped_fallback_ids_fail_at_construction(typo: str, meant: str) -> None:
    with pytest.raises(UnknownModelError) as info:
        ResilienceMiddleware("gemini-2.5-flash", typo)
    assert meant in info.value.suggestions
    assert "It is ResilienceMiddleware fallback #2." in str(info.value)
    assert f"ChatHolySheep(model={typo!r}, validate_model=False)" in str(info.value)


def test_provider_package_must_be_installed() -> None:
    if importlib.util.find_spec("langchain_ibm") is not None:
        pytest.skip("langchain-ibm is installed here")
    with pytest.raises(ConfigurationError, match=r"pip install langchain-ibm"):
        ResilienceMiddleware("ibm:granite-3-8b-instruct")


def test_valid_resilience_arguments_are_accepted(sim: GatewaySimulator) -> None:
    mw = ResilienceMiddleware(
        "sonnet",  # an alias
        "brand-new-gateway-model",  # unknown, but no typo of a known id
        "openai:gpt-4.1",
        openai_model(sim, "deepseek-v3.2"),
        max_retries=0,
        deadline=10,
        timeout=2.5,
        retry=FAST,
        breakers=BreakerRegistry(),
        on_failure=lambda exc: "sorry",
        streaming="live",
    )
    assert len(mw.fallbacks) == 4


def test_another_budgets_refusal_passes_through_unchanged(
    sim: GatewaySimulator,
) -> None:
    # The team budget refuses, not the agent's run limit: the caller gets the
    # team budget's refusal, not a run ended for a limit that was not reached.
    agent = create_agent(
        holysheep(sim, max_tokens=20),
        tools=TOOLS,
        middleware=[SpendLimitMiddleware(run_limit="1", pricebook=STEEP)],
    )
    team = Budget("0.015", window="total", name="team")
    with (
        get_holysheep_callback(budget=team, pricebook=STEEP),
        pytest.raises(BudgetExceededError) as info,
    ):
        agent.invoke(ASK_WEATHER)
    assert info.value.budget == "team"
    assert sim.log.count() == 0


def test_live_streaming_streams_a_chatholysheep_primary(sim: GatewaySimulator) -> None:
    """`streaming="live"` sends stream=True to a ChatHolySheep's gateway route."""
    agent = create_agent(
        holysheep(sim),
        tools=[],
        middleware=[resilience("gemini-2.5-flash", streaming="live")],
    )
    chunks = [
        chunk
        for chunk, _ in agent.stream(
            {"messages": [("user", "Tell me about Hanoi")]}, stream_mode="messages"
        )
        if isinstance(chunk, AIMessageChunk) and chunk.text
    ]
    assert len(chunks) > 1  # tokens, not one whole message
    records = sim.log.records()
    assert [(r.model, r.stream) for r in records] == [("gpt-4.1", True)]
