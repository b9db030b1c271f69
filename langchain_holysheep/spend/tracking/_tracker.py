"""`SpendTracker`: the shared store of what every chat-model call cost.

Callback handlers feed it one *call* at a time (the call's attempts as
`CallRecord`s, the last one being the final outcome) and it forwards every
record to its `RecordSink`s (ledger, Prometheus, ...) at once. Counting is
deferred: a call is queued (one append, no lock) and folded into the totals
(`Aggregate`) in batches, by the first read that follows or once 64 calls wait,
so a read always sees every call recorded before it, in any thread. A call may
also come as `DeferredRecords` (a usual answer, `Answer`), built and priced when
it is counted, or by a ledger's writer thread, when every sink takes that.
`global_tracker()` is the process-wide instance used by `HOLYSHEEP_TRACK_SPEND=1`.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.records import CallRecord, DeferredRecords
from langchain_holysheep.spend.tracking._aggregate import Aggregate
from langchain_holysheep.spend.tracking._recent import RecentStats
from langchain_holysheep.spend.tracking._sinks import RecordSink, close_sink
from langchain_holysheep.spend.tracking._summary import SpendReport

if TYPE_CHECKING:
    from langchain_core.messages.ai import UsageMetadata


__all__ = ["RecentStats", "SpendTracker", "global_tracker", "reset_global_tracker"]

_logger = logging.getLogger(__name__)

FOLD_AT = 64
"""Calls that may wait to be counted; the call that reaches it folds them in."""

_Pending = tuple[
    "tuple[CallRecord, ...] | DeferredRecords",
    float,
    "tuple[str, UsageMetadata] | None",
]
"""A call waiting to be counted: its records (built, or to build), its end
(clock), its usage_metadata."""


class SpendTracker:
    """Thread-safe aggregates of chat-model calls, per served model.

    Args:
        pricebook: prices used by handlers that feed this tracker.
        sinks: `RecordSink`s that receive every `CallRecord`.
        clock: epoch-seconds clock for the recent-activity window.
        recent_span: seconds covered by `recent()` counts and cost.

    Attributes:
        takes_deferred: every sink takes `DeferredRecords` (`record_deferred`,
            as ledgers do), so `record_deferred` may be used; true with no sink.

    Example:
        ```python
        tracker = SpendTracker()
        with get_holysheep_callback(tracker=tracker):
            llm.invoke("hi")
        print(tracker.report())
        ```
    """

    def __init__(
        self,
        pricebook: PriceBook | None = None,
        sinks: Iterable[RecordSink] = (),
        *,
        clock: Callable[[], float] = time.time,
        recent_span: float = 3600.0,
    ) -> None:
        self.pricebook = pricebook if pricebook is not None else PriceBook()
        self._set_sinks(list(sinks))
        self._lock = threading.Lock()
        self._clock = clock
        self._span = recent_span
        self._pending: deque[_Pending] = deque()
        self._agg = Aggregate(recent_span, clock)

    # -- sinks ------------------------------------------------------------------
    def _set_sinks(self, sinks: list[RecordSink]) -> None:
        """Replace the sinks (copy on write: `record_call` reads them unlocked)."""
        self._sinks = sinks
        self.takes_deferred = all(
            callable(getattr(sink, "record_deferred", None)) for sink in sinks
        )

    def add_sink(self, sink: RecordSink) -> None:
        """Forward every future record to `sink`."""
        with self._lock:
            if sink not in self._sinks:
                self._set_sinks([*self._sinks, sink])

    def remove_sink(self, sink: RecordSink, *, close: bool = False) -> None:
        """Stop forwarding to `sink` (and close it, if asked)."""
        with self._lock:
            if sink in self._sinks:
                self._set_sinks([s for s in self._sinks if s is not sink])
        if close:
            close_sink(sink)

    @property
    def sinks(self) -> list[RecordSink]:
        """A copy of the registered sinks."""
        with self._lock:
            return list(self._sinks)

    def close(self) -> None:
        """Close every sink (those that define `close()`)."""
        for sink in self.sinks:
            try:
                close_sink(sink)
            except Exception:
                _logger.exception("closing spend sink %r failed", sink)

    # -- feeding ----------------------------------------------------------------
    def record_call(
        self,
        records: Sequence[CallRecord],
        *,
        usage_metadata: tuple[str, UsageMetadata] | None = None,
    ) -> None:
        """Add one chat-model call: its attempts in order, the last one final.

        A call whose last record has outcome "ok" succeeded; any other outcome
        means the call failed. `usage_metadata` is the answer's
        `(model_name, usage_metadata)`, summed as `record_usage_metadata` sums
        it. Every sink receives the records before this returns; the totals
        count the call from the next read on.
        """
        if records:
            self._queue((tuple(records), self._clock(), usage_metadata))
            sinks = self._sinks  # never changed in place
            for sink in sinks:
                for rec in records:
                    try:
                        sink.record(rec)
                    except Exception:
                        _logger.exception("spend sink %r failed on a record", sink)
        elif usage_metadata is not None:
            self._queue(((), 0.0, usage_metadata))

    def record_deferred(
        self,
        call: DeferredRecords,
        usage_metadata: tuple[str, UsageMetadata] | None = None,
    ) -> None:
        """Add a call whose records are built when it is counted.

        Every sink gets it through `record_deferred`: call it only when
        `takes_deferred` (a sink without it takes every record at once).
        """
        self._queue((call, self._clock(), usage_metadata))
        for sink in self._sinks:
            try:
                sink.record_deferred(call)  # type: ignore[attr-defined]
            except Exception:
                _logger.exception("spend sink %r failed on a record", sink)

    def record_usage_metadata(self, model_name: str, usage: UsageMetadata) -> None:
        """Add an answer's `usage_metadata` to `model_name`'s (`add_usage`)."""
        self._queue(((), 0.0, (model_name, usage)))

    def _queue(self, item: _Pending) -> None:
        pending = self._pending
        pending.append(item)  # atomic: no lock on the call's path
        if len(pending) >= FOLD_AT:
            with self._lock:
                self._fold()

    def _fold(self) -> None:
        """Count every call waiting now (hold the lock; only folds pop)."""
        popleft, agg = self._pending.popleft, self._agg
        for _ in range(len(self._pending)):  # bounded, while calls keep coming
            call, when, usage = popleft()
            if call:
                try:
                    records = call if isinstance(call, tuple) else call.records()
                    agg.add_call(records, when)
                except Exception:
                    _logger.exception("HolySheep spend: could not count a call")
            if usage is not None:
                try:
                    agg.add_usage_metadata(*usage)
                except Exception:
                    _logger.exception("HolySheep spend: could not add usage_metadata")

    def record_rejected(self, count: int = 1) -> None:
        """Count calls refused by a budget (nothing was sent for them)."""
        with self._lock:
            self._agg.rejected += count

    def reset(self) -> None:
        """Forget everything (sinks stay registered)."""
        with self._lock:
            self._pending.clear()
            self._agg = Aggregate(self._span, self._clock)

    # -- reading ----------------------------------------------------------------
    def _read(self, read: Callable[[Aggregate], Any]) -> Any:
        with self._lock:
            self._fold()
            return read(self._agg)

    @property
    def total_cost(self) -> Decimal:
        """Priced spend in USD, full precision."""
        cost: Decimal = self._read(lambda agg: agg.cost)
        return cost

    @property
    def usage_metadata(self) -> dict[str, UsageMetadata]:
        """Summed `usage_metadata` of the answers, by `model_name` (a copy)."""
        usage: dict[str, UsageMetadata] = self._read(
            lambda agg: copy.deepcopy(agg.usage_metadata)
        )
        return usage

    @property
    def failover_rate(self) -> float | None:
        """Calls answered by a fallback route / calls (`None` before any call)."""
        rate: float | None = self._read(
            lambda agg: agg.fallback_calls / agg.calls if agg.calls else None
        )
        return rate

    @property
    def cost_per_1k_requests(self) -> Decimal | None:
        """Priced cost per 1,000 calls (`None` before any call)."""
        per_1k: Decimal | None = self._read(
            lambda agg: agg.cost * 1000 / agg.calls if agg.calls else None
        )
        return per_1k

    def recent(self) -> RecentStats:
        """Counts and cost over the recent window (for alerts)."""
        stats: RecentStats = self._read(lambda agg: agg.recent.stats())
        return stats

    def report(self) -> SpendReport:
        """A consistent snapshot of everything, as a `SpendReport`."""
        report: SpendReport = self._read(lambda agg: agg.report(self.pricebook))
        return report

    def __repr__(self) -> str:
        calls, cost = self._read(lambda agg: (agg.calls, agg.cost))
        return f"SpendTracker(calls={calls}, cost={cost})"


_global_lock = threading.Lock()
_global: SpendTracker | None = None


def global_tracker() -> SpendTracker:
    """The process-wide tracker (created on first use), fed by HOLYSHEEP_TRACK_SPEND."""
    global _global
    with _global_lock:
        if _global is None:
            _global = SpendTracker()
        return _global


def reset_global_tracker() -> None:
    """Forget the process-wide tracker's numbers (for tests)."""
    with _global_lock:
        if _global is not None:
            _global.reset()
