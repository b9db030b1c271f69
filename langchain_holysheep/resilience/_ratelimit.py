"""Client-side rate limits: queue requests instead of provoking 429s.

A `RateLimiter` holds two token buckets (requests per minute, tokens per
minute). `acquire(tokens, deadline)` *reserves* capacity at once (the buckets may
go into debt, which queues later callers behind earlier ones in arrival order)
and then sleeps exactly the computed delay: no polling, no busy loop. A wait
that would overrun the deadline raises `RateLimitTimeoutError` without
reserving anything, so the router can fall over to another route at once.
`penalize(retry_after_s)` adapts to a server's `Retry-After`: no request on
that key starts before it has passed.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from langchain_holysheep.resilience._deadline import Clock, Deadline
from langchain_holysheep.resilience._exceptions import RateLimitTimeoutError
from langchain_holysheep.resilience._state import (
    ProcessDefault,
    StateArg,
    per_store,
    resolve_state,
)
from langchain_holysheep.state import StateStore

__all__ = [
    "RateLimit",
    "RateLimitSnapshot",
    "RateLimiter",
    "RateLimiterRegistry",
    "default_rate_limiters",
    "rate_limiters_for",
]


@dataclass(frozen=True)
class RateLimit:
    """Requests and tokens per minute (either may be `None`: unlimited).

    Args:
        requests_per_minute: sustained request rate.
        tokens_per_minute: sustained token rate (prompt + expected completion).
        burst_requests: bucket size for requests (default: one minute's worth).
        burst_tokens: bucket size for tokens (default: one minute's worth).
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    burst_requests: float | None = None
    burst_tokens: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "requests_per_minute",
            "tokens_per_minute",
            "burst_requests",
            "burst_tokens",
        ):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")


@dataclass(frozen=True)
class RateLimitSnapshot:
    """Available capacity of a limiter (negative: reserved ahead, i.e. queued)."""

    key: Hashable
    requests_available: float | None
    tokens_available: float | None
    blocked_for_s: float


class _Bucket:
    __slots__ = ("capacity", "level", "rate")

    def __init__(self, per_minute: float, capacity: float | None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = capacity if capacity is not None else per_minute
        self.level = self.capacity

    def refill(self, dt: float) -> None:
        if dt > 0:
            self.level = min(self.capacity, self.level + dt * self.rate)

    def wait_for(self, amount: float) -> float:
        deficit = amount - self.level
        return deficit / self.rate if deficit > 0 else 0.0


class RateLimiter:
    """Token buckets for one key (sync and async, thread- and task-safe).

    Args:
        key: what is limited (e.g. `(base_url, model)`), used in messages.
        limit: the limits.
        clock: monotonic clock (injectable in tests).
        sleep: blocking sleep (injectable in tests).
        asleep: async sleep (injectable in tests).

    Example:
        ```python
        limiter = RateLimiter("gpt-4.1", RateLimit(requests_per_minute=60))
        limiter.acquire(tokens=1200, deadline=Deadline(10))
        await limiter.aacquire(tokens=1200, deadline=Deadline(10))
        limiter.penalize(2.0)  # the server said Retry-After: 2
        ```
    """

    def __init__(
        self,
        key: Hashable = None,
        limit: RateLimit | None = None,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
        asleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.key = key
        self.limit = limit or RateLimit()
        self._clock: Clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._asleep = asleep or asyncio.sleep
        self._lock = threading.Lock()
        lim = self.limit
        self._req = (
            _Bucket(lim.requests_per_minute, lim.burst_requests)
            if lim.requests_per_minute
            else None
        )
        self._tok = (
            _Bucket(lim.tokens_per_minute, lim.burst_tokens)
            if lim.tokens_per_minute
            else None
        )
        self._updated = self._clock()
        self._blocked_until = -math.inf

    # -- reservations ---------------------------------------------------------------
    def wait_time(self, tokens: float = 0) -> float:
        """Seconds a request of `tokens` would wait now (nothing is reserved)."""
        with self._lock:
            return self._wait(self._refill(), tokens)

    def reserve(self, tokens: float = 0, *, max_wait: float = math.inf) -> float:
        """Reserve one request of `tokens`; returns the seconds to wait.

        Raises:
            RateLimitTimeoutError: the wait would exceed `max_wait` (nothing is
                reserved then).
        """
        with self._lock:
            now = self._refill()
            wait = self._wait(now, tokens)
            if wait > max_wait:
                raise RateLimitTimeoutError(self.key, wait, max_wait)
            if self._req is not None:
                self._req.level -= 1
            if self._tok is not None:
                self._tok.level -= tokens
            return wait

    def refund(self, tokens: float = 0, *, request: bool = True) -> None:
        """Give back a reservation that was not used (cancelled, or skipped)."""
        with self._lock:
            self._refill()
            if request and self._req is not None:
                self._req.level = min(self._req.capacity, self._req.level + 1)
            if self._tok is not None and tokens:
                self._tok.level = min(self._tok.capacity, self._tok.level + tokens)

    def adjust_tokens(self, delta: float) -> None:
        """Correct the token reservation once the real usage is known.

        `delta` = actual - reserved (negative gives tokens back).
        """
        if self._tok is None or not delta:
            return
        with self._lock:
            self._refill()
            self._tok.level = min(self._tok.capacity, self._tok.level - delta)

    def penalize(self, retry_after_s: float) -> None:
        """No new request on this key for `retry_after_s` seconds."""
        if not retry_after_s > 0:
            return
        with self._lock:
            until = self._clock() + retry_after_s
            if until > self._blocked_until:
                self._blocked_until = until

    # -- waiting --------------------------------------------------------------------
    def acquire(
        self, tokens: float = 0, deadline: Deadline | float | None = None
    ) -> float:
        """Wait for a slot (blocking); returns the seconds waited.

        Raises:
            RateLimitTimeoutError: the slot would come after the deadline.
        """
        dl = _as_deadline(deadline, self._clock)
        wait = self.reserve(tokens, max_wait=dl.remaining())
        waited = 0.0
        try:
            while wait > 0:
                self._sleep(wait)
                waited += wait
                wait = self._penalty_left(tokens, dl)
        except BaseException:
            self.refund(tokens)
            raise
        return waited

    async def aacquire(
        self, tokens: float = 0, deadline: Deadline | float | None = None
    ) -> float:
        """Async `acquire`: awaits the computed delay (refunded if cancelled)."""
        dl = _as_deadline(deadline, self._clock)
        wait = self.reserve(tokens, max_wait=dl.remaining())
        waited = 0.0
        try:
            while wait > 0:
                await self._asleep(wait)
                waited += wait
                wait = self._penalty_left(tokens, dl)
        except BaseException:  # cancelled, or a penalty beyond the deadline
            self.refund(tokens)
            raise
        return waited

    def _blocked_for(self) -> float:
        """Seconds left of a `Retry-After` penalty (<= 0: none)."""
        return self._blocked_until - self._clock()

    def _penalty_left(self, tokens: float, dl: Deadline) -> float:
        """After a wait: the rest of a penalty imposed meanwhile (or 0)."""
        left = self._blocked_for()
        if left <= 0:
            return 0.0
        if left > dl.remaining():
            raise RateLimitTimeoutError(self.key, left, dl.remaining())
        return left

    def snapshot(self) -> RateLimitSnapshot:
        """Capacity left now."""
        with self._lock:
            now = self._refill()
            return RateLimitSnapshot(
                key=self.key,
                requests_available=None if self._req is None else self._req.level,
                tokens_available=None if self._tok is None else self._tok.level,
                blocked_for_s=max(self._blocked_until - now, 0.0),
            )

    # -- internals (lock held) ------------------------------------------------------
    def _refill(self) -> float:
        now = self._clock()
        dt = now - self._updated
        self._updated = now
        if self._req is not None:
            self._req.refill(dt)
        if self._tok is not None:
            self._tok.refill(dt)
        return now

    def _wait(self, now: float, tokens: float) -> float:
        wait = max(self._blocked_until - now, 0.0)
        if self._req is not None:
            wait = max(wait, self._req.wait_for(1))
        if self._tok is not None and tokens:
            wait = max(wait, self._tok.wait_for(tokens))
        return wait

    def __repr__(self) -> str:
        return f"RateLimiter({self.key!r}, {self.limit!r})"


def _as_deadline(deadline: Deadline | float | None, clock: Clock) -> Deadline:
    if isinstance(deadline, Deadline):
        return deadline
    return Deadline(deadline, clock=clock)


class RateLimiterRegistry:
    """Rate limiters by key; a key without a configured limit is not limited.

    Args:
        clock: monotonic clock (injectable in tests).
        sleep: blocking sleep (injectable in tests).
        asleep: async sleep (injectable in tests).
        state: where the buckets live: a `StateStore` or a URL
            (`sqlite:///state.db`, `redis://host:6379/0`: every process
            using it shares each limit); `None` reads `HOLYSHEEP_STATE_URL`;
            `memory://` (the default) keeps them in this process.

    Example:
        ```python
        limits = RateLimiterRegistry()
        limits.configure(("https://api.holysheep.ai/v1", "gpt-4.1"),
                         RateLimit(requests_per_minute=500, tokens_per_minute=2e5))
        shared = RateLimiterRegistry(state="redis://127.0.0.1:6379/0")
        ```
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
        asleep: Callable[[float], Awaitable[None]] | None = None,
        state: StateArg = None,
    ) -> None:
        self.store: StateStore | None = resolve_state(state)
        self._time: dict[str, Any] = {"clock": clock, "sleep": sleep, "asleep": asleep}
        self._lock = threading.Lock()
        self._limiters: dict[Hashable, RateLimiter] = {}

    def _new(self, key: Hashable, limit: RateLimit | None) -> RateLimiter:
        """A limiter of `key` with this registry's time functions (and store)."""
        if self.store is None:
            return RateLimiter(key, limit, **self._time)
        from langchain_holysheep.resilience._shared_ratelimit import (
            SharedRateLimiter,
        )

        return SharedRateLimiter(key, limit, store=self.store, **self._time)

    def configure(self, key: Hashable, limit: RateLimit) -> RateLimiter:
        """Set (or replace) the limit of `key`."""
        limiter = self._new(key, limit)
        with self._lock:
            self._limiters[key] = limiter
        return limiter

    def get(self, key: Hashable) -> RateLimiter | None:
        """The limiter of `key`, or `None` when `key` is not limited."""
        return self._limiters.get(key)

    def penalize(self, key: Hashable, retry_after_s: float) -> None:
        """Apply a server's `Retry-After` to `key` (creates a penalty-only limiter)."""
        limiter = self._limiters.get(key)
        if limiter is None:
            with self._lock:
                limiter = self._limiters.setdefault(key, self._new(key, None))
        limiter.penalize(retry_after_s)

    def snapshot(self) -> dict[Hashable, RateLimitSnapshot]:
        """Snapshots of every limiter, by key."""
        return {k: v.snapshot() for k, v in list(self._limiters.items())}

    def clear(self) -> None:
        """Forget every limiter."""
        with self._lock:
            self._limiters.clear()


_DEFAULT = ProcessDefault(RateLimiterRegistry)


def default_rate_limiters() -> RateLimiterRegistry:
    """The process-wide rate-limiter registry (its store: `HOLYSHEEP_STATE_URL`)."""
    return _DEFAULT.get()


def rate_limiters_for(state: StateArg) -> RateLimiterRegistry:
    """The process's rate-limiter registry for `state` (`None`: the default one)."""
    return per_store(
        state, default_rate_limiters(), lambda store: RateLimiterRegistry(state=store)
    )
