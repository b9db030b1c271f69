"""The batch engine: items through a runnable, concurrently, under a budget cap.

Each item runs with its own `HolySheepCallbackHandler` (for its cost, tokens and
served models) sharing one job-wide `Budget`, whose reservations make the cap
exact even with many items in flight. A refusal while other items are in flight
may only mean their reservations are still held: the item goes back to the
queue, new items wait until nothing is in flight, and it is tried once more;
refused again, the budget is spent and the job stops (finished items are kept).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from pydantic import BaseModel

from langchain_holysheep.cli._results import Item
from langchain_holysheep.errors import ConfigurationError, GatewayAuthenticationError
from langchain_holysheep.spend import (
    Budget,
    BudgetError,
    HolySheepCallbackHandler,
    PriceBook,
    RecordSink,
)
from langchain_holysheep.spend.ledger.base import LedgerError

__all__ = ["BatchStats", "error_text", "run_batch", "to_jsonable"]


@dataclass
class BatchStats:
    """What one run of a batch job did."""

    ok: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)
    unpriced_calls: int = 0
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    stopped_by: BaseException | None = None
    ledger_error: str | None = None

    def add_model(self, model: str, calls: int, inp: int, out: int, cost: Any) -> None:
        """Accumulate one model's numbers from one item."""
        row = self.by_model.setdefault(
            model,
            {"calls": 0, "input": 0, "output": 0, "cost": Decimal(0), "unpriced": 0},
        )
        row["calls"] += calls
        row["input"] += inp
        row["output"] += out
        if cost is None:
            row["unpriced"] += calls
        else:
            row["cost"] += cost


def to_jsonable(value: Any) -> Any:
    """A chain's output as JSON data (messages as their text)."""
    if isinstance(value, BaseMessage):
        return value.text
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


_MAX_ERROR_CHARS = 20_000


def error_text(exc: BaseException) -> str:
    """An item's error as stored in its result: the type and the whole message.

    Multi-line messages (e.g. every route's reason when all routes failed) are
    kept whole; only a pathological message beyond 20,000 characters is cut,
    saying how much was left out.
    """
    text = f"{type(exc).__name__}: {exc}".rstrip()
    if len(text) > _MAX_ERROR_CHARS:
        cut = len(text) - _MAX_ERROR_CHARS
        text = f"{text[:_MAX_ERROR_CHARS]}... ({cut:,} more characters)"
    return text


class _Job:
    def __init__(
        self,
        runnable: Runnable[Any, Any],
        budget: Budget | None,
        pricebook: PriceBook,
        ledger: RecordSink | None,
        tags: list[str],
    ) -> None:
        self.runnable = runnable
        self.budget = budget
        self.pricebook = pricebook
        self.ledger = ledger
        self.tags = tags

    async def run(self, item: Item) -> dict[str, Any]:
        handler = HolySheepCallbackHandler(
            self.budget, pricebook=self.pricebook, ledger=self.ledger
        )
        config: Any = {
            "callbacks": [handler],
            "tags": self.tags,
            "metadata": {"batch_item_id": item.id},
            "run_name": f"batch:{item.id}",
        }
        start = time.perf_counter()
        error: BaseException | None = None
        output: Any = None
        try:
            output = await self.runnable.ainvoke(item.data, config=config)
        except (
            BudgetError,
            GatewayAuthenticationError,
            ConfigurationError,
            LedgerError,
        ):
            raise  # the job cannot go on: stop, record nothing for this item
        except Exception as exc:
            error = exc
        report = handler.report()
        record: dict[str, Any] = {"id": item.id, "line": item.line}
        if error is None:
            record["status"] = "ok"
            record["output"] = to_jsonable(output)
        else:
            record["status"] = "error"
            record["error"] = error_text(error)
        served = [m.model for m in report.models if m.successes]
        record["model"] = served[-1] if served else None
        record["attempts"] = report.attempts
        record["fallbacks"] = report.fallbacks
        record["input_tokens"] = report.input_tokens
        record["output_tokens"] = report.output_tokens
        record["cost"] = str(report.cost)
        if report.unpriced_calls:
            record["unpriced_calls"] = report.unpriced_calls
        record["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
        record["_models"] = [
            (m.model, m.successes, m.input_tokens, m.output_tokens, m.cost)
            for m in report.models
            if m.successes
        ]
        return record


async def run_batch(
    items: list[Item],
    runnable: Runnable[Any, Any],
    *,
    concurrency: int,
    on_result: Callable[[dict[str, Any]], None],
    budget: Budget | None = None,
    pricebook: PriceBook | None = None,
    ledger: RecordSink | None = None,
    tags: list[str] | None = None,
) -> BatchStats:
    """Run `items` through `runnable`; call `on_result(record)` as each finishes.

    Stops scheduling when the budget is spent (`stats.stopped_by`); items in
    flight then finish and are recorded. Cancellation (Ctrl-C) leaves unfinished
    items unrecorded, so a rerun does them. A bad key or configuration error
    ends the job at once (raised), rather than failing every item.
    """
    job = _Job(runnable, budget, pricebook or PriceBook(), ledger, tags or [])
    stats = BatchStats()
    queue: deque[Item] = deque(items)
    cond = asyncio.Condition()
    # mode "run": take items freely; "drain": a refused item waits for the
    # items in flight to settle; "probe": it runs alone, once.
    state: dict[str, Any] = {"inflight": 0, "mode": "run"}

    def record(result: dict[str, Any]) -> None:
        for model, calls, inp, out, cost in result.pop("_models"):
            stats.add_model(model, calls, inp, out, cost)
        if result["status"] == "ok":
            stats.ok += 1
        else:
            stats.errors += 1
        stats.cost += Decimal(result["cost"])
        stats.unpriced_calls += result.get("unpriced_calls", 0)
        on_result(result)

    def settle(probe: bool) -> None:
        state["inflight"] -= 1
        if probe:
            state["mode"] = "run"
        elif state["mode"] == "drain" and state["inflight"] == 0:
            state["mode"] = "probe"
        cond.notify_all()

    async def worker() -> None:
        while True:
            async with cond:
                while True:
                    if stats.stopped_by is not None or not queue:
                        return
                    if state["mode"] == "run" or (
                        state["mode"] == "probe" and state["inflight"] == 0
                    ):
                        break
                    await cond.wait()
                probe = state["mode"] == "probe"
                item = queue.popleft()
                state["inflight"] += 1
            try:
                result = await job.run(item)
            except BudgetError as exc:
                async with cond:
                    state["inflight"] -= 1
                    if probe:
                        stats.stopped_by = exc  # refused with nothing in flight
                    else:
                        queue.appendleft(item)
                        state["mode"] = "probe" if state["inflight"] == 0 else "drain"
                    cond.notify_all()
                continue
            except BaseException:
                async with cond:
                    settle(probe)
                raise
            record(result)
            async with cond:
                settle(probe)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return stats
