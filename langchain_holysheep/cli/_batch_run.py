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


class _Scheduler:
    """Hands items to workers, holding new ones back after a budget refusal.

    Mode "run": take items freely; "drain": a refused item waits for the items
    in flight to settle; "probe": it runs alone, once.
    """

    def __init__(
        self,
        job: _Job,
        items: list[Item],
        on_result: Callable[[dict[str, Any]], None],
    ) -> None:
        self.job = job
        self.on_result = on_result
        self.stats = BatchStats()
        self.queue: deque[Item] = deque(items)
        self.cond = asyncio.Condition()
        self.inflight = 0
        self.mode = "run"

    async def worker(self) -> None:
        """Run items until the queue is empty or the budget is spent."""
        while True:
            async with self.cond:
                taken = await self._take()
            if taken is None:
                return
            item, probe = taken
            try:
                result = await self.job.run(item)
            except BudgetError as exc:
                async with self.cond:
                    self._refused(item, probe, exc)
                continue
            except BaseException:
                async with self.cond:
                    self._settle(probe)
                raise
            self._record(result)
            async with self.cond:
                self._settle(probe)

    async def _take(self) -> tuple[Item, bool] | None:
        """The next item and whether it is a probe; `None` when there is none."""
        while True:
            if self.stats.stopped_by is not None or not self.queue:
                return None
            if self.mode == "run" or (self.mode == "probe" and self.inflight == 0):
                break
            await self.cond.wait()
        probe = self.mode == "probe"
        self.inflight += 1
        return self.queue.popleft(), probe

    def _refused(self, item: Item, probe: bool, exc: BudgetError) -> None:
        self.inflight -= 1
        if probe:
            self.stats.stopped_by = exc  # refused with nothing in flight
        else:
            self.queue.appendleft(item)
            self.mode = "probe" if self.inflight == 0 else "drain"
        self.cond.notify_all()

    def _settle(self, probe: bool) -> None:
        self.inflight -= 1
        if probe:
            self.mode = "run"
        elif self.mode == "drain" and self.inflight == 0:
            self.mode = "probe"
        self.cond.notify_all()

    def _record(self, result: dict[str, Any]) -> None:
        stats = self.stats
        for model, calls, inp, out, cost in result.pop("_models"):
            stats.add_model(model, calls, inp, out, cost)
        if result["status"] == "ok":
            stats.ok += 1
        else:
            stats.errors += 1
        stats.cost += Decimal(result["cost"])
        stats.unpriced_calls += result.get("unpriced_calls", 0)
        self.on_result(result)


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
    scheduler = _Scheduler(job, items, on_result)
    workers = [
        asyncio.create_task(scheduler.worker()) for _ in range(max(1, concurrency))
    ]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return scheduler.stats
