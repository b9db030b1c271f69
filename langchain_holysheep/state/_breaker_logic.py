"""The breaker state machine on a plain record (memory and SQLite stores).

The Redis store runs the same machine in Lua (`_redis_scripts.py`); the shared
behavioural tests hold the two to the same semantics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from langchain_holysheep.state._breaker_types import (
    BreakerRules,
    BreakerStateName,
    BreakerView,
)

__all__ = ["BreakerRecord"]


@dataclass
class BreakerRecord:
    """The shared state of one breaker (times on the store's clock)."""

    state: BreakerStateName = "closed"
    buckets: dict[int, list[int]] = field(default_factory=dict)  # id: [ok, fail]
    opened_at: float | None = None
    retry_at: float = 0.0
    probe_until: float = 0.0
    trips: int = 0
    last_failure: str = ""

    # -- persistence ------------------------------------------------------------------
    def dumps(self) -> str:
        """The record as compact JSON."""
        return json.dumps(
            [
                self.state,
                [[k, *v] for k, v in self.buckets.items()],
                self.opened_at,
                self.retry_at,
                self.probe_until,
                self.trips,
                self.last_failure,
            ],
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str | None) -> BreakerRecord:
        """A record from `dumps()` output (a fresh one for `None`)."""
        if text is None:
            return cls()
        state, buckets, opened_at, retry_at, probe_until, trips, last = json.loads(text)
        return cls(
            state,
            {b[0]: [b[1], b[2]] for b in buckets},
            opened_at,
            retry_at,
            probe_until,
            trips,
            last,
        )

    # -- the machine -------------------------------------------------------------------
    def record(
        self, rules: BreakerRules, now: float, *, ok: bool, reason: str = ""
    ) -> BreakerStateName | None:
        """Count one outcome; returns the previous state if it changed."""
        before = self.state
        if ok:
            if self.state == "closed":
                self._count(rules, now, 0)
            elif self.state == "half_open":
                self.buckets.clear()
                self.probe_until = 0.0
                self.state = "closed"
        else:
            self.last_failure = reason
            if self.state == "closed":
                self._count(rules, now, 1)
                if self._should_trip(rules, now):
                    self._open(rules, now)
            elif self.state == "half_open":
                self._open(rules, now)
        return before if self.state != before else None

    def count_successes(self, rules: BreakerRules, now: float, count: int) -> None:
        """Count `count` successes seen while closed (only if it still is)."""
        if self.state == "closed" and count > 0:
            self._count(rules, now, 0, count)

    def claim_probe(
        self, now: float, ttl: float
    ) -> tuple[bool, BreakerStateName | None]:
        """Claim the one half-open probe; returns (won, previous state if changed)."""
        if self.state == "open" and now >= self.retry_at:
            self.state = "half_open"
            self.probe_until = now + ttl
            return True, "open"
        if self.state == "half_open" and now >= self.probe_until:
            self.probe_until = now + ttl
            return True, None
        return False, None

    def release_probe(self) -> None:
        """Give back a claimed probe that ended without a verdict."""
        if self.state == "half_open":
            self.probe_until = 0.0

    def force_open(
        self, rules: BreakerRules, now: float, reason: str
    ) -> BreakerStateName | None:
        """Open now (or restart the cooldown of an open breaker)."""
        self.last_failure = reason
        if self.state == "open":
            self.retry_at = now + rules.cooldown
            return None
        before = self.state
        self._open(rules, now)
        return before

    def reset(self) -> BreakerStateName | None:
        """Close and forget the window."""
        before = self.state
        self.buckets.clear()
        self.state = "closed"
        self.opened_at = None
        self.retry_at = 0.0
        self.probe_until = 0.0
        return before if before != "closed" else None

    def view(
        self,
        key: str,
        rules: BreakerRules,
        now: float,
        previous: BreakerStateName | None = None,
    ) -> BreakerView:
        """A `BreakerView` of the record at `now`."""
        ok, fail = self._totals(rules, now)
        return BreakerView(
            key=key,
            state=self.state,
            failures=fail,
            successes=ok,
            opened_at=self.opened_at,
            retry_in=max(self.retry_at - now, 0.0) if self.state == "open" else 0.0,
            probe_in_flight=self.state == "half_open" and now < self.probe_until,
            trips=self.trips,
            last_failure=self.last_failure,
            previous=previous,
        )

    # -- internals ---------------------------------------------------------------------
    def _open(self, rules: BreakerRules, now: float) -> None:
        self.state = "open"
        self.trips += 1
        self.opened_at = now
        self.retry_at = now + rules.cooldown
        self.probe_until = 0.0

    def _count(self, rules: BreakerRules, now: float, index: int, by: int = 1) -> None:
        bucket = _bucket(rules, now)
        oldest = bucket - rules.buckets
        for stale in [b for b in self.buckets if b <= oldest]:
            del self.buckets[stale]
        self.buckets.setdefault(bucket, [0, 0])[index] += by

    def _totals(self, rules: BreakerRules, now: float) -> tuple[int, int]:
        oldest = _bucket(rules, now) - rules.buckets
        ok = fail = 0
        for bucket, (o, f) in self.buckets.items():
            if bucket > oldest:
                ok += o
                fail += f
        return ok, fail

    def _should_trip(self, rules: BreakerRules, now: float) -> bool:
        ok, fail = self._totals(rules, now)
        total = ok + fail
        if total < rules.minimum_requests:
            return False
        by_count = rules.failure_threshold is None or fail >= rules.failure_threshold
        by_rate = rules.failure_rate is None or fail / total >= rules.failure_rate
        return by_count and by_rate


def _bucket(rules: BreakerRules, now: float) -> int:
    """The window bucket of `now`.

    Computed in integer microseconds, with the very operations of the Redis
    store's script (`floor(now_us / (window_us / buckets))`), so that every
    store puts a time on the same side of a bucket boundary.
    """
    width = round(rules.window * 1_000_000) / rules.buckets
    return math.floor(round(now * 1_000_000) / width)
