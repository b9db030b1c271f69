"""Batch processing under a budget cap, with a cost summary.

    python examples/batch.py

Runs a list of items through `prompt | ChatHolySheep` concurrently with
`chain.batch(...)`. One `Budget` covers the whole batch: each call reserves its
worst-case cost before it is sent, so the cap holds even with many calls in
flight; an item that does not fit fails with `BudgetExceededError` (nothing was
sent) instead of overspending. Results go to a JSONL file.

For big jobs that must survive interruptions use the CLI, which writes each
result durably as it finishes and resumes where it stopped:

    holysheep batch items.jsonl -o results.jsonl -p "Summarise: {text}" --budget 5

Without HOLYSHEEP_API_KEY this runs on the embedded simulator.
"""

import json
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.spend import (
    Budget,
    BudgetExceededError,
    format_money,
    get_holysheep_callback,
)

ITEMS = [
    {"id": f"ticket-{i}", "text": text}
    for i, text in enumerate(
        [
            "The invoice total is wrong after the discount was applied.",
            "I cannot log in since the password reset email never arrived.",
            "Please add an export to CSV for the monthly report.",
            "The app crashes when I upload a photo larger than 10 MB.",
            "How do I change the billing currency to VND?",
            "Two charges appeared for one order on my card.",
            "Dark mode makes the charts unreadable.",
            "Can I get an API key for the staging environment?",
        ]
    )
]


def use_simulator_without_key(stack: ExitStack) -> None:
    """No HOLYSHEEP_API_KEY? Serve the embedded simulator and point at it."""
    if os.environ.get("HOLYSHEEP_API_KEY"):
        return
    from langchain_holysheep.simulator import GatewaySimulator

    sim = stack.enter_context(GatewaySimulator())
    os.environ["HOLYSHEEP_API_KEY"] = sim.api_key
    os.environ["HOLYSHEEP_BASE_URL"] = sim.base_url
    print(f"No HOLYSHEEP_API_KEY: using the embedded simulator at {sim.base_url}")


def main() -> None:
    with ExitStack() as stack:
        use_simulator_without_key(stack)
        llm = ChatHolySheep(
            model="deepseek-v3.2", fallbacks=["gemini-2.5-flash"], max_tokens=128
        )
        prompt = ChatPromptTemplate.from_messages(
            [
                (
                    "system",
                    "Classify the support ticket: billing, bug, feature, "
                    "or account. Then summarise it in 10 words.",
                ),
                ("human", "{text}"),
            ]
        )
        chain = prompt | llm | StrOutputParser()

        # each call reserves its hard bound (~$0.007: every attempt of both routes)
        budget = Budget("0.05", name="tickets")
        with get_holysheep_callback(budget=budget) as cb:
            outputs = chain.batch(
                ITEMS, config={"max_concurrency": 4}, return_exceptions=True
            )

        out_path = Path(tempfile.gettempdir()) / "holysheep_batch_example.jsonl"
        ok = refused = 0
        with out_path.open("w", encoding="utf-8") as f:
            for item, output in zip(ITEMS, outputs, strict=True):
                if isinstance(output, BudgetExceededError):
                    refused += 1
                    record = {"id": item["id"], "error": "budget exceeded"}
                elif isinstance(output, Exception):
                    record = {"id": item["id"], "error": str(output)}
                else:
                    ok += 1
                    record = {"id": item["id"], "output": output}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")

        report = cb.report()
        print(f"{ok} items done, {refused} refused by the budget -> {out_path}")
        for row in report.models:
            print(
                f"  {row.model}: {row.successes} calls, {row.input_tokens} in / "
                f"{row.output_tokens} out tokens, {format_money(row.cost, places=6)}"
            )
        print(
            f"batch cost {report.cost:.6f} USD (cap {budget.limit} USD, never exceeded)"
        )


if __name__ == "__main__":
    main()
