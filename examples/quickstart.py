"""Quickstart: a chain, a streamed reply, a tool call and structured output.

Run it as is:

    python examples/quickstart.py

With HOLYSHEEP_API_KEY set it calls the real HolySheep gateway; without it, it
starts the embedded gateway simulator (no key, no network) and points the model
at it through HOLYSHEEP_BASE_URL / HOLYSHEEP_API_KEY, so the code below is
exactly what you would write against the real gateway.
"""

import os
from contextlib import ExitStack

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_holysheep import ChatHolySheep


def use_simulator_without_key(stack: ExitStack) -> None:
    """No HOLYSHEEP_API_KEY? Serve the embedded simulator and point at it."""
    if os.environ.get("HOLYSHEEP_API_KEY"):
        print("Using the HolySheep gateway.")
        return
    from langchain_holysheep.simulator import GatewaySimulator

    sim = stack.enter_context(GatewaySimulator())
    os.environ["HOLYSHEEP_API_KEY"] = sim.api_key
    os.environ["HOLYSHEEP_BASE_URL"] = sim.base_url
    print(f"No HOLYSHEEP_API_KEY: using the embedded simulator at {sim.base_url}")


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"31°C and sunny in {city}"


class CityFacts(BaseModel):
    """Facts about a city."""

    city: str = Field(description="The city's name")
    country: str = Field(description="The country it is in")
    population_millions: float = Field(description="Population, in millions")


def main() -> None:
    with ExitStack() as stack:
        use_simulator_without_key(stack)
        llm = ChatHolySheep(model="gpt-4.1", temperature=0)

        # 1. A chain: prompt | model | parser
        prompt = ChatPromptTemplate.from_messages(
            [
                ("system", "You are a concise assistant."),
                ("human", "Explain {topic} in one sentence."),
            ]
        )
        chain = prompt | llm | StrOutputParser()
        print("\n[chain]", chain.invoke({"topic": "an API gateway"}))

        # 2. A streamed reply, token by token (with usage in the last chunk)
        print("\n[stream] ", end="")
        full = None
        for chunk in llm.stream("Say hello to Hanoi."):
            print(chunk.text, end="", flush=True)
            full = chunk if full is None else full + chunk
        print()
        if full is not None and full.usage_metadata:
            print("[stream usage]", full.usage_metadata["total_tokens"], "tokens")

        # 3. A tool call, the tool run, and the model's final answer
        with_tools = llm.bind_tools([get_weather])
        question = HumanMessage("What is the weather in Hanoi? Use get_weather.")
        ai = with_tools.invoke([question])
        print("\n[tool call]", ai.tool_calls)
        results = [
            ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
            for call in ai.tool_calls
        ]
        final = with_tools.invoke([question, ai, *results])
        print("[tool answer]", final.text)

        # 4. Structured output into a pydantic model
        structured = llm.with_structured_output(CityFacts)
        facts = structured.invoke("Give me facts about Ho Chi Minh City, Vietnam.")
        print("\n[structured]", repr(facts))

        print(
            "\n[answered by]",
            final.response_metadata.get("model_name"),
            "| usage:",
            final.usage_metadata,
        )


if __name__ == "__main__":
    main()
