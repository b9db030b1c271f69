"""`RecordStore`: a store that keeps breakers and buckets as plain records.

The memory and SQLite stores run the breaker state machine and the token
buckets in Python (`_breaker_logic.py`, `_rate_logic.py`) on a record they
load and save atomically; only where the records live differs.
"""

from __future__ import annotations

from abc import abstractmethod
from contextlib import AbstractContextManager
from typing import Any, TypeVar, cast

from langchain_holysheep.state import _requests as rq
from langchain_holysheep.state._breaker_logic import BreakerRecord
from langchain_holysheep.state._budget_types import (
    Refusal,
    Reservation,
    Settlement,
    WindowUsage,
)
from langchain_holysheep.state._rate_logic import BucketRecord
from langchain_holysheep.state._store import StateStore

__all__ = ["RecordStore", "breaker_step", "rate_step"]

_T = TypeVar("_T")


def breaker_step(op: rq.BreakerOp[Any], record: BreakerRecord, now: float) -> Any:
    """Apply one breaker step to `record` and answer it."""
    key, rules = op.key, op.rules
    if op.op == "claim":
        return record.claim_probe(now, op.ttl)[0]
    if op.op == "release":
        record.release_probe()
        return None
    if op.op == "reset":
        return record.reset()
    assert rules is not None  # every other step is given the rules
    previous = None
    if op.op in ("ok", "fail"):
        previous = record.record(rules, now, ok=op.op == "ok", reason=op.reason)
    elif op.op == "oks":
        record.count_successes(rules, now, op.count)
    elif op.op == "force":
        previous = record.force_open(rules, now, op.reason)
    return record.view(key, rules, now, previous)


def rate_step(op: rq.RateOp[Any], bucket: BucketRecord, now: float) -> Any:
    """Apply one rate-limit operation to `bucket` and answer it."""
    if op.op == "penalize":
        bucket.penalize(now, op.penalty)
        return None
    assert op.spec is not None  # every other operation is given the spec
    if op.op == "acquire":
        return bucket.acquire(op.spec, now, op.tokens, op.max_wait)
    if op.op == "refund":
        bucket.refund(op.spec, now, op.requests, op.tokens)
        return None
    return bucket.view(op.spec, now)


class RecordStore(StateStore):
    """A store that applies requests to records it loads and saves atomically.

    Subclasses implement the budget operations and two context managers that
    hold a breaker's or a bucket's record (with the store's time) for the
    length of one atomic operation.
    """

    def _apply(self, request: rq.Request[_T]) -> _T:
        result: Any
        kind = type(request)  # the budget operations first: one per call each
        if kind is rq.Reserve:
            result = self._reserve_units(request)  # type: ignore[arg-type]
        elif kind is rq.Finish:
            result = self._finish(request)  # type: ignore[arg-type]
        elif isinstance(request, rq.BreakerOp):
            with self._breaker_record(request.key, request) as (record, now):
                result = breaker_step(request, record, now)
        elif isinstance(request, rq.RateOp):
            with self._bucket_record(request.key, request) as (bucket, now):
                result = rate_step(request, bucket, now)
        elif isinstance(request, rq.Reserve):
            result = self._reserve_units(request)
        elif isinstance(request, rq.Finish):
            result = self._finish(request)
        elif isinstance(request, rq.Repeat):
            result = request.answer(self._window_usage(request.usage))
        elif isinstance(request, rq.Extend):
            result = self._extend_lease(request)
        elif isinstance(request, rq.Charge):
            result = self._charge_units(request)
        elif isinstance(request, rq.Usage):
            result = self._window_usage(request)
        elif isinstance(request, rq.Forget):
            result = self._forget_window(request)
        else:  # pragma: no cover - every request type is handled above
            raise TypeError(f"unknown request {request!r}")
        return cast(_T, result)

    @abstractmethod
    def _breaker_record(
        self, key: str, op: rq.BreakerOp[Any]
    ) -> AbstractContextManager[tuple[BreakerRecord, float]]:
        """Hold breaker `key`'s record (saved afterwards if `op` writes)."""

    @abstractmethod
    def _bucket_record(
        self, key: str, op: rq.RateOp[Any]
    ) -> AbstractContextManager[tuple[BucketRecord, float]]:
        """Hold rate limit `key`'s record (saved afterwards if `op` writes)."""

    @abstractmethod
    def _reserve_units(self, request: rq.Reserve) -> Reservation | Refusal:
        """Reserve atomically."""

    @abstractmethod
    def _finish(self, request: rq.Finish) -> Settlement:
        """Settle or release atomically."""

    @abstractmethod
    def _extend_lease(self, request: rq.Extend) -> Reservation | None:
        """Renew a lease atomically."""

    @abstractmethod
    def _charge_units(self, request: rq.Charge) -> WindowUsage:
        """Count unreserved spend atomically."""

    @abstractmethod
    def _window_usage(self, request: rq.Usage) -> WindowUsage:
        """Read a window."""

    @abstractmethod
    def _forget_window(self, request: rq.Forget) -> None:
        """Drop a window."""
