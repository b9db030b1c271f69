"""LCEL with fallbacks and a spend report.

    python examples/chain.py

The chain is `prompt | ChatHolySheep(..., fallbacks=[...]) | parser`. The
fallbacks live inside the model, so the chain stays a plain LCEL chain and the
model stays a chat model (tools and structured output keep working, unlike
`.with_fallbacks()`, which returns a Runnable). Every call is priced by the
model that answered it; `get_holysheep_callback()` collects the report.

Without HOLYSHEEP_API_KEY this runs on the embedded simulator, where gpt-4.1
is scripted to fail (HTTP 503) so you can watch the failover.
"""

import os
from contextlib import ExitStack

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.resilience import RetryPolicy
from langchain_holysheep.spend import Budget, get_holysheep_callback


def use_simulator_without_key(stack: ExitStack) -> object | None:
    """No HOLYSHEEP_API_KEY? Serve the embedded simulator and point at it."""
    if os.environ.get("HOLYSHEEP_API_KEY"):
        return None
    from langchain_holysheep.simulator import Fault, GatewaySimulator

    sim = stack.enter_context(GatewaySimulator())
    os.environ["HOLYSHEEP_API_KEY"] = sim.api_key
    os.environ["HOLYSHEEP_BASE_URL"] = sim.base_url
    sim.script("gpt-4.1", [], then=Fault.status(503))  # an outage of the primary
    print(f"Simulator at {sim.base_url}; gpt-4.1 is down (HTTP 503).")
    return sim


def main() -> None:
    with ExitStack() as stack:
        sim = use_simulator_without_key(stack)
        llm = ChatHolySheep(
            model="gpt-4.1",
            fallbacks=["gemini-2.5-flash", "deepseek-v3.2"],
            retry=RetryPolicy(max_attempts=2, initial=0.05),
            max_tokens=256,
            temperature=0,
        )
        prompt = ChatPromptTemplate.from_messages(
            [
                ("system", "Answer in one short paragraph."),
                ("human", "{question}"),
            ]
        )
        answer = prompt | llm | StrOutputParser()
        with_meta = prompt | llm  # the same chain, keeping the AIMessage

        questions = [
            {"question": "What is an API gateway?"},
            {"question": "Why use a fallback model?"},
            {"question": "How do I cap LLM spend per day?"},
        ]
        # A budget that cannot be overrun: each call reserves its worst case.
        with get_holysheep_callback(budget=Budget("0.25", window="total")) as cb:
            for q, text in zip(questions, answer.batch(questions), strict=True):
                print(f"\nQ: {q['question']}\nA: {text[:160]}")
            msg = with_meta.invoke({"question": "Which model answered this?"})
            meta = msg.response_metadata["holysheep"]
            print(
                f"\nanswered by {meta['served_model']} (requested "
                f"{meta['requested_model']}, {meta['attempts']} attempts, "
                f"{meta['fallbacks']} fallback)"
            )

        report = cb.report()
        print("\nSpend report:")
        print(report.render(use_rich=False))
        if sim is not None:
            print(f"total cost {report.cost:.6f} USD over {report.calls} calls")


if __name__ == "__main__":
    main()
