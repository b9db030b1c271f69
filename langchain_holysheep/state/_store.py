"""`StateStore`: the operations budgets, breakers and rate limits share.

Every operation is atomic in every store (one lock in memory, one
`BEGIN IMMEDIATE` transaction in SQLite, one Lua script in Redis), so
concurrent callers in any number of threads, processes or machines see one
consistent state. Each sync operation has an async twin (`a` + name). Both are
made from one description of the operation (its signature, checks and
docstring), which turns the arguments into a `Request`; a store only applies
requests (`_apply`, and `_aapply` for the twins: inline by default, in a worker
thread for SQLite, with `redis.asyncio` for Redis).

Times (`expires_at`, `opened_at`) are seconds on the store's clock: the wall
clock of the machine for memory and SQLite, the Redis server's clock for Redis
(so machines with skewed clocks still agree), unless a clock is injected.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, Concatenate, ParamSpec, TypeVar

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
    mark_finished,
)
from langchain_holysheep.state._checks import check_seconds
from langchain_holysheep.state._rate_types import RateGrant, RateSpec, RateView
from langchain_holysheep.state._requests import (
    BreakerOp,
    Charge,
    Extend,
    Forget,
    RateOp,
    Request,
    Reserve,
    Usage,
    finish,
)

__all__ = ["StateStore"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_Build = Callable[Concatenate["StateStore", _P], Request[_T]]


def _describe(operation: Callable[..., Any], build: Callable[..., Any]) -> str:
    """Give `operation` the name, docstring and signature `build` describes.

    Returns the operation's name (`reserve` for `_reserve_request`).
    """
    name = build.__name__.removeprefix("_").removesuffix("_request")
    signature = inspect.signature(build)
    answer = str(signature.return_annotation).removeprefix("Request[")[:-1]
    operation.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation=answer
    )
    operation.__name__ = operation.__qualname__ = name
    operation.__module__ = build.__module__
    operation.__doc__ = build.__doc__
    return name


def _sync(build: _Build[_P, _T]) -> Callable[Concatenate[StateStore, _P], _T]:
    """The public operation that `build` describes."""

    def operation(self: StateStore, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return self._apply(build(self, *args, **kwargs))

    _describe(operation, build)
    return operation


def _async(
    build: _Build[_P, _T],
) -> Callable[Concatenate[StateStore, _P], Coroutine[Any, Any, _T]]:
    """The async twin of the operation that `build` describes."""

    async def operation(self: StateStore, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return await self._aapply(build(self, *args, **kwargs))

    name = _describe(operation, build)
    operation.__name__ = operation.__qualname__ = "a" + name
    operation.__doc__ = f"Async `{name}`."
    return operation


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

    # -- applying requests (what a store implements) -----------------------------------
    @abstractmethod
    def _apply(self, request: Request[_T]) -> _T:
        """Apply one checked request atomically and answer it."""

    async def _aapply(self, request: Request[_T]) -> _T:
        """Async `_apply` (inline by default; stores with blocking I/O override)."""
        return self._apply(request)

    # -- budgets -----------------------------------------------------------------------
    def _reserve_request(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        cap: Decimal,
        lease_seconds: float,
        *,
        window_ttl: float | None = None,
    ) -> Request[Reservation | Refusal]:
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
        return Reserve.of(budget_key, window_id, amount, cap, lease_seconds, window_ttl)

    reserve = _sync(_reserve_request)
    areserve = _async(_reserve_request)

    def settle(self, reservation: Reservation, actual: Decimal | None) -> Settlement:
        """Replace a reservation by the actual spend (`None` or 0: nothing billed).

        The first settle or release of a reservation counts; a repeated one
        (with the same object, or a copy `extend` returned) counts nothing. A
        settle after the lease ended still counts `actual` (`late`).
        """
        request = finish(reservation, actual)
        settled = self._apply(request)
        if not settled.deferred:  # a queued settle is marked when it is replayed
            mark_finished(reservation)
        return settled

    async def asettle(
        self, reservation: Reservation, actual: Decimal | None
    ) -> Settlement:
        """Async `settle`."""
        request = finish(reservation, actual)
        settled = await self._aapply(request)
        if not settled.deferred:
            mark_finished(reservation)
        return settled

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back (the call billed nothing)."""
        self.settle(reservation, None)

    async def arelease(self, reservation: Reservation) -> None:
        """Async `release`."""
        await self.asettle(reservation, None)

    def _extend_request(
        self, reservation: Reservation, lease_seconds: float
    ) -> Request[Reservation | None]:
        """Renew a live reservation's lease from now; `None` if it is gone."""
        return Extend.of(reservation, lease_seconds)

    extend = _sync(_extend_request)
    aextend = _async(_extend_request)

    def _charge_request(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        *,
        window_ttl: float | None = None,
    ) -> Request[WindowUsage]:
        """Count spend that had no reservation; returns the window's usage."""
        return Charge.of(budget_key, window_id, amount, window_ttl)

    charge = _sync(_charge_request)
    acharge = _async(_charge_request)

    def _usage_request(self, budget_key: str, window_id: str) -> Request[WindowUsage]:
        """Settled spend and live reservations of a window."""
        return Usage(budget_key, window_id)

    usage = _sync(_usage_request)
    ausage = _async(_usage_request)

    def spent(self, budget_key: str, window_id: str) -> Decimal:
        """Settled spend of a window."""
        return self.usage(budget_key, window_id).spent

    async def aspent(self, budget_key: str, window_id: str) -> Decimal:
        """Async `spent`."""
        return (await self.ausage(budget_key, window_id)).spent

    def _forget_request(self, budget_key: str, window_id: str) -> Request[None]:
        """Drop a window (a finished run); later settles count in a new one."""
        return Forget(budget_key, window_id)

    forget = _sync(_forget_request)
    aforget = _async(_forget_request)

    # -- breakers ----------------------------------------------------------------------
    def _breaker_request(self, key: str, rules: BreakerRules) -> Request[BreakerView]:
        """The shared state of breaker `key` (changes nothing)."""
        return BreakerOp("view", key, rules)

    breaker = _sync(_breaker_request)
    abreaker = _async(_breaker_request)

    def _record_success_request(
        self, key: str, rules: BreakerRules
    ) -> Request[BreakerView]:
        """A call succeeded: counts in the window, closes a half-open breaker."""
        return BreakerOp("ok", key, rules)

    record_success = _sync(_record_success_request)
    arecord_success = _async(_record_success_request)

    def _record_failure_request(
        self, key: str, rules: BreakerRules, reason: str = "failure"
    ) -> Request[BreakerView]:
        """A call failed: may open the breaker; re-opens a half-open one."""
        return BreakerOp("fail", key, rules, reason)

    record_failure = _sync(_record_failure_request)
    arecord_failure = _async(_record_failure_request)

    def _count_successes_request(
        self, key: str, rules: BreakerRules, count: int
    ) -> Request[BreakerView]:
        """Count `count` successes a process saw while the breaker was closed.

        They count in the window only if it is still closed: unlike
        `record_success`, they never close a half-open breaker (they were
        not its probe). Lets a process batch its successes into one round
        trip per sync instead of one per call.
        """
        return BreakerOp("oks", key, rules, count=count)

    count_successes = _sync(_count_successes_request)
    acount_successes = _async(_count_successes_request)

    def _try_claim_probe_request(self, key: str, ttl: float) -> Request[bool]:
        """Claim the one half-open probe of an open breaker whose cooldown passed.

        Exactly one caller across all processes gets `True` (the breaker moves
        to half-open); the claim lapses after `ttl` seconds if its holder
        never reports, and another caller may then claim. `False` when the
        breaker is closed, still cooling down, or probed by someone else.
        """
        check_seconds(ttl, "ttl")
        return BreakerOp("claim", key, ttl=ttl)

    try_claim_probe = _sync(_try_claim_probe_request)
    atry_claim_probe = _async(_try_claim_probe_request)

    def _release_probe_request(self, key: str) -> Request[None]:
        """Give back a probe that ended without a verdict (cancelled)."""
        return BreakerOp("release", key)

    release_probe = _sync(_release_probe_request)
    arelease_probe = _async(_release_probe_request)

    def _force_open_request(
        self, key: str, rules: BreakerRules, reason: str = "forced open"
    ) -> Request[BreakerView]:
        """Open now (or restart the cooldown of an open breaker)."""
        return BreakerOp("force", key, rules, reason)

    force_open = _sync(_force_open_request)
    aforce_open = _async(_force_open_request)

    def _reset_breaker_request(self, key: str) -> Request[BreakerStateName | None]:
        """Close and forget the window; returns the previous state if it changed."""
        return BreakerOp("reset", key)

    reset_breaker = _sync(_reset_breaker_request)
    areset_breaker = _async(_reset_breaker_request)

    # -- rate limits -------------------------------------------------------------------
    def _acquire_rate_request(
        self,
        key: str,
        spec: RateSpec,
        *,
        tokens: float = 0.0,
        max_wait: float = 0.0,
    ) -> Request[RateGrant]:
        """Take one request of `tokens` from the shared buckets of `key`.

        If the wait for capacity is at most `max_wait` the capacity is taken
        (possibly ahead of time: later callers queue behind) and the grant
        says how long to wait before sending; otherwise nothing is taken and
        the grant says how long until a slot frees.
        """
        return RateOp("acquire", key, spec, tokens=tokens, max_wait=max_wait)

    acquire_rate = _sync(_acquire_rate_request)
    aacquire_rate = _async(_acquire_rate_request)

    def _refund_rate_request(
        self, key: str, spec: RateSpec, *, requests: float = 1.0, tokens: float = 0.0
    ) -> Request[None]:
        """Give back capacity that was not used (negative `tokens` takes more)."""
        return RateOp("refund", key, spec, tokens=tokens, requests=requests)

    refund_rate = _sync(_refund_rate_request)
    arefund_rate = _async(_refund_rate_request)

    def penalize_rate(self, key: str, seconds: float) -> None:
        """No request on `key` starts for `seconds` (a server's `Retry-After`)."""
        if seconds > 0:
            self._apply(RateOp("penalize", key, penalty=seconds))

    async def apenalize_rate(self, key: str, seconds: float) -> None:
        """Async `penalize_rate`."""
        if seconds > 0:
            await self._aapply(RateOp("penalize", key, penalty=seconds))

    def _rate_state_request(self, key: str, spec: RateSpec) -> Request[RateView]:
        """Capacity left on `key` now."""
        return RateOp("view", key, spec)

    rate_state = _sync(_rate_state_request)
    arate_state = _async(_rate_state_request)

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
