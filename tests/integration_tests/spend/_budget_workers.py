"""Code run in spawned worker processes by the multi-process budget tests.

Each worker builds a real `ChatHolySheep` with a `Budget` on a shared state
store (SQLite or Redis, named by URL) and calls the one simulator the test
process started, over real HTTP.
"""

from __future__ import annotations

import asyncio
import os
import threading
from decimal import Decimal
from typing import Any

_BARRIER: Any = None


def init(barrier: Any) -> None:
    """Pool initializer: keep the barrier every worker waits on."""
    global _BARRIER
    _BARRIER = barrier


def _budget(store: dict[str, Any], name: str, limit: str, **kw: Any) -> Any:
    from langchain_holysheep import Budget
    from langchain_holysheep.state import open_store

    opened = open_store(store["url"], **store.get("options", {}))
    return Budget(limit, name=name, store=opened, **kw)


def _model(sim: dict[str, str], budget: Any, max_tokens: int = 30) -> Any:
    from langchain_holysheep import ChatHolySheep, RetryPolicy

    return ChatHolySheep(  # type: ignore[call-arg]
        model="gpt-4.1",
        base_url=sim["url"],
        api_key=sim["key"],
        max_tokens=max_tokens,
        retry=RetryPolicy(max_attempts=1),
        budget=budget,
    )


def ready() -> int:
    """Import the package (once per worker) and meet the other workers."""
    import langchain_holysheep  # noqa: F401

    _BARRIER.wait(timeout=120)
    return os.getpid()


def concurrent_calls(
    sim: dict[str, str],
    store: dict[str, Any],
    name: str,
    limit: str,
    n: int,
    ledger: str,
) -> tuple[int, list[str], int]:
    """`n` concurrent calls against one budget, started together in every worker.

    Every call is also recorded in the worker's spend ledger at `ledger`.
    Returns the number admitted, the class name of every refusal, and the pid.
    """
    from langchain_holysheep import get_holysheep_callback

    budget = _budget(store, name, limit, window="day", lease=60)
    model = _model(sim, budget)

    async def one(i: int) -> str | None:
        try:
            await model.ainvoke(f"Question {i}: how many sheep on the hill?")
        except Exception as exc:
            return type(exc).__name__
        return None

    async def run() -> list[str | None]:
        return await asyncio.gather(*(one(i) for i in range(n)))

    _BARRIER.wait(timeout=120)
    with get_holysheep_callback(ledger=ledger):
        results = asyncio.run(run())
    refused = [r for r in results if r is not None]
    return n - len(refused), refused, os.getpid()


def spent(store: dict[str, Any], name: str, limit: str) -> tuple[str, str]:
    """The budget's spend and reservations today, as read by a fresh process."""
    budget = _budget(store, name, limit, window="day")
    return str(budget.spent()), str(budget.reserved())


def hold_and_hang(
    sim: dict[str, str], store: dict[str, Any], name: str, limit: str, lease: float
) -> None:
    """Reserve through a call that never returns (the test kills the process)."""
    budget = _budget(store, name, limit, lease=lease)
    model = _model(sim, budget)
    threading.Thread(target=model.invoke, args=("hang on",), daemon=True).start()
    threading.Event().wait()


def amount(value: str) -> Decimal:
    """A worker's amount back as a `Decimal`."""
    return Decimal(value)
