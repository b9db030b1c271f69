"""`SharedRateLimiter`: requests and tokens per minute shared through a `StateStore`.

Every process using the store takes its slots from the same token buckets, in
one atomic store operation per request (`acquire_rate`): N workers together
stay within one limit, instead of N times it. A wait is computed by the store
and slept locally, exactly as with the in-process `RateLimiter`; a server's
`Retry-After` (`penalize`) holds back every process.

`aacquire` takes its slot with the store's sync call (one short round trip),
as the in-process limiter does under its lock: a slot is either taken and
refunded on cancellation, or never taken; no cancellation can fall between
the two.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable

from langchain_holysheep.resilience._deadline import Clock
from langchain_holysheep.resilience._exceptions import RateLimitTimeoutError
from langchain_holysheep.resilience._ratelimit import (
    RateLimit,
    RateLimiter,
    RateLimitSnapshot,
)
from langchain_holysheep.resilience._shared_breaker import store_key
from langchain_holysheep.state import RateSpec, RateView, StateStore

__all__ = ["SharedRateLimiter", "rate_spec"]

_LONGEST_WAIT = 1e9  # "any wait" for a store (its arguments are finite)


def rate_spec(limit: RateLimit) -> RateSpec:
    """The store's `RateSpec` for a `RateLimit` (per minute)."""
    return RateSpec(
        requests=limit.requests_per_minute,
        tokens=limit.tokens_per_minute,
        per=60.0,
        burst_requests=limit.burst_requests,
        burst_tokens=limit.burst_tokens,
    )


def _wait(view: RateView, spec: RateSpec, tokens: float) -> float:
    wait = view.blocked_for
    if view.requests_available is not None and spec.requests is not None:
        deficit = 1.0 - view.requests_available
        wait = max(wait, deficit * spec.per / spec.requests)
    if view.tokens_available is not None and spec.tokens is not None and tokens:
        deficit = tokens - view.tokens_available
        wait = max(wait, deficit * spec.per / spec.tokens)
    return max(wait, 0.0)


class SharedRateLimiter(RateLimiter):
    """A `RateLimiter` whose buckets live in a `StateStore` (shared by processes).

    Args:
        key: what is limited (`(base_url, model)`); the store key is
            `"base_url|model"`.
        limit: the limits (every process should configure the same).
        store: where the buckets live.
        clock: monotonic clock (deadlines; injectable in tests).
        sleep: blocking sleep (injectable in tests).
        asleep: async sleep (injectable in tests).
    """

    def __init__(
        self,
        key: Hashable = None,
        limit: RateLimit | None = None,
        *,
        store: StateStore,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
        asleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(key, limit, clock=clock, sleep=sleep, asleep=asleep)
        self.store = store
        self.store_key = store_key(key)
        self.spec = rate_spec(self.limit)

    def wait_time(self, tokens: float = 0) -> float:
        """Seconds a request of `tokens` would wait now (nothing is reserved)."""
        view = self.store.rate_state(self.store_key, self.spec)
        return _wait(view, self.spec, tokens)

    def reserve(self, tokens: float = 0, *, max_wait: float = math.inf) -> float:
        """Reserve one request of `tokens` in the shared buckets; the wait.

        Raises:
            RateLimitTimeoutError: the wait would exceed `max_wait` (nothing is
                reserved then).
        """
        grant = self.store.acquire_rate(
            self.store_key,
            self.spec,
            tokens=float(tokens),
            max_wait=min(max_wait, _LONGEST_WAIT),
        )
        if not grant.granted:
            raise RateLimitTimeoutError(self.key, grant.wait, max_wait)
        return grant.wait

    def refund(self, tokens: float = 0, *, request: bool = True) -> None:
        """Give back a reservation that was not used (cancelled, or skipped)."""
        self.store.refund_rate(
            self.store_key,
            self.spec,
            requests=1.0 if request else 0.0,
            tokens=float(tokens),
        )

    def adjust_tokens(self, delta: float) -> None:
        """Correct the token reservation (`delta` = actual - reserved)."""
        if self.spec.tokens is None or not delta:
            return
        self.store.refund_rate(
            self.store_key, self.spec, requests=0.0, tokens=-float(delta)
        )

    def penalize(self, retry_after_s: float) -> None:
        """No new request on this key, in any process, for `retry_after_s`."""
        if retry_after_s > 0:
            self.store.penalize_rate(self.store_key, retry_after_s)

    def _blocked_for(self) -> float:
        """Seconds left of a `Retry-After` penalty, in the shared buckets."""
        return float(self.store.rate_state(self.store_key, self.spec).blocked_for)

    def snapshot(self) -> RateLimitSnapshot:
        """Capacity left now, in the shared buckets."""
        view = self.store.rate_state(self.store_key, self.spec)
        return RateLimitSnapshot(
            key=self.key,
            requests_available=view.requests_available,
            tokens_available=view.tokens_available,
            blocked_for_s=view.blocked_for,
        )

    def __repr__(self) -> str:
        return f"SharedRateLimiter({self.key!r}, {self.limit!r}, {self.store.url!r})"
