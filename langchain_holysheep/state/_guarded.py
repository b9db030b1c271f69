"""`GuardedStore`: what happens when the shared store is down, and recovery.

A shared store can fail (Redis stopped, a network partition, a locked SQLite
file). `GuardedStore` wraps it with a documented policy per concern:

- **budgets** (default `"raise"`): fail closed. `reserve` raises
  `StateStoreUnavailableError` (the call is refused before anything is sent),
  because no process can prove that a call fits the shared cap. With
  `"local"`, each process enforces the cap on its own memory during the
  outage (up to one cap per process may then be spent).
- **breakers** and **rate_limits** (default `"local"`): fall back to this
  process's memory (breakers and limits per process, as without a shared
  store); `"raise"` makes them fail too.

Spend is never dropped: a `settle` or `charge` that cannot reach the store is
queued (bounded by `max_pending`) and replayed, in order, as soon as the store
answers again; spend settled on the local fallback is replayed as a charge.
Reservations held in the store when it went away lapse with their lease, so
nothing leaks. While the store is down it is tried again at most every
`retry_interval` seconds (other calls go straight to the policy, without
waiting on timeouts); the first call that succeeds ends the outage.
`on_alert` is called once when an outage starts and once when it ends.

A request that timed out may still have been applied by the store: a
reservation made that way lapses with its lease; a replayed settle counts once
while the reservation's lease lasts; a replayed charge may count twice. Every
uncertainty errs towards counting more spend, never less.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal, TypeVar

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
from langchain_holysheep.state._errors import StateStoreUnavailableError
from langchain_holysheep.state._memory import MemoryStore
from langchain_holysheep.state._rate_types import RateGrant, RateSpec, RateView
from langchain_holysheep.state._store import StateStore

__all__ = ["GuardedStore", "OnStoreError", "StoreErrorPolicy", "StoreEvent"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
OnStoreError = Literal["raise", "local"]
Domain = Literal["budgets", "breakers", "rate_limits"]
_CHOICES = ("raise", "local")


@dataclass(frozen=True)
class StoreErrorPolicy:
    """What each concern does while the shared store is unavailable.

    Args:
        budgets: `"raise"` (default: fail closed with
            `StateStoreUnavailableError`) or `"local"` (per-process caps).
        breakers: `"local"` (default: per-process breakers) or `"raise"`.
        rate_limits: `"local"` (default: per-process limits) or `"raise"`.
    """

    budgets: OnStoreError = "raise"
    breakers: OnStoreError = "local"
    rate_limits: OnStoreError = "local"

    def __post_init__(self) -> None:
        for name in ("budgets", "breakers", "rate_limits"):
            if getattr(self, name) not in _CHOICES:
                raise ValueError(
                    f"on_store_error {name} must be 'raise' or 'local', "
                    f"got {getattr(self, name)!r}"
                )

    @classmethod
    def of(
        cls, value: StoreErrorPolicy | OnStoreError | Mapping[str, str] | None
    ) -> StoreErrorPolicy:
        """A policy from a policy, one choice for all, or a mapping by concern."""
        if value is None:
            return cls()
        if isinstance(value, StoreErrorPolicy):
            return value
        if isinstance(value, str):
            return cls(value, value, value)  # type: ignore[arg-type]
        unknown = set(value) - {"budgets", "breakers", "rate_limits"}
        if unknown:
            raise ValueError(f"unknown on_store_error keys: {sorted(unknown)}")
        return cls(**value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class StoreEvent:
    """An outage of the shared store started (`available=False`) or ended.

    Attributes:
        store: the store's URL (without password).
        available: `False` when the outage starts, `True` when it ends.
        reason: the error that started the outage (empty on recovery).
        down_for: on recovery, how long the store was unavailable (seconds).
        replayed: on recovery, how many queued settles and charges were
            replayed.
    """

    store: str
    available: bool
    reason: str = ""
    down_for: float | None = None
    replayed: int = 0


def _log_alert(event: StoreEvent) -> None:
    if event.available:
        logger.warning(
            "State store %s is available again after %.1f s (%d queued updates "
            "replayed)",
            event.store,
            event.down_for or 0.0,
            event.replayed,
        )
    else:
        logger.error(
            "State store %s is unavailable (%s): budgets fail closed, breakers "
            "and rate limits use local state until it is back",
            event.store,
            event.reason,
        )


class GuardedStore(StateStore):
    """A shared store with an outage policy, an alert and self-recovery.

    `open_store()` returns one for every SQLite or Redis URL.

    Args:
        store: the shared store.
        on_store_error: a `StoreErrorPolicy`, `"raise"`/`"local"` for every
            concern, or a mapping such as `{"budgets": "local"}`.
        on_alert: called with a `StoreEvent` when an outage starts and ends
            (default: a log message).
        retry_interval: seconds between attempts to reach a down store.
        max_pending: settles and charges kept for replay during an outage
            (older ones are dropped first, with an error log).
        clock: monotonic seconds (injectable in tests).

    Example:
        ```python
        store = GuardedStore(
            RedisStore("redis://cache:6379/0"),
            on_store_error={"budgets": "raise"},
            on_alert=lambda event: pager.send(str(event)),
        )
        ```
    """

    def __init__(
        self,
        store: StateStore,
        *,
        on_store_error: StoreErrorPolicy
        | OnStoreError
        | Mapping[str, str]
        | None = None,
        on_alert: Callable[[StoreEvent], Any] | None = None,
        retry_interval: float = 1.0,
        max_pending: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.policy = StoreErrorPolicy.of(on_store_error)
        self.on_alert = on_alert or _log_alert
        self.retry_interval = retry_interval
        self.kind = store.kind
        self._mono = clock
        self._lock = threading.Lock()
        self._down_at: float | None = None
        self._reason = self._hint = ""
        self._next_try = 0.0
        self._pending: deque[tuple[Any, ...]] = deque()
        self._max_pending = max_pending
        self._dropped = 0
        self._replayed = 0
        self._local_budgets = MemoryStore()
        self._local_limits = MemoryStore()

    @property
    def url(self) -> str:
        """The shared store's URL."""
        return self.store.url

    @property
    def available(self) -> bool:
        """Whether the shared store answered the last call that tried it."""
        return self._down_at is None

    @property
    def pending(self) -> int:
        """Settles and charges waiting to be replayed."""
        return len(self._pending)

    def close(self) -> None:
        """Close the shared store's connections."""
        self.store.close()

    async def aclose(self) -> None:
        """Async `close`."""
        await self.store.aclose()

    # -- outage bookkeeping ------------------------------------------------------------
    def _should_try(self) -> bool:
        if self._down_at is None:
            return True
        with self._lock:
            now = self._mono()
            if self._down_at is None or now >= self._next_try:
                self._next_try = now + self.retry_interval
                return True
        return False

    def _failed(self, exc: StateStoreUnavailableError) -> None:
        with self._lock:
            first = self._down_at is None
            now = self._mono()
            if first:
                self._down_at = now
                self._reason, self._hint = exc.reason, exc.hint
            self._next_try = now + self.retry_interval
        if first:
            self._alert(StoreEvent(self.url, False, exc.reason))
            self._local_limits = MemoryStore()

    def _take_pending(self) -> list[tuple[Any, ...]]:
        with self._lock:
            items = list(self._pending)
            self._pending.clear()
        return items

    def _replay_failed(
        self, done: int, rest: list[tuple[Any, ...]], exc: StateStoreUnavailableError
    ) -> None:
        with self._lock:
            self._pending.extendleft(reversed(rest))
            self._replayed += done
        self._failed(exc)

    def _end_outage(self) -> None:
        """The shared store answered: leave the outage (the caller replayed)."""
        with self._lock:
            if self._down_at is None or self._pending:
                return
            down_for = self._mono() - self._down_at
            replayed, self._replayed = self._replayed, 0
            self._down_at = None
        self._alert(StoreEvent(self.url, True, down_for=down_for, replayed=replayed))

    def _queue(self, item: tuple[Any, ...]) -> None:
        with self._lock:
            if len(self._pending) >= self._max_pending:
                self._pending.popleft()
                self._dropped += 1
                logger.error(
                    "State store %s: %d queued spend updates dropped (the outage "
                    "outlasted max_pending=%d)",
                    self.url,
                    self._dropped,
                    self._max_pending,
                )
            self._pending.append(item)

    def _alert(self, event: StoreEvent) -> None:
        try:
            self.on_alert(event)
        except Exception:  # an alert hook must never break a call
            logger.exception("state store alert hook failed")

    def _refuse(
        self, domain: Domain, exc: StateStoreUnavailableError | None
    ) -> StateStoreUnavailableError:
        reason = exc.reason if exc is not None else self._reason
        hint = exc.hint if exc is not None else self._hint
        err = StateStoreUnavailableError(self.url, reason, domain=domain, hint=hint)
        err.__cause__ = exc
        return err

    def _local(self, domain: Domain) -> MemoryStore:
        return self._local_budgets if domain == "budgets" else self._local_limits

    # -- replay and the two paths ------------------------------------------------
    def _enter(self) -> bool:
        """Whether this call uses the shared store (queued spend replayed first)."""
        if self._down_at is None:
            return True
        if not self._should_try():
            return False
        items = self._take_pending()
        for i, item in enumerate(items):
            try:
                if item[0] == "settle":
                    self.store.settle(item[1], item[2])
                else:
                    self.store.charge(item[1], item[2], item[3], window_ttl=item[4])
            except StateStoreUnavailableError as exc:
                self._replay_failed(i, items[i:], exc)
                return False
        with self._lock:
            self._replayed += len(items)
        return True

    async def _aenter(self) -> bool:
        if self._down_at is None:
            return True
        if not self._should_try():
            return False
        items = self._take_pending()
        for i, item in enumerate(items):
            try:
                if item[0] == "settle":
                    await self.store.asettle(item[1], item[2])
                else:
                    await self.store.acharge(
                        item[1], item[2], item[3], window_ttl=item[4]
                    )
            except StateStoreUnavailableError as exc:
                self._replay_failed(i, items[i:], exc)
                return False
        with self._lock:
            self._replayed += len(items)
        return True

    def _succeeded(self) -> None:
        # Updates queued by other threads meanwhile are replayed before the
        # outage ends.
        while self._down_at is not None:
            if not self._pending:
                self._end_outage()
            elif not self._enter_now():
                return

    async def _asucceeded(self) -> None:
        while self._down_at is not None:
            if not self._pending:
                self._end_outage()
            elif not await self._aenter_now():
                return

    def _enter_now(self) -> bool:
        with self._lock:
            self._next_try = 0.0
        return self._enter()

    async def _aenter_now(self) -> bool:
        with self._lock:
            self._next_try = 0.0
        return await self._aenter()

    def _do(self, domain: Domain, name: str, *args: Any, **kwargs: Any) -> Any:
        error = None
        if self._enter():
            try:
                result = getattr(self.store, name)(*args, **kwargs)
            except StateStoreUnavailableError as exc:
                self._failed(exc)
                error = exc
            else:
                self._succeeded()
                return result
        if getattr(self.policy, domain) == "raise":
            raise self._refuse(domain, error)
        return self._on_local(domain, name, *args, **kwargs)

    async def _ado(self, domain: Domain, name: str, *args: Any, **kwargs: Any) -> Any:
        error = None
        if await self._aenter():
            try:
                result = await getattr(self.store, "a" + name)(*args, **kwargs)
            except StateStoreUnavailableError as exc:
                self._failed(exc)
                error = exc
            else:
                await self._asucceeded()
                return result
        if getattr(self.policy, domain) == "raise":
            raise self._refuse(domain, error)
        return self._on_local(domain, name, *args, **kwargs)

    def _on_local(self, domain: Domain, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self._local(domain), name)(*args, **kwargs)
        if isinstance(result, Reservation):  # settled on the local store later
            return replace(result, fallback=True)
        return result

    def _try(self, call: Callable[[], _T]) -> tuple[bool, _T | None]:
        """Run `call` on the shared store if it may be tried; (answered, result)."""
        if not self._enter():
            return False, None
        try:
            result = call()
        except StateStoreUnavailableError as exc:
            self._failed(exc)
            return False, None
        self._succeeded()
        return True, result

    async def _atry(self, call: Callable[[], Awaitable[_T]]) -> tuple[bool, _T | None]:
        if not await self._aenter():
            return False, None
        try:
            result = await call()
        except StateStoreUnavailableError as exc:
            self._failed(exc)
            return False, None
        await self._asucceeded()
        return True, result

    # -- budgets -----------------------------------------------------------------------
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
        """See `StateStore.reserve` (fails closed by default while down)."""
        return self._do(  # type: ignore[no-any-return]
            "budgets",
            "reserve",
            budget_key,
            window_id,
            amount,
            cap,
            lease_seconds,
            window_ttl=window_ttl,
        )

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
        return await self._ado(  # type: ignore[no-any-return]
            "budgets",
            "reserve",
            budget_key,
            window_id,
            amount,
            cap,
            lease_seconds,
            window_ttl=window_ttl,
        )

    def settle(self, reservation: Reservation, actual: Decimal | None) -> Settlement:
        """See `StateStore.settle`; never raises for an outage (queued instead)."""
        if reservation.fallback:
            settlement = self._local_budgets.settle(reservation, actual)
            if settlement.counted:  # the shared store learns it (now or on replay)
                self._charge_shared(
                    reservation.budget_key,
                    reservation.window_id,
                    settlement.counted,
                    reservation.window_ttl,
                )
            return settlement
        done, result = self._try(lambda: self.store.settle(reservation, actual))
        if done and result is not None:
            return result
        return self._defer(reservation, actual)

    async def asettle(
        self, reservation: Reservation, actual: Decimal | None
    ) -> Settlement:
        """Async `settle`."""
        if reservation.fallback:
            settlement = self._local_budgets.settle(reservation, actual)
            if settlement.counted:  # the shared store learns it (now or on replay)
                await self._acharge_shared(
                    reservation.budget_key,
                    reservation.window_id,
                    settlement.counted,
                    reservation.window_ttl,
                )
            return settlement
        done, result = await self._atry(lambda: self.store.asettle(reservation, actual))
        if done and result is not None:
            return result
        return self._defer(reservation, actual)

    def _defer(self, reservation: Reservation, actual: Decimal | None) -> Settlement:
        amount = actual if actual is not None and actual > 0 else Decimal(0)
        if amount:
            self._queue(("settle", reservation, actual))
        return Settlement(None, None, amount, deferred=True)

    def release(self, reservation: Reservation) -> None:
        """See `StateStore.release` (while down, the lease frees it instead)."""
        if reservation.fallback:
            self._local_budgets.release(reservation)
        else:
            self._try(lambda: self.store.release(reservation))

    async def arelease(self, reservation: Reservation) -> None:
        """Async `release`."""
        if reservation.fallback:
            self._local_budgets.release(reservation)
        else:
            await self._atry(lambda: self.store.arelease(reservation))

    def extend(
        self, reservation: Reservation, lease_seconds: float
    ) -> Reservation | None:
        """See `StateStore.extend` (`None` while down: the lease was not renewed)."""
        if reservation.fallback:
            return self._local_budgets.extend(reservation, lease_seconds)
        return self._try(lambda: self.store.extend(reservation, lease_seconds))[1]

    async def aextend(
        self, reservation: Reservation, lease_seconds: float
    ) -> Reservation | None:
        """Async `extend`."""
        if reservation.fallback:
            return self._local_budgets.extend(reservation, lease_seconds)
        return (
            await self._atry(lambda: self.store.aextend(reservation, lease_seconds))
        )[1]

    def _charge_shared(
        self, budget_key: str, window_id: str, amount: Decimal, ttl: float | None
    ) -> WindowUsage | None:
        done, result = self._try(
            lambda: self.store.charge(budget_key, window_id, amount, window_ttl=ttl)
        )
        if not done:
            self._queue(("charge", budget_key, window_id, amount, ttl))
        return result

    async def _acharge_shared(
        self, budget_key: str, window_id: str, amount: Decimal, ttl: float | None
    ) -> WindowUsage | None:
        done, result = await self._atry(
            lambda: self.store.acharge(budget_key, window_id, amount, window_ttl=ttl)
        )
        if not done:
            self._queue(("charge", budget_key, window_id, amount, ttl))
        return result

    def charge(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        *,
        window_ttl: float | None = None,
    ) -> WindowUsage:
        """See `StateStore.charge`; while down it is queued (and counted locally)."""
        result = self._charge_shared(budget_key, window_id, amount, window_ttl)
        if result is not None:
            return result
        return self._local_budgets.charge(
            budget_key, window_id, amount, window_ttl=window_ttl
        )

    async def acharge(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        *,
        window_ttl: float | None = None,
    ) -> WindowUsage:
        """Async `charge`."""
        result = await self._acharge_shared(budget_key, window_id, amount, window_ttl)
        if result is not None:
            return result
        return self._local_budgets.charge(
            budget_key, window_id, amount, window_ttl=window_ttl
        )

    def usage(self, budget_key: str, window_id: str) -> WindowUsage:
        """See `StateStore.usage`."""
        return self._do("budgets", "usage", budget_key, window_id)  # type: ignore[no-any-return]

    async def ausage(self, budget_key: str, window_id: str) -> WindowUsage:
        """Async `usage`."""
        return await self._ado("budgets", "usage", budget_key, window_id)  # type: ignore[no-any-return]

    def forget(self, budget_key: str, window_id: str) -> None:
        """See `StateStore.forget`."""
        self._local_budgets.forget(budget_key, window_id)
        self._do("budgets", "forget", budget_key, window_id)

    async def aforget(self, budget_key: str, window_id: str) -> None:
        """Async `forget`."""
        self._local_budgets.forget(budget_key, window_id)
        await self._ado("budgets", "forget", budget_key, window_id)

    # -- breakers ----------------------------------------------------------------------
    def breaker(self, key: str, rules: BreakerRules) -> BreakerView:
        """See `StateStore.breaker`."""
        return self._do("breakers", "breaker", key, rules)  # type: ignore[no-any-return]

    async def abreaker(self, key: str, rules: BreakerRules) -> BreakerView:
        """Async `breaker`."""
        return await self._ado("breakers", "breaker", key, rules)  # type: ignore[no-any-return]

    def record_success(self, key: str, rules: BreakerRules) -> BreakerView:
        """See `StateStore.record_success`."""
        return self._do("breakers", "record_success", key, rules)  # type: ignore[no-any-return]

    async def arecord_success(self, key: str, rules: BreakerRules) -> BreakerView:
        """Async `record_success`."""
        return await self._ado("breakers", "record_success", key, rules)  # type: ignore[no-any-return]

    def record_failure(
        self, key: str, rules: BreakerRules, reason: str = "failure"
    ) -> BreakerView:
        """See `StateStore.record_failure`."""
        return self._do("breakers", "record_failure", key, rules, reason)  # type: ignore[no-any-return]

    async def arecord_failure(
        self, key: str, rules: BreakerRules, reason: str = "failure"
    ) -> BreakerView:
        """Async `record_failure`."""
        return await self._ado("breakers", "record_failure", key, rules, reason)  # type: ignore[no-any-return]

    def count_successes(self, key: str, rules: BreakerRules, count: int) -> BreakerView:
        """See `StateStore.count_successes`."""
        return self._do("breakers", "count_successes", key, rules, count)  # type: ignore[no-any-return]

    async def acount_successes(
        self, key: str, rules: BreakerRules, count: int
    ) -> BreakerView:
        """Async `count_successes`."""
        return await self._ado("breakers", "count_successes", key, rules, count)  # type: ignore[no-any-return]

    def try_claim_probe(self, key: str, ttl: float) -> bool:
        """See `StateStore.try_claim_probe`."""
        return self._do("breakers", "try_claim_probe", key, ttl)  # type: ignore[no-any-return]

    async def atry_claim_probe(self, key: str, ttl: float) -> bool:
        """Async `try_claim_probe`."""
        return await self._ado("breakers", "try_claim_probe", key, ttl)  # type: ignore[no-any-return]

    def release_probe(self, key: str) -> None:
        """See `StateStore.release_probe`."""
        self._do("breakers", "release_probe", key)

    async def arelease_probe(self, key: str) -> None:
        """Async `release_probe`."""
        await self._ado("breakers", "release_probe", key)

    def force_open(
        self, key: str, rules: BreakerRules, reason: str = "forced open"
    ) -> BreakerView:
        """See `StateStore.force_open`."""
        return self._do("breakers", "force_open", key, rules, reason)  # type: ignore[no-any-return]

    async def aforce_open(
        self, key: str, rules: BreakerRules, reason: str = "forced open"
    ) -> BreakerView:
        """Async `force_open`."""
        return await self._ado("breakers", "force_open", key, rules, reason)  # type: ignore[no-any-return]

    def reset_breaker(self, key: str) -> BreakerStateName | None:
        """See `StateStore.reset_breaker`."""
        return self._do("breakers", "reset_breaker", key)  # type: ignore[no-any-return]

    async def areset_breaker(self, key: str) -> BreakerStateName | None:
        """Async `reset_breaker`."""
        return await self._ado("breakers", "reset_breaker", key)  # type: ignore[no-any-return]

    # -- rate limits -------------------------------------------------------------------
    def acquire_rate(
        self,
        key: str,
        spec: RateSpec,
        *,
        tokens: float = 0.0,
        max_wait: float = 0.0,
    ) -> RateGrant:
        """See `StateStore.acquire_rate`."""
        return self._do(  # type: ignore[no-any-return]
            "rate_limits", "acquire_rate", key, spec, tokens=tokens, max_wait=max_wait
        )

    async def aacquire_rate(
        self,
        key: str,
        spec: RateSpec,
        *,
        tokens: float = 0.0,
        max_wait: float = 0.0,
    ) -> RateGrant:
        """Async `acquire_rate`."""
        return await self._ado(  # type: ignore[no-any-return]
            "rate_limits", "acquire_rate", key, spec, tokens=tokens, max_wait=max_wait
        )

    def refund_rate(
        self, key: str, spec: RateSpec, *, requests: float = 1.0, tokens: float = 0.0
    ) -> None:
        """See `StateStore.refund_rate`."""
        self._do(
            "rate_limits", "refund_rate", key, spec, requests=requests, tokens=tokens
        )

    async def arefund_rate(
        self, key: str, spec: RateSpec, *, requests: float = 1.0, tokens: float = 0.0
    ) -> None:
        """Async `refund_rate`."""
        await self._ado(
            "rate_limits", "refund_rate", key, spec, requests=requests, tokens=tokens
        )

    def penalize_rate(self, key: str, seconds: float) -> None:
        """See `StateStore.penalize_rate`."""
        self._do("rate_limits", "penalize_rate", key, seconds)

    async def apenalize_rate(self, key: str, seconds: float) -> None:
        """Async `penalize_rate`."""
        await self._ado("rate_limits", "penalize_rate", key, seconds)

    def rate_state(self, key: str, spec: RateSpec) -> RateView:
        """See `StateStore.rate_state`."""
        return self._do("rate_limits", "rate_state", key, spec)  # type: ignore[no-any-return]

    async def arate_state(self, key: str, spec: RateSpec) -> RateView:
        """Async `rate_state`."""
        return await self._ado("rate_limits", "rate_state", key, spec)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"GuardedStore({self.store!r}, {self.policy!r})"
