"""`MemoryStore`: state in this process's memory (the default, fastest store)."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from langchain_holysheep.state._breaker_logic import BreakerRecord
from langchain_holysheep.state._breaker_types import (
    BreakerRules,
    BreakerStateName,
    BreakerView,
)
from langchain_holysheep.state._budget_types import (
    Refusal,
    Reservation,
    Settlement,
    WindowUsage,
)
from langchain_holysheep.state._checks import check_key, check_seconds, new_id
from langchain_holysheep.state._money import from_units, to_units
from langchain_holysheep.state._rate_logic import BucketRecord
from langchain_holysheep.state._rate_types import RateGrant, RateSpec, RateView
from langchain_holysheep.state._store import StateStore

__all__ = ["MemoryStore"]


@dataclass
class _Lease:
    units: int
    expires_at: float
    settled: bool = False


@dataclass
class _Window:
    spent: int = 0
    reserved: int = 0
    expires_at: float | None = None
    leases: dict[str, _Lease] = field(default_factory=dict)
    expiry: list[tuple[float, str]] = field(default_factory=list)  # heap

    def sweep(self, now: float) -> None:
        while self.expiry and self.expiry[0][0] <= now:
            expires_at, rid = heapq.heappop(self.expiry)
            lease = self.leases.get(rid)
            if lease is None or lease.expires_at != expires_at:
                continue  # settled-and-swept, or extended (a newer heap entry)
            del self.leases[rid]
            if not lease.settled:
                self.reserved -= lease.units


class MemoryStore(StateStore):
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
        window.sweep(now)
        return window

    @staticmethod
    def _touch(window: _Window, now: float, ttl: float | None) -> None:
        if ttl is not None:
            window.expires_at = max(window.expires_at or 0.0, now + ttl)

    def reserve(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        cap: Decimal,
        lease_seconds: float,
        *,
        window_ttl: float | None = None,
    ) -> Reservation | Refusal:
        """See `StateStore.reserve`."""
        check_key(budget_key, window_id)
        units = to_units(amount)
        cap_units = to_units(cap, up=False, what="cap")
        check_seconds(lease_seconds, "lease_seconds")
        check_seconds(window_ttl, "window_ttl", optional=True)
        ttl = None if window_ttl is None else max(window_ttl, lease_seconds)
        with self._lock:
            now = self._clock()
            window = self._window((budget_key, window_id), now)
            if window.spent + window.reserved + units > cap_units:
                return Refusal(
                    budget_key,
                    window_id,
                    from_units(units),
                    from_units(cap_units),
                    from_units(window.spent),
                    from_units(window.reserved),
                )
            rid = new_id()
            expires_at = now + lease_seconds
            window.leases[rid] = _Lease(units, expires_at)
            heapq.heappush(window.expiry, (expires_at, rid))
            window.reserved += units
            self._touch(window, now, ttl)
        return Reservation(
            budget_key,
            window_id,
            rid,
            from_units(units),
            float(lease_seconds),
            expires_at,
            ttl,
        )

    def _finish(self, res: Reservation, actual: Decimal | None) -> Settlement:
        units = 0 if actual is None else to_units(actual, what="actual")
        with self._lock:
            now = self._clock()
            window = self._window((res.budget_key, res.window_id), now)
            lease = window.leases.get(res.id)
            counted, late = units, False
            if lease is None:
                late = True
            elif lease.settled:
                counted = 0
            else:
                lease.settled = True
                window.reserved -= lease.units
            window.spent += counted
            self._touch(window, now, res.window_ttl)
            return Settlement(
                from_units(window.spent),
                from_units(window.reserved),
                from_units(counted),
                late and counted > 0,
            )

    def settle(self, reservation: Reservation, actual: Decimal | None) -> Settlement:
        """See `StateStore.settle`."""
        return self._finish(reservation, actual)

    def release(self, reservation: Reservation) -> None:
        """See `StateStore.release`."""
        self._finish(reservation, None)

    def extend(
        self, reservation: Reservation, lease_seconds: float
    ) -> Reservation | None:
        """See `StateStore.extend`."""
        check_seconds(lease_seconds, "lease_seconds")
        with self._lock:
            now = self._clock()
            window = self._window((reservation.budget_key, reservation.window_id), now)
            lease = window.leases.get(reservation.id)
            if lease is None or lease.settled:
                return None
            lease.expires_at = now + lease_seconds
            heapq.heappush(window.expiry, (lease.expires_at, reservation.id))
            self._touch(window, now, reservation.window_ttl)
        return replace(
            reservation, expires_at=lease.expires_at, lease_seconds=float(lease_seconds)
        )

    def charge(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        *,
        window_ttl: float | None = None,
    ) -> WindowUsage:
        """See `StateStore.charge`."""
        check_key(budget_key, window_id)
        units = to_units(amount)
        check_seconds(window_ttl, "window_ttl", optional=True)
        with self._lock:
            now = self._clock()
            window = self._window((budget_key, window_id), now)
            window.spent += units
            self._touch(window, now, window_ttl)
            return WindowUsage(from_units(window.spent), from_units(window.reserved))

    def usage(self, budget_key: str, window_id: str) -> WindowUsage:
        """See `StateStore.usage`."""
        with self._lock:
            window = self._window((budget_key, window_id), self._clock(), create=False)
            return WindowUsage(from_units(window.spent), from_units(window.reserved))

    def forget(self, budget_key: str, window_id: str) -> None:
        """See `StateStore.forget`."""
        with self._lock:
            self._windows.pop((budget_key, window_id), None)

    # -- breakers ----------------------------------------------------------------------
    def _record(self, key: str) -> BreakerRecord:
        record = self._breakers.get(key)
        if record is None:
            record = self._breakers[key] = BreakerRecord()
        return record

    def breaker(self, key: str, rules: BreakerRules) -> BreakerView:
        """See `StateStore.breaker`."""
        with self._lock:
            record = self._breakers.get(key) or BreakerRecord()
            return record.view(key, rules, self._clock())

    def record_success(self, key: str, rules: BreakerRules) -> BreakerView:
        """See `StateStore.record_success`."""
        with self._lock:
            now = self._clock()
            record = self._record(key)
            previous = record.record(rules, now, ok=True)
            return record.view(key, rules, now, previous)

    def record_failure(
        self, key: str, rules: BreakerRules, reason: str = "failure"
    ) -> BreakerView:
        """See `StateStore.record_failure`."""
        with self._lock:
            now = self._clock()
            record = self._record(key)
            previous = record.record(rules, now, ok=False, reason=reason)
            return record.view(key, rules, now, previous)

    def count_successes(self, key: str, rules: BreakerRules, count: int) -> BreakerView:
        """See `StateStore.count_successes`."""
        with self._lock:
            now = self._clock()
            record = self._record(key)
            record.count_successes(rules, now, count)
            return record.view(key, rules, now)

    def try_claim_probe(self, key: str, ttl: float) -> bool:
        """See `StateStore.try_claim_probe`."""
        check_seconds(ttl, "ttl")
        with self._lock:
            record = self._breakers.get(key)
            return record is not None and record.claim_probe(self._clock(), ttl)[0]

    def release_probe(self, key: str) -> None:
        """See `StateStore.release_probe`."""
        with self._lock:
            record = self._breakers.get(key)
            if record is not None:
                record.release_probe()

    def force_open(
        self, key: str, rules: BreakerRules, reason: str = "forced open"
    ) -> BreakerView:
        """See `StateStore.force_open`."""
        with self._lock:
            now = self._clock()
            record = self._record(key)
            previous = record.force_open(rules, now, reason)
            return record.view(key, rules, now, previous)

    def reset_breaker(self, key: str) -> BreakerStateName | None:
        """See `StateStore.reset_breaker`."""
        with self._lock:
            record = self._breakers.get(key)
            return None if record is None else record.reset()

    # -- rate limits -------------------------------------------------------------------
    def _bucket(self, key: str) -> BucketRecord:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = BucketRecord()
        return bucket

    def acquire_rate(
        self,
        key: str,
        spec: RateSpec,
        *,
        tokens: float = 0.0,
        max_wait: float = 0.0,
    ) -> RateGrant:
        """See `StateStore.acquire_rate`."""
        with self._lock:
            return self._bucket(key).acquire(spec, self._clock(), tokens, max_wait)

    def refund_rate(
        self, key: str, spec: RateSpec, *, requests: float = 1.0, tokens: float = 0.0
    ) -> None:
        """See `StateStore.refund_rate`."""
        with self._lock:
            self._bucket(key).refund(spec, self._clock(), requests, tokens)

    def penalize_rate(self, key: str, seconds: float) -> None:
        """See `StateStore.penalize_rate`."""
        if seconds > 0:
            with self._lock:
                self._bucket(key).penalize(self._clock(), seconds)

    def rate_state(self, key: str, spec: RateSpec) -> RateView:
        """See `StateStore.rate_state`."""
        with self._lock:
            return self._bucket(key).view(spec, self._clock())
