"""Migrating a chain from `ChatOpenAI` to `ChatHolySheep`: one import changed.

    python examples/migrate_from_openai.py

Before, the usual hand-made setup: `ChatOpenAI` pointed at the gateway through
OPENAI_BASE_URL / OPENAI_API_KEY. After, the only change in the code:

    - from langchain_openai import ChatOpenAI as Chat
    + from langchain_holysheep import ChatHolySheep as Chat

`build_chain` below is the same code for both. What you get from the change:
the key and URL from HOLYSHEEP_* variables, usage in streamed replies (so
spend tracking sees streams), model-id typo detection, helpful errors for bad
keys, retries with backoff, and `fallbacks=[...]` when you want them.

Without HOLYSHEEP_API_KEY this runs on the embedded simulator.
"""

import os
from contextlib import ExitStack
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate


def use_simulator_without_key(stack: ExitStack) -> None:
    """No HOLYSHEEP_API_KEY? Serve the embedded simulator and point at it."""
    if not os.environ.get("HOLYSHEEP_API_KEY"):
        from langchain_holysheep.simulator import GatewaySimulator

        sim = stack.enter_context(GatewaySimulator())
        os.environ["HOLYSHEEP_API_KEY"] = sim.api_key
        os.environ["HOLYSHEEP_BASE_URL"] = sim.base_url
        print(f"No HOLYSHEEP_API_KEY: using the embedded simulator at {sim.base_url}")
    # The "before" setup of most migration guides: OpenAI's variables aimed at
    # the gateway.
    os.environ["OPENAI_API_KEY"] = os.environ["HOLYSHEEP_API_KEY"]
    os.environ["OPENAI_BASE_URL"] = os.environ.get(
        "HOLYSHEEP_BASE_URL", "https://api.holysheep.ai/v1"
    )


def build_chain(Chat: Any) -> Any:
    """The application's chain: identical before and after the migration."""
    llm = Chat(model="gpt-4.1", temperature=0, max_tokens=128)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer in one sentence."), ("human", "{question}")]
    )
    return prompt | llm, prompt | llm | StrOutputParser()


def run(label: str, Chat: Any) -> None:
    to_message, to_text = build_chain(Chat)
    question = {"question": "What does an LLM gateway do?"}
    print(f"\n[{label}] {Chat.__name__}")
    print("  answer:", to_text.invoke(question)[:120])
    chunks = list(to_message.stream(question))
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed = streamed + chunk
    usage = streamed.usage_metadata
    print("  streamed usage:", usage["total_tokens"] if usage else None, "tokens")


def main() -> None:
    with ExitStack() as stack:
        use_simulator_without_key(stack)

        # Before:
        from langchain_openai import ChatOpenAI as Chat

        run("before", Chat)

        # After (the one changed line):
        from langchain_holysheep import ChatHolySheep as Chat  # type: ignore[assignment]

        run("after", Chat)
        print(
            "\nSame chain, one import changed. Streamed usage is now reported, so "
            "spend tracking prices streams too."
        )


if __name__ == "__main__":
    main()
