"""A tool-using agent with spend limits and resilience middleware.

    python examples/agent.py

`create_agent` (LangChain 1.x) with two tools and two middleware:

- `SpendLimitMiddleware`: a per-run and a per-thread budget in USD; the spend
  is in the agent state; when the next call would not fit, the run ends with a
  final message (or raises, with `exit_behavior="error"`).
- `ResilienceMiddleware`: retries, circuit breakers, a deadline and fallbacks
  around the model calls of any chat model; in `stream_mode="messages"` a
  failed attempt's tokens are never shown.

Without HOLYSHEEP_API_KEY this runs on the embedded simulator, where gpt-4.1
goes down after the agent's first model call: the outage hits in the middle
of the run, and the agent finishes on a fallback model.
"""

import os
from contextlib import ExitStack

from langchain.agents import create_agent
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.middleware import ResilienceMiddleware, SpendLimitMiddleware
from langchain_holysheep.resilience import RetryPolicy


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"31°C and humid in {city}"


@tool
def usd_to_vnd(amount: float) -> str:
    """Convert an amount of US dollars into Vietnamese dong."""
    return f"{amount:g} USD = {amount * 25_400:,.0f} VND"


def use_simulator_without_key(stack: ExitStack) -> None:
    """No HOLYSHEEP_API_KEY? Serve the embedded simulator and point at it."""
    if os.environ.get("HOLYSHEEP_API_KEY"):
        return
    from langchain_holysheep.simulator import Fault, GatewaySimulator

    sim = stack.enter_context(GatewaySimulator())
    os.environ["HOLYSHEEP_API_KEY"] = sim.api_key
    os.environ["HOLYSHEEP_BASE_URL"] = sim.base_url
    # First request served, then an outage of gpt-4.1 (HTTP 503).
    sim.script("gpt-4.1", [Fault.ok()], then=Fault.status(503))
    print(f"Simulator at {sim.base_url}; gpt-4.1 fails after its first answer.")


def main() -> None:
    with ExitStack() as stack:
        use_simulator_without_key(stack)
        agent = create_agent(
            ChatHolySheep(model="gpt-4.1", max_tokens=512),
            tools=[get_weather, usd_to_vnd],
            system_prompt="You help travellers in Vietnam. Use the tools.",
            middleware=[
                # Outermost: sees every attempt, prices the model that answered.
                SpendLimitMiddleware(run_limit="0.05", thread_limit="0.20"),
                ResilienceMiddleware(
                    "gemini-2.5-flash",
                    "deepseek-v3.2",
                    retry=RetryPolicy(max_attempts=2, initial=0.05),
                    deadline=60,
                ),
            ],
            checkpointer=InMemorySaver(),
        )
        config = {"configurable": {"thread_id": "trip-1"}}

        # Turn 1: invoke; a tool call, the tool, then the answer.
        question = "What is the weather in Hanoi? Use get_weather."
        print(f"\nuser: {question}")
        result = agent.invoke({"messages": [("user", question)]}, config)
        for message in result["messages"][1:]:
            meta = message.response_metadata.get("holysheep", {})
            if getattr(message, "tool_calls", None):
                call = message.tool_calls[0]
                print(f"{meta.get('served_model')}: calls {call['name']}{call['args']}")
            elif message.type == "tool":
                print(f"tool: {message.text}")
            else:
                print(f"{meta.get('served_model')}: {message.text[:120]}")
                if meta.get("fallbacks"):
                    failed = [f"{f['model']} {f['status']}" for f in meta["failures"]]
                    print(f"  (survived the outage: {', '.join(failed)})")
        print(f"run spend: {result['run_spend_usd']:.6f} USD")

        # Turn 2 on the same thread, streamed token by token.
        question = "And how much is 200 USD in dong? Use usd_to_vnd."
        print(f"\nuser: {question}\nstream: ", end="")
        for chunk, meta in agent.stream(
            {"messages": [("user", question)]}, config, stream_mode="messages"
        ):
            if meta.get("langgraph_node") == "model" and chunk.text:
                print(chunk.text, end="", flush=True)
        state = agent.get_state(config).values
        print(f"\nthread spend: {state['thread_spend_usd']:.6f} USD (limit 0.20)")


if __name__ == "__main__":
    main()
