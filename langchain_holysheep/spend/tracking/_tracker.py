"""`SpendTracker`: the shared, locked store of what every chat-model call cost.

Callback handlers feed it one *call* at a time (the call's attempts as
`CallRecord`s, the last one being the final outcome); it aggregates per served
model in bounded memory and forwards every record to its `RecordSink`s (ledger,
Prometheus, ...). `global_tracker()` is the process-wide instance used by
`HOLYSHEEP_TRACK_SPEND=1`.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.records import CallRecord
from langchain_holysheep.spend.tracking._recent import RecentStats, RecentWindow
from langchain_holysheep.spend.tracking._sinks import RecordSink, close_sink
from langchain_holysheep.spend.tracking._stats import LogHistogram
from langchain_holysheep.spend.tracking._summary import (
    ModelSpend,
    Percentiles,
    SpendReport,
)

if TYPE_CHECKING:
    from langchain_core.messages.ai import UsageMetadata

__all__ = ["RecentStats", "SpendTracker", "global_tracker", "reset_global_tracker"]

_logger = logging.getLogger(__name__)
_ZERO = Decimal(0)


_COUNTS = (
    "requests",
    "successes",
    "failures",
    "retries",
    "fallbacks",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
)
"""The `ModelSpend` counts a tracker keeps per model (and totals over models)."""
_TOKENS = _COUNTS[-4:]


class _ModelStats:
    """One served model's running numbers, named as `ModelSpend`'s fields."""

    __slots__ = (*_COUNTS, "cost", "latency", "priced", "ttft", "unpriced")
    requests: int
    successes: int
    failures: int
    retries: int
    fallbacks: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int

    def __init__(self) -> None:
        for name in _COUNTS:
            setattr(self, name, 0)
        self.cost = _ZERO
        self.priced = self.unpriced = 0
        self.latency = LogHistogram()
        self.ttft = LogHistogram()

    def add(self, rec: CallRecord) -> None:
        """Count one attempt on this model."""
        self.requests += 1
        if rec.is_retry:
            self.retries += 1
        if rec.outcome == "ok":
            self.successes += 1
            if rec.is_fallback:
                self.fallbacks += 1
            if rec.latency_ms is not None:
                self.latency.add(rec.latency_ms)
            if rec.ttft_ms is not None:
                self.ttft.add(rec.ttft_ms)
        else:
            self.failures += 1
        usage = rec.usage
        self.input_tokens += usage.input
        self.cached_tokens += usage.cached
        self.output_tokens += usage.output
        self.reasoning_tokens += usage.reasoning
        if rec.cost is not None:
            self.cost += rec.cost
            self.priced += 1
        else:
            self.unpriced += 1

    def spend(self, model: str) -> ModelSpend:
        """The row of a report for this model, served as `model`."""
        return ModelSpend(
            model,
            **{name: getattr(self, name) for name in _COUNTS},
            cost=self.cost if self.priced or not self.unpriced else None,
            latency_ms=Percentiles.of(self.latency),
            ttft_ms=Percentiles.of(self.ttft),
        )


_MISSING: Any = object()


def _add_counts(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    """`left + right`, summed as langchain-core's `add_usage` sums usage dicts.

    Integers add up key by key, nested dicts likewise; a key missing on one
    side counts as 0 (or an empty dict). Any other value is a `ValueError`.
    """
    out = dict(left)
    for key, value in right.items():
        have = out.get(key, _MISSING)
        if type(value) is int and type(have) is int:  # the usual case, first
            out[key] = have + value
        elif isinstance(value, int) and (have is _MISSING or isinstance(have, int)):
            out[key] = value if have is _MISSING else have + value
        elif isinstance(value, Mapping) and (
            have is _MISSING or isinstance(have, Mapping)
        ):
            out[key] = _add_counts({} if have is _MISSING else have, value)
        else:
            raise ValueError(
                f"Cannot add usage values {have!r} and {value!r} of {key!r}."
            )
    return out


class SpendTracker:
    """Thread-safe aggregates of chat-model calls, per served model.

    Args:
        pricebook: prices used by handlers that feed this tracker.
        sinks: `RecordSink`s that receive every `CallRecord`.
        clock: epoch-seconds clock for the recent-activity window.
        recent_span: seconds covered by `recent()` counts and cost.

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
        self._sinks: list[RecordSink] = list(sinks)
        self._lock = threading.Lock()
        self._clock = clock
        self._span = recent_span
        self._reset_locked()

    def _reset_locked(self) -> None:
        self._models: dict[str, _ModelStats] = {}
        self._calls = self._successes = self._failures = self._rejected = 0
        self._fallback_calls = self._unpriced_calls = self._unpriced_tokens = 0
        self._cost = _ZERO
        self._latency = LogHistogram()
        self._ttft = LogHistogram()
        self._recent = RecentWindow(self._span, self._clock)
        self._usage_metadata: dict[str, UsageMetadata] = {}

    # -- sinks ------------------------------------------------------------------
    def add_sink(self, sink: RecordSink) -> None:
        """Forward every future record to `sink`."""
        with self._lock:  # copy on write: record_call reads the list unlocked
            if sink not in self._sinks:
                self._sinks = [*self._sinks, sink]

    def remove_sink(self, sink: RecordSink, *, close: bool = False) -> None:
        """Stop forwarding to `sink` (and close it, if asked)."""
        with self._lock:
            if sink in self._sinks:
                sinks = list(self._sinks)
                sinks.remove(sink)
                self._sinks = sinks
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
    def record_call(self, records: Sequence[CallRecord]) -> None:
        """Add one chat-model call: its attempts in order, the last one final.

        A call whose last record has outcome "ok" succeeded; any other outcome
        means the call failed.
        """
        if not records:
            return
        final = records[-1]
        ok = final.outcome == "ok"
        cost, failed, unpriced, unpriced_tokens = _ZERO, 0, False, 0
        for rec in records:
            if rec.cost is not None:
                cost += rec.cost
            elif rec.outcome == "ok" or rec.usage.total:
                unpriced = True
                unpriced_tokens += rec.usage.total
            if rec.outcome != "ok":
                failed += 1
        with self._lock:
            for rec in records:
                self._add_attempt(rec)
            self._calls += 1
            if ok:
                self._successes += 1
                self._fallback_calls += final.is_fallback
                if final.latency_ms is not None:
                    self._latency.add(final.latency_ms)
                    self._recent.add_latency(final.latency_ms)
                if final.ttft_ms is not None:
                    self._ttft.add(final.ttft_ms)
            else:
                self._failures += 1
            if unpriced:
                self._unpriced_calls += 1
                self._unpriced_tokens += unpriced_tokens
            self._cost += cost
            self._recent.add_call(
                ok=ok,
                fallback=final.is_fallback,
                attempts=len(records),
                failed_attempts=failed,
                cost=cost,
            )
            sinks = self._sinks  # never changed in place
        for sink in sinks:
            for rec in records:
                try:
                    sink.record(rec)
                except Exception:
                    _logger.exception("spend sink %r failed on a record", sink)

    def _add_attempt(self, rec: CallRecord) -> None:
        stats = self._models.get(rec.served_model)
        if stats is None:
            stats = self._models[rec.served_model] = _ModelStats()
        stats.add(rec)

    def record_usage_metadata(self, model_name: str, usage: UsageMetadata) -> None:
        """Add an answer's `usage_metadata` to `model_name`'s (`add_usage`)."""
        with self._lock:
            known = self._usage_metadata.get(model_name)
            summed = (
                copy.deepcopy(usage) if known is None else _add_counts(known, usage)
            )
            self._usage_metadata[model_name] = summed  # type: ignore[assignment]

    def record_rejected(self, count: int = 1) -> None:
        """Count calls refused by a budget (nothing was sent for them)."""
        with self._lock:
            self._rejected += count

    def reset(self) -> None:
        """Forget everything (sinks stay registered)."""
        with self._lock:
            self._reset_locked()

    # -- reading ----------------------------------------------------------------
    @property
    def total_cost(self) -> Decimal:
        """Priced spend in USD, full precision."""
        with self._lock:
            return self._cost

    @property
    def usage_metadata(self) -> dict[str, UsageMetadata]:
        """Summed `usage_metadata` of the answers, by `model_name` (a copy)."""
        with self._lock:
            return copy.deepcopy(self._usage_metadata)

    @property
    def failover_rate(self) -> float | None:
        """Calls answered by a fallback route / calls (`None` before any call)."""
        with self._lock:
            return self._fallback_calls / self._calls if self._calls else None

    @property
    def cost_per_1k_requests(self) -> Decimal | None:
        """Priced cost per 1,000 calls (`None` before any call)."""
        with self._lock:
            return self._cost * 1000 / self._calls if self._calls else None

    def recent(self) -> RecentStats:
        """Counts and cost over the recent window (for alerts)."""
        with self._lock:
            return self._recent.stats()

    def report(self) -> SpendReport:
        """A consistent snapshot of everything, as a `SpendReport`."""
        with self._lock:
            rows = [stats.spend(name) for name, stats in self._models.items()]
            attempts = sum(r.requests for r in rows)
            failed = sum(r.failures for r in rows)
            calls = self._calls
            book = self.pricebook
            report = SpendReport(
                models=tuple(
                    sorted(
                        rows, key=lambda r: (r.cost is None, -(r.cost or 0), r.model)
                    )
                ),
                calls=calls,
                successes=self._successes,
                failures=self._failures,
                rejected=self._rejected,
                attempts=attempts,
                failed_attempts=failed,
                retries=sum(r.retries for r in rows),
                fallbacks=self._fallback_calls,
                **{name: sum(getattr(r, name) for r in rows) for name in _TOKENS},
                cost=self._cost,
                unpriced_calls=self._unpriced_calls,
                unpriced_tokens=self._unpriced_tokens,
                success_rate=self._successes / calls if calls else None,
                error_rate=failed / attempts if attempts else None,
                failover_rate=self._fallback_calls / calls if calls else None,
                cost_per_1k_requests=self._cost * 1000 / calls if calls else None,
                latency_ms=Percentiles.of(self._latency),
                ttft_ms=Percentiles.of(self._ttft),
                settlement_currency=book.settlement_currency,
                settlement_rate=book.settlement_rate,
            )
        return report

    def __repr__(self) -> str:
        return f"SpendTracker(calls={self._calls}, cost={self._cost})"


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
