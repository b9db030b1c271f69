"""`StateStore`: the operations budgets, breakers and rate limits share.

Every operation is atomic in every store (one lock in memory, one
`BEGIN IMMEDIATE` transaction in SQLite, one Lua script in Redis), so
concurrent callers in any number of threads, processes or machines see one
consistent state. Each sync operation has an async twin (`a` + name); stores
whose I/O blocks run the sync twin in a worker thread, the Redis store uses
`redis.asyncio`.

Times (`expires_at`, `opened_at`) are seconds on the store's clock: the wall
clock of the machine for memory and SQLite, the Redis server's clock for Redis
(so machines with skewed clocks still agree), unless a clock is injected.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

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
from langchain_holysheep.state._rate_types import RateGrant, RateSpec, RateView

__all__ = ["StateStore"]

_T = TypeVar("_T")


class StateStore(ABC):
    """The state behind budgets, breakers and rate limits, wherever it lives.

    Implementations: `MemoryStore` (one process), `SQLiteStore` (processes on
    one machine; survives restarts), `RedisStore` (many machines). Pick one by
    URL with `open_store()`.

    Budgets:
        `reserve` admits `amount` only if `spent + reserved + amount <= cap`
        in the window, and holds it under a lease; `settle` replaces it by
        the actual spend (counted even when the lease already ended: billed
        spend is never dropped); `release` gives it back; `extend` renews the
        lease of a long call; `charge` counts spend that had no reservation.
        An expired reservation stops counting by itself.

    Breakers:
        `record_success` / `record_failure` move the shared state machine
        (closed -> open -> half-open -> closed/open); `try_claim_probe`
        lets exactly one caller across all processes probe a breaker whose
        cooldown has passed.

    Rate limits:
        `acquire_rate` takes a request (and its tokens) from shared token
        buckets, or says how long until a slot frees.
    """

    #: Short name of the backend ("memory", "sqlite", "redis").
    kind: str = "store"

    @property
    def url(self) -> str:
        """Where the state lives (a URL without any password)."""
        return f"{self.kind}://"

    # -- budgets -----------------------------------------------------------------------
    @abstractmethod
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
        """Atomically reserve `amount` in a window if it fits under `cap`.

        Args:
            budget_key: the budget (and scope value), e.g. `"team-a/user:alice"`.
            window_id: the window, computed by the caller (`"total"`,
                `"2026-11-03"`, a run id, ...).
            amount: the call's worst-case cost (USD, >= 0).
            cap: the budget's limit (USD).
            lease_seconds: how long the reservation holds without a settle.
            window_ttl: forget the window this long after its last write
                (`None`: keep it; calendar windows pass a little more than
                their length).

        Returns:
            A `Reservation` (admitted) or a `Refusal` (nothing reserved).

        Raises:
            ValueError: a negative or non-finite amount, or a lease <= 0.
            StateStoreUnavailableError: the store cannot be reached.
        """

    @abstractmethod
    def settle(self, reservation: Reservation, actual: Decimal | None) -> Settlement:
        """Replace a reservation by the actual spend (`None` or 0: nothing billed).

        Settling the same reservation again counts nothing while its lease
        lasts; a settle after the lease ended still counts `actual` (`late`).
        """

    @abstractmethod
    def release(self, reservation: Reservation) -> None:
        """Give a reservation back (the call billed nothing)."""

    @abstractmethod
    def extend(
        self, reservation: Reservation, lease_seconds: float
    ) -> Reservation | None:
        """Renew a live reservation's lease from now; `None` if it is gone."""

    @abstractmethod
    def charge(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        *,
        window_ttl: float | None = None,
    ) -> WindowUsage:
        """Count spend that had no reservation; returns the window's usage."""

    @abstractmethod
    def usage(self, budget_key: str, window_id: str) -> WindowUsage:
        """Settled spend and live reservations of a window."""

    def spent(self, budget_key: str, window_id: str) -> Decimal:
        """Settled spend of a window."""
        return self.usage(budget_key, window_id).spent

    @abstractmethod
    def forget(self, budget_key: str, window_id: str) -> None:
        """Drop a window (a finished run); later settles count in a new one."""

    # -- breakers ----------------------------------------------------------------------
    @abstractmethod
    def breaker(self, key: str, rules: BreakerRules) -> BreakerView:
        """The shared state of breaker `key` (changes nothing)."""

    @abstractmethod
    def record_success(self, key: str, rules: BreakerRules) -> BreakerView:
        """A call succeeded: counts in the window, closes a half-open breaker."""

    @abstractmethod
    def record_failure(
        self, key: str, rules: BreakerRules, reason: str = "failure"
    ) -> BreakerView:
        """A call failed: may open the breaker; re-opens a half-open one."""

    @abstractmethod
    def count_successes(self, key: str, rules: BreakerRules, count: int) -> BreakerView:
        """Count `count` successes a process saw while the breaker was closed.

        They count in the window only if it is still closed: unlike
        `record_success`, they never close a half-open breaker (they were
        not its probe). Lets a process batch its successes into one round
        trip per sync instead of one per call.
        """

    @abstractmethod
    def try_claim_probe(self, key: str, ttl: float) -> bool:
        """Claim the one half-open probe of an open breaker whose cooldown passed.

        Exactly one caller across all processes gets `True` (the breaker moves
        to half-open); the claim lapses after `ttl` seconds if its holder
        never reports, and another caller may then claim. `False` when the
        breaker is closed, still cooling down, or probed by someone else.
        """

    @abstractmethod
    def release_probe(self, key: str) -> None:
        """Give back a probe that ended without a verdict (cancelled)."""

    @abstractmethod
    def force_open(
        self, key: str, rules: BreakerRules, reason: str = "forced open"
    ) -> BreakerView:
        """Open now (or restart the cooldown of an open breaker)."""

    @abstractmethod
    def reset_breaker(self, key: str) -> BreakerStateName | None:
        """Close and forget the window; returns the previous state if it changed."""

    # -- rate limits -------------------------------------------------------------------
    @abstractmethod
    def acquire_rate(
        self,
        key: str,
        spec: RateSpec,
        *,
        tokens: float = 0.0,
        max_wait: float = 0.0,
    ) -> RateGrant:
        """Take one request of `tokens` from the shared buckets of `key`.

        If the wait for capacity is at most `max_wait` the capacity is taken
        (possibly ahead of time: later callers queue behind) and the grant
        says how long to wait before sending; otherwise nothing is taken and
        the grant says how long until a slot frees.
        """

    @abstractmethod
    def refund_rate(
        self, key: str, spec: RateSpec, *, requests: float = 1.0, tokens: float = 0.0
    ) -> None:
        """Give back capacity that was not used (negative `tokens` takes more)."""

    @abstractmethod
    def penalize_rate(self, key: str, seconds: float) -> None:
        """No request on `key` starts for `seconds` (a server's `Retry-After`)."""

    @abstractmethod
    def rate_state(self, key: str, spec: RateSpec) -> RateView:
        """Capacity left on `key` now."""

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 (optional for stores without resources)
        """Release connections (the store can still be used afterwards)."""

    async def aclose(self) -> None:
        """Async `close`."""
        self.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- async twins (stores with async I/O override them) -----------------------------
    async def _run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run a sync operation for its async twin (inline by default)."""
        return fn(*args, **kwargs)

    async def areserve(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        cap: Decimal,
        lease_seconds: float,
        *,
        window_ttl: float | None = None,
    ) -> Reservation | Refusal:
        """Async `reserve`."""
        return await self._run(
            self.reserve,
            budget_key,
            window_id,
            amount,
            cap,
            lease_seconds,
            window_ttl=window_ttl,
        )

    async def asettle(
        self, reservation: Reservation, actual: Decimal | None
    ) -> Settlement:
        """Async `settle`."""
        return await self._run(self.settle, reservation, actual)

    async def arelease(self, reservation: Reservation) -> None:
        """Async `release`."""
        await self._run(self.release, reservation)

    async def aextend(
        self, reservation: Reservation, lease_seconds: float
    ) -> Reservation | None:
        """Async `extend`."""
        return await self._run(self.extend, reservation, lease_seconds)

    async def acharge(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        *,
        window_ttl: float | None = None,
    ) -> WindowUsage:
        """Async `charge`."""
        return await self._run(
            self.charge, budget_key, window_id, amount, window_ttl=window_ttl
        )

    async def ausage(self, budget_key: str, window_id: str) -> WindowUsage:
        """Async `usage`."""
        return await self._run(self.usage, budget_key, window_id)

    async def aspent(self, budget_key: str, window_id: str) -> Decimal:
        """Async `spent`."""
        return (await self.ausage(budget_key, window_id)).spent

    async def aforget(self, budget_key: str, window_id: str) -> None:
        """Async `forget`."""
        await self._run(self.forget, budget_key, window_id)

    async def abreaker(self, key: str, rules: BreakerRules) -> BreakerView:
        """Async `breaker`."""
        return await self._run(self.breaker, key, rules)

    async def arecord_success(self, key: str, rules: BreakerRules) -> BreakerView:
        """Async `record_success`."""
        return await self._run(self.record_success, key, rules)

    async def arecord_failure(
        self, key: str, rules: BreakerRules, reason: str = "failure"
    ) -> BreakerView:
        """Async `record_failure`."""
        return await self._run(self.record_failure, key, rules, reason)

    async def acount_successes(
        self, key: str, rules: BreakerRules, count: int
    ) -> BreakerView:
        """Async `count_successes`."""
        return await self._run(self.count_successes, key, rules, count)

    async def atry_claim_probe(self, key: str, ttl: float) -> bool:
        """Async `try_claim_probe`."""
        return await self._run(self.try_claim_probe, key, ttl)

    async def arelease_probe(self, key: str) -> None:
        """Async `release_probe`."""
        await self._run(self.release_probe, key)

    async def aforce_open(
        self, key: str, rules: BreakerRules, reason: str = "forced open"
    ) -> BreakerView:
        """Async `force_open`."""
        return await self._run(self.force_open, key, rules, reason)

    async def areset_breaker(self, key: str) -> BreakerStateName | None:
        """Async `reset_breaker`."""
        return await self._run(self.reset_breaker, key)

    async def aacquire_rate(
        self,
        key: str,
        spec: RateSpec,
        *,
        tokens: float = 0.0,
        max_wait: float = 0.0,
    ) -> RateGrant:
        """Async `acquire_rate`."""
        return await self._run(
            self.acquire_rate, key, spec, tokens=tokens, max_wait=max_wait
        )

    async def arefund_rate(
        self, key: str, spec: RateSpec, *, requests: float = 1.0, tokens: float = 0.0
    ) -> None:
        """Async `refund_rate`."""
        await self._run(self.refund_rate, key, spec, requests=requests, tokens=tokens)

    async def apenalize_rate(self, key: str, seconds: float) -> None:
        """Async `penalize_rate`."""
        await self._run(self.penalize_rate, key, seconds)

    async def arate_state(self, key: str, spec: RateSpec) -> RateView:
        """Async `rate_state`."""
        return await self._run(self.rate_state, key, spec)
