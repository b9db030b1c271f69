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

import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar, cast

from langchain_holysheep.state._budget_types import Reservation, Settlement
from langchain_holysheep.state._errors import StateStoreUnavailableError
from langchain_holysheep.state._memory import MemoryStore
from langchain_holysheep.state._money import to_units
from langchain_holysheep.state._outage import (
    OnStoreError,
    Outage,
    StoreErrorPolicy,
    StoreEvent,
    log_alert,
)
from langchain_holysheep.state._requests import (
    Charge,
    Domain,
    Extend,
    Finish,
    Forget,
    Repeat,
    Request,
)
from langchain_holysheep.state._store import StateStore

__all__ = ["GuardedStore", "OnStoreError", "StoreErrorPolicy", "StoreEvent"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Failed:
    """The shared store did not answer a request."""

    error: StateStoreUnavailableError


# The outage logic is written once as generators: they yield each request for
# the shared store and receive its answer (or `_Failed`); `_apply` and
# `_aapply` only send the requests, with and without `await`.
_Steps = Generator[Request[Any], Any, _T]


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
        self.kind = store.kind
        self._outage = Outage(
            store.url, on_alert or log_alert, retry_interval, max_pending, clock
        )
        self._local_budgets = MemoryStore()
        self._local_limits = MemoryStore()

    @property
    def url(self) -> str:
        """The shared store's URL."""
        return self.store.url

    @property
    def on_alert(self) -> Callable[[StoreEvent], Any]:
        """Called with a `StoreEvent` when an outage starts and ends."""
        return self._outage.on_alert

    @on_alert.setter
    def on_alert(self, hook: Callable[[StoreEvent], Any]) -> None:
        self._outage.on_alert = hook

    @property
    def retry_interval(self) -> float:
        """Seconds between attempts to reach a down store."""
        return self._outage.retry_interval

    @retry_interval.setter
    def retry_interval(self, seconds: float) -> None:
        self._outage.retry_interval = seconds

    @property
    def available(self) -> bool:
        """Whether the shared store answered the last call that tried it."""
        return self._outage.down_at is None

    @property
    def pending(self) -> int:
        """Settles and charges waiting to be replayed."""
        return len(self._outage.pending)

    def close(self) -> None:
        """Close the shared store's connections."""
        self.store.close()

    async def aclose(self) -> None:
        """Async `close`."""
        await self.store.aclose()

    # -- the two drivers ---------------------------------------------------------------
    def _apply(self, request: Request[_T]) -> _T:
        run = _Run(self._steps(request))
        while (step := run.step()) is not None:
            run.answer = _ask(self.store._apply, step)
        return cast(_T, run.answer)

    async def _aapply(self, request: Request[_T]) -> _T:
        run = _Run(self._steps(request))
        while (step := run.step()) is not None:
            run.answer = await _aask(self.store._aapply, step)
        return cast(_T, run.answer)

    # -- the outage logic, once --------------------------------------------------------
    def _steps(self, request: Request[Any]) -> _Steps[Any]:
        """Apply `request` with the outage policy."""
        if isinstance(request, Finish):
            return (yield from self._settle(request))
        if isinstance(request, Repeat):
            return (yield from self._repeat(request))
        if isinstance(request, Extend):
            if request.reservation.fallback:
                return self._local_budgets._apply(request)
            return (yield from self._try(request))[1]
        if isinstance(request, Charge):
            result = yield from self._charge_shared(request)
            return self._local_budgets._apply(request) if result is None else result
        if isinstance(request, Forget):
            self._local_budgets._apply(request)
        answered, result, error = yield from self._try(request)
        if answered:
            return result
        if getattr(self.policy, request.domain) == "raise":
            raise self._refuse(request.domain, error)
        result = self._local(request.domain)._apply(request)
        if isinstance(result, Reservation):  # settled on the local store later
            return replace(result, fallback=True)
        return result

    def _settle(self, request: Finish) -> _Steps[Settlement]:
        """Settle (never raises for an outage: queued instead)."""
        res, actual = request.reservation, request.actual
        if res.fallback:
            settlement = self._local_budgets._apply(request)
            if settlement.counted:  # the shared store learns it (now or on replay)
                units = to_units(settlement.counted)
                charge = Charge(res.budget_key, res.window_id, units, res.window_ttl)
                yield from self._charge_shared(charge)
            return settlement
        answered, result, _ = yield from self._try(request)
        if answered and result is not None:
            return cast(Settlement, result)
        amount = actual if actual is not None and actual > 0 else Decimal(0)
        if amount:
            self._outage.queue(request)
        return Settlement(None, None, amount, deferred=True)

    def _repeat(self, request: Repeat) -> _Steps[Settlement]:
        """A repeated settle counts nothing: the window's usage, if it answers."""
        if request.reservation.fallback:
            return self._local_budgets._apply(request)
        answered, result, _ = yield from self._try(request)
        return (
            cast(Settlement, result) if answered else Settlement(None, None, Decimal(0))
        )

    def _charge_shared(self, request: Charge) -> _Steps[Any]:
        answered, result, _ = yield from self._try(request)
        if not answered:
            self._outage.queue(request)
        return result

    def _try(
        self, request: Request[Any]
    ) -> _Steps[tuple[bool, Any, StateStoreUnavailableError | None]]:
        """Send `request` if the store may be tried: (answered, result, error)."""
        if not (yield from self._enter()):
            return False, None, None
        answer = yield request
        if isinstance(answer, _Failed):
            self._failed(answer.error)
            return False, None, answer.error
        # Updates queued by other threads meanwhile are replayed before the
        # outage ends.
        while self._outage.down_at is not None:
            if not self._outage.pending:
                self._outage.end()
            elif not (yield from self._enter(now=True)):
                break
        return True, answer, None

    def _enter(self, *, now: bool = False) -> _Steps[bool]:
        """Whether to use the shared store (queued spend replayed first)."""
        if self._outage.down_at is None:
            return True
        if not self._outage.should_try(now=now):
            return False
        items = self._outage.take_pending()
        for i, item in enumerate(items):
            answer = yield item
            if isinstance(answer, _Failed):
                self._outage.replayed(i, items[i:])
                self._failed(answer.error)
                return False
        self._outage.replayed(len(items), [])
        return True

    def _failed(self, exc: StateStoreUnavailableError) -> None:
        if self._outage.failed(exc):
            self._local_limits = MemoryStore()

    def _refuse(
        self, domain: Domain, exc: StateStoreUnavailableError | None
    ) -> StateStoreUnavailableError:
        reason = exc.reason if exc is not None else self._outage.reason
        hint = exc.hint if exc is not None else self._outage.hint
        err = StateStoreUnavailableError(self.url, reason, domain=domain, hint=hint)
        err.__cause__ = exc
        return err

    def _local(self, domain: Domain) -> MemoryStore:
        return self._local_budgets if domain == "budgets" else self._local_limits

    def __repr__(self) -> str:
        return f"GuardedStore({self.store!r}, {self.policy!r})"


class _Run:
    """Steps through the outage logic for a driver."""

    def __init__(self, steps: _Steps[Any]) -> None:
        self._steps = steps
        self.answer: Any = None

    def step(self) -> Request[Any] | None:
        """The next request for the shared store (`None`: `answer` is the result)."""
        try:
            return self._steps.send(self.answer)
        except StopIteration as stop:
            self.answer = stop.value
            return None


def _ask(apply: Callable[[Request[Any]], Any], request: Request[Any]) -> Any:
    try:
        return apply(request)
    except StateStoreUnavailableError as exc:
        return _Failed(exc)


async def _aask(
    apply: Callable[[Request[Any]], Awaitable[Any]], request: Request[Any]
) -> Any:
    try:
        return await apply(request)
    except StateStoreUnavailableError as exc:
        return _Failed(exc)
