"""`MemoryStore`: state in this process's memory (the default, fastest store)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from langchain_holysheep.state import _requests as rq
from langchain_holysheep.state._breaker_logic import BreakerRecord
from langchain_holysheep.state._budget_types import (
    Refusal,
    Reservation,
    Settlement,
    WindowUsage,
    is_finished,
    mark_finished,
)
from langchain_holysheep.state._rate_logic import BucketRecord
from langchain_holysheep.state._records import RecordStore
from langchain_holysheep.state._requests import settlement, usage

__all__ = ["MemoryStore"]

_R = TypeVar("_R", BreakerRecord, BucketRecord)


@dataclass(slots=True)
class _Lease:
    units: int
    expires_at: float


@dataclass
class _Window:
    """A window's totals and its live leases (a finished lease is dropped)."""

    spent: int = 0
    reserved: int = 0
    expires_at: float | None = None
    leases: dict[str, _Lease] = field(default_factory=dict)
    next_expiry: float = math.inf  # no live lease ends before this

    def hold(self, rid: str, lease: _Lease) -> None:
        self.leases[rid] = lease
        self.next_expiry = min(self.next_expiry, lease.expires_at)

    def sweep(self, now: float) -> None:
        """Drop the leases that ended (their holders never came back)."""
        ends = math.inf
        for rid, lease in list(self.leases.items()):
            if lease.expires_at <= now:
                del self.leases[rid]
                self.reserved -= lease.units
            else:
                ends = min(ends, lease.expires_at)
        self.next_expiry = ends


class MemoryStore(RecordStore):
    """State held in this process: exact, atomic across threads and tasks.

    Shared by every thread and asyncio task of the process, lost when it
    exits. Use `SQLiteStore` or `RedisStore` to share state between
    processes or to keep it across restarts.

    Args:
        clock: seconds (`time.time` by default; injectable in tests).

    Example:
        ```python
        store = MemoryStore()
        res = store.reserve("team", "total", Decimal("0.02"), Decimal("5"), 120)
        if res.admitted:
            store.settle(res, Decimal("0.013"))
        ```
    """

    kind = "memory"

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._breakers: dict[str, BreakerRecord] = {}
        self._buckets: dict[str, BucketRecord] = {}
        self._purged = 0.0

    # -- budgets -----------------------------------------------------------------------
    def _window(
        self, key: tuple[str, str], now: float, *, create: bool = True
    ) -> _Window:
        if now - self._purged >= 60.0:
            self._purged = now
            for k in [
                k
                for k, w in self._windows.items()
                if w.expires_at is not None and w.expires_at <= now
            ]:
                del self._windows[k]
        window = self._windows.get(key)
        if window is None or (
            window.expires_at is not None and window.expires_at <= now
        ):
            window = _Window()
            if create:
                self._windows[key] = window
        if window.next_expiry <= now:
            window.sweep(now)
        return window

    @staticmethod
    def _touch(window: _Window, now: float, ttl: float | None) -> None:
        if ttl is not None:
            window.expires_at = max(window.expires_at or 0.0, now + ttl)

    def _reserve_units(self, request: rq.Reserve) -> Reservation | Refusal:
        with self._lock:
            now = self._clock()
            window = self._window((request.budget_key, request.window_id), now)
            if window.spent + window.reserved + request.units > request.cap_units:
                return request.refusal(window.spent, window.reserved)
            expires_at = now + request.lease_seconds
            window.hold(request.id, _Lease(request.units, expires_at))
            window.reserved += request.units
            self._touch(window, now, request.window_ttl)
        return request.reservation(expires_at)

    def _finish(self, request: rq.Finish) -> Settlement:
        res = request.reservation
        with self._lock:
            now = self._clock()
            key = (res.budget_key, res.window_id)
            if is_finished(res):  # by another thread meanwhile: count nothing
                window = self._window(key, now, create=False)
                return rq.Repeat(res).answer(usage(window.spent, window.reserved))
            window = self._window(key, now)
            lease = window.leases.pop(res.id, None)
            if lease is not None:
                window.reserved -= lease.units
            window.spent += request.units
            self._touch(window, now, res.window_ttl)
            mark_finished(res)
            return settlement(
                window.spent, window.reserved, request.units, lease is None
            )

    def _extend_lease(self, request: rq.Extend) -> Reservation | None:
        res = request.reservation
        with self._lock:
            now = self._clock()
            window = self._window((res.budget_key, res.window_id), now)
            lease = window.leases.get(res.id)
            if lease is None:
                return None
            lease.expires_at = now + request.lease_seconds
            window.hold(res.id, lease)
            self._touch(window, now, res.window_ttl)
        return replace(
            res,
            expires_at=lease.expires_at,
            lease_seconds=float(request.lease_seconds),
        )

    def _charge_units(self, request: rq.Charge) -> WindowUsage:
        with self._lock:
            now = self._clock()
            window = self._window((request.budget_key, request.window_id), now)
            window.spent += request.units
            self._touch(window, now, request.window_ttl)
            return usage(window.spent, window.reserved)

    def _window_usage(self, request: rq.Usage) -> WindowUsage:
        key = (request.budget_key, request.window_id)
        with self._lock:
            window = self._window(key, self._clock(), create=False)
            return usage(window.spent, window.reserved)

    def _forget_window(self, request: rq.Forget) -> None:
        with self._lock:
            self._windows.pop((request.budget_key, request.window_id), None)

    # -- breakers and rate limits ------------------------------------------------------
    @contextmanager
    def _held(
        self, records: dict[str, _R], key: str, kind: type[_R], keep: bool
    ) -> Iterator[tuple[_R, float]]:
        """The record of `key` under the lock (a new one is kept if `keep`)."""
        with self._lock:
            record = records.get(key)
            if record is None:
                record = kind()
                if keep:
                    records[key] = record
            yield record, self._clock()

    def _breaker_record(
        self, key: str, op: rq.BreakerOp[Any]
    ) -> AbstractContextManager[tuple[BreakerRecord, float]]:
        return self._held(self._breakers, key, BreakerRecord, op.creates)

    def _bucket_record(
        self, key: str, op: rq.RateOp[Any]
    ) -> AbstractContextManager[tuple[BucketRecord, float]]:
        return self._held(self._buckets, key, BucketRecord, True)
