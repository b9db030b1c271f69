"""Shared token buckets on a plain record (memory and SQLite stores).

The Redis store runs the same arithmetic in Lua (`_redis_scripts.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from langchain_holysheep.state._rate_types import RateGrant, RateSpec, RateView

__all__ = ["BucketRecord"]


@dataclass
class BucketRecord:
    """Levels of one key's request and token buckets (store clock)."""

    requests: float | None = None  # None: full (never used)
    tokens: float | None = None
    updated: float = 0.0
    blocked_until: float = 0.0

    def dumps(self) -> str:
        """The record as compact JSON."""
        return json.dumps(
            [self.requests, self.tokens, self.updated, self.blocked_until],
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str | None) -> BucketRecord:
        """A record from `dumps()` output (a fresh one for `None`)."""
        return cls() if text is None else cls(*json.loads(text))

    def refill(self, spec: RateSpec, now: float) -> None:
        """Add what flowed in since the last update (capped at the bucket sizes)."""
        dt = max(now - self.updated, 0.0)
        self.updated = max(now, self.updated)
        self.requests = _refill(
            self.requests, spec.request_capacity, spec.requests, spec.per, dt
        )
        self.tokens = _refill(
            self.tokens, spec.token_capacity, spec.tokens, spec.per, dt
        )

    def acquire(
        self, spec: RateSpec, now: float, tokens: float, max_wait: float
    ) -> RateGrant:
        """Take one request of `tokens` if its wait is at most `max_wait`."""
        self.refill(spec, now)
        wait = max(self.blocked_until - now, 0.0)
        if self.requests is not None and spec.requests is not None:
            wait = max(wait, _wait_for(self.requests, 1.0, spec.requests / spec.per))
        if self.tokens is not None and spec.tokens is not None and tokens:
            wait = max(wait, _wait_for(self.tokens, tokens, spec.tokens / spec.per))
        if wait > max_wait:
            return RateGrant(False, wait)
        if self.requests is not None:
            self.requests -= 1.0
        if self.tokens is not None:
            self.tokens -= tokens
        return RateGrant(True, wait)

    def refund(
        self, spec: RateSpec, now: float, requests: float, tokens: float
    ) -> None:
        """Give back capacity (negative amounts take more)."""
        self.refill(spec, now)
        if self.requests is not None and spec.request_capacity is not None:
            self.requests = min(spec.request_capacity, self.requests + requests)
        if self.tokens is not None and spec.token_capacity is not None:
            self.tokens = min(spec.token_capacity, self.tokens + tokens)

    def penalize(self, now: float, seconds: float) -> None:
        """No request starts before `now + seconds`."""
        self.blocked_until = max(self.blocked_until, now + seconds)

    def view(self, spec: RateSpec, now: float) -> RateView:
        """Capacity left at `now` (after refilling)."""
        self.refill(spec, now)
        return RateView(
            requests_available=self.requests,
            tokens_available=self.tokens,
            blocked_for=max(self.blocked_until - now, 0.0),
        )


def _refill(
    level: float | None,
    capacity: float | None,
    amount: float | None,
    per: float,
    dt: float,
) -> float | None:
    if capacity is None or amount is None:
        return None
    if level is None:
        return capacity
    return min(capacity, level + dt * amount / per)


def _wait_for(level: float, need: float, rate: float) -> float:
    deficit = need - level
    return deficit / rate if deficit > 0 else 0.0
