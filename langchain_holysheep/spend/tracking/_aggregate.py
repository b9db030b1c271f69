"""`Aggregate`: a tracker's running numbers, one ended call folded in at a time.

Totals over calls, per-model rows over attempts, the recent window for alert
rules and the summed `usage_metadata`, in bounded memory whatever the number
of calls. Not locked: the `SpendTracker` that owns it folds and reads under its
lock.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.records import CallRecord
from langchain_holysheep.spend.tracking._recent import RecentWindow
from langchain_holysheep.spend.tracking._stats import LogHistogram, bucket_of
from langchain_holysheep.spend.tracking._summary import (
    ModelSpend,
    Percentiles,
    SpendReport,
)

if TYPE_CHECKING:
    from langchain_core.messages.ai import UsageMetadata

__all__ = ["Aggregate"]

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
"""The `ModelSpend` counts kept per model (and summed over models)."""
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

    def add(self, rec: CallRecord, bucket: int) -> None:
        """Count one attempt on this model (`bucket`: its latency's, if known)."""
        self.requests += 1
        if rec.is_retry:
            self.retries += 1
        if rec.outcome == "ok":
            self.successes += 1
            if rec.is_fallback:
                self.fallbacks += 1
            if rec.latency_ms is not None:
                self.latency.add(rec.latency_ms, bucket)
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


def _check_addable(left: Mapping[str, Any], right: Mapping[str, Any]) -> None:
    """Raise `ValueError` unless `right` adds to `left` as `add_usage` adds.

    Integers add up key by key, nested dicts likewise; a key missing on one
    side counts as 0 (or an empty dict). Any other value cannot be added.
    """
    for key, value in right.items():
        have = left.get(key, _MISSING)
        kind = type(value)
        if kind is int and (type(have) is int or have is _MISSING):  # usual
            continue
        if kind is dict and (type(have) is dict or have is _MISSING):
            _check_addable({} if have is _MISSING else have, value)
        elif isinstance(value, int) and (have is _MISSING or isinstance(have, int)):
            continue
        elif isinstance(value, Mapping) and (
            have is _MISSING or isinstance(have, Mapping)
        ):
            _check_addable({} if have is _MISSING else have, value)
        else:
            raise ValueError(
                f"Cannot add usage values {have!r} and {value!r} of {key!r}."
            )


def _add_into(total: dict[str, Any], usage: Mapping[str, Any]) -> None:
    """Add `usage` into `total`, in place (`_check_addable` said it adds)."""
    for key, value in usage.items():
        kind = type(value)
        if kind is int or (kind is not dict and not isinstance(value, Mapping)):
            total[key] = total.get(key, 0) + value
            continue
        nested = total.get(key)
        if type(nested) is not dict:  # missing, or a mapping of the caller's
            nested = total[key] = dict(nested or {})
        _add_into(nested, value)


class Aggregate:
    """What a tracker has counted so far (see `SpendTracker`).

    Args:
        span: seconds the recent window covers.
        clock: the epoch-seconds clock of the recent window.
    """

    def __init__(self, span: float, clock: Callable[[], float]) -> None:
        self.models: dict[str, _ModelStats] = {}
        self.calls = self.successes = self.failures = self.rejected = 0
        self.fallback_calls = self.unpriced_calls = self.unpriced_tokens = 0
        self.cost = _ZERO
        self.latency = LogHistogram()
        self.ttft = LogHistogram()
        self.recent = RecentWindow(span, clock)
        self.usage_metadata: dict[str, UsageMetadata] = {}

    def add_call(self, records: Sequence[CallRecord], when: float) -> None:
        """Fold in one call that ended at `when`: its attempts, the last final."""
        final = records[-1]
        ok = final.outcome == "ok"
        latency = final.latency_ms if ok else None
        bucket = bucket_of(latency)  # one bucket for the three histograms
        cost, failed, unpriced, unpriced_tokens = _ZERO, 0, False, 0
        models = self.models
        for rec in records:
            stats = models.get(rec.served_model)
            if stats is None:
                stats = models[rec.served_model] = _ModelStats()
            stats.add(rec, bucket if rec is final else -1)
            if rec.cost is not None:
                cost += rec.cost
            elif rec.outcome == "ok" or rec.usage.total:
                unpriced = True
                unpriced_tokens += rec.usage.total
            if rec.outcome != "ok":
                failed += 1
        self.calls += 1
        if ok:
            self.successes += 1
            self.fallback_calls += final.is_fallback
            if latency is not None:
                self.latency.add(latency, bucket)
            if final.ttft_ms is not None:
                self.ttft.add(final.ttft_ms)
        else:
            self.failures += 1
        if unpriced:
            self.unpriced_calls += 1
            self.unpriced_tokens += unpriced_tokens
        self.cost += cost
        self.recent.add_call(
            when,
            latency,
            bucket,
            ok=ok,
            fallback=final.is_fallback,
            attempts=len(records),
            failed_attempts=failed,
            cost=cost,
        )

    def add_usage_metadata(self, model_name: str, usage: UsageMetadata) -> None:
        """Add an answer's `usage_metadata` to `model_name`'s (`add_usage`)."""
        total: Any = self.usage_metadata.get(model_name)
        if total is None:  # kept as it came, as `add_usage` keeps the first
            self.usage_metadata[model_name] = copy.deepcopy(usage)
            return
        _check_addable(total, usage)  # all of it, or nothing
        _add_into(total, usage)

    def report(self, book: PriceBook) -> SpendReport:
        """Everything, as a `SpendReport` (prices settled as `book` settles)."""
        rows = [stats.spend(name) for name, stats in self.models.items()]
        attempts = sum(r.requests for r in rows)
        failed = sum(r.failures for r in rows)
        calls, cost, fallbacks = self.calls, self.cost, self.fallback_calls
        return SpendReport(
            models=tuple(
                sorted(rows, key=lambda r: (r.cost is None, -(r.cost or 0), r.model))
            ),
            calls=calls,
            successes=self.successes,
            failures=self.failures,
            rejected=self.rejected,
            attempts=attempts,
            failed_attempts=failed,
            retries=sum(r.retries for r in rows),
            fallbacks=fallbacks,
            **{name: sum(getattr(r, name) for r in rows) for name in _TOKENS},
            cost=cost,
            unpriced_calls=self.unpriced_calls,
            unpriced_tokens=self.unpriced_tokens,
            success_rate=self.successes / calls if calls else None,
            error_rate=failed / attempts if attempts else None,
            failover_rate=fallbacks / calls if calls else None,
            cost_per_1k_requests=cost * 1000 / calls if calls else None,
            latency_ms=Percentiles.of(self.latency),
            ttft_ms=Percentiles.of(self.ttft),
            settlement_currency=book.settlement_currency,
            settlement_rate=book.settlement_rate,
        )
