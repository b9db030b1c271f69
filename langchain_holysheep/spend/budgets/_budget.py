"""`Budget`: a spending cap enforced by reservations, so it cannot be overrun.

Every call reserves its worst-case cost *before* anything is sent, in one
atomic operation of the budget's state store, so concurrent calls (threads,
tasks, processes, machines sharing the store) never together commit more than
the limit; the reservation settles to the real cost when the call ends, and
lapses with its lease if the process dies. Unpriced calls reserve nothing and
are reported as unpriced (`strict=True` refuses them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timezone, tzinfo
from decimal import Decimal
from typing import Any, Literal

from langchain_holysheep.spend.budgets._cost import combined, route_choices
from langchain_holysheep.spend.budgets._errors import (
    BudgetCheckError,
    BudgetError,
    BudgetExceededError,
    BudgetStoreError,
    ThresholdEvent,
    UnpricedCallError,
)
from langchain_holysheep.spend.budgets._notify import fire_threshold, warn_overrun
from langchain_holysheep.spend.budgets._readout import BudgetReadout
from langchain_holysheep.spend.budgets._reservation import Reservation
from langchain_holysheep.spend.budgets._settings import (
    Estimate,
    check_choices,
    check_extra_tokens,
    check_forget_after,
    check_key,
    check_lease,
    check_limit,
    check_thresholds,
    resolve_store,
    scope_value,
    window_ttl,
)
from langchain_holysheep.spend.budgets._windows import Window, WindowSpan, next_boundary
from langchain_holysheep.spend.pricing._book import format_money
from langchain_holysheep.state import Refusal, StateStore, StateStoreUnavailableError

__all__ = [
    "Budget",
    "BudgetError",
    "BudgetExceededError",
    "Reservation",
    "ThresholdEvent",
    "UnpricedCallError",
]

_logger = logging.getLogger(__name__)
_ZERO = Decimal(0)
Route = tuple[str, Decimal | None]


class Budget(BudgetReadout):
    """A spending cap in USD that concurrent calls cannot overrun.

    Args:
        limit: the cap in USD (`Decimal`, `str` or `int`; > 0).
        window: `"total"` (the default: one cap that never rolls over),
            `"hour"`, `"day"`, `"month"` (calendar windows in `tz`, rolling
            over by wall clock) or `"run"` (each top-level LangChain run gets
            the whole limit).
        scope: `"global"`, or a metadata key (`"user"`, `"thread_id"`, ...): each
            value of that key gets its own cap. The value is read from the run's
            metadata, else from a tag `"key:value"` / `"key=value"`; calls with
            no value share the bucket `""`.
        thresholds: fractions of the limit (0 < t <= 1) at which `on_threshold`
            fires, once per window and scope value, when settled spend crosses
            them (once across all processes sharing the store).
        on_threshold: called with a `ThresholdEvent` (default: a log warning).
        on_exceeded: `"raise"` (`BudgetExceededError`, nothing sent) or
            `"downgrade"` (only the cheaper routes of the call that fit are
            tried).
        strict: refuse calls to unpriced models instead of letting them through.
        name: the budget's label in messages (default `"$5.00/total"`, from
            the limit and window), and its identity in a shared store unless
            `key` is given.
        key: the budget's identity in a shared store: every `Budget` with the
            same key (or, without one, the same name), in any process, shares
            one cap per scope value and window.
        clock: returns epoch seconds for calendar windows (injectable for tests).
        tz: the time zone of the calendar windows (default UTC).
        store: a `StateStore` or a URL (`memory://`, `sqlite:///state.db`,
            `redis://host:6379/0`); default `HOLYSHEEP_STATE_URL`, else memory.
        estimate: `"bound"` (default): reserve a hard upper bound of what the
            call can be billed (see `spend.budgets.call_cost`); `"heuristic"`:
            a cheaper estimate that real billing may exceed.
        extra_prompt_tokens: prompt tokens your gateway adds to every request
            beyond the 64 the bound already allows (a long hidden system prompt).
        lease: seconds a reservation holds without being settled (streams
            renew it as chunks arrive); set it above your longest non-streamed
            call. A crashed process's reservations are free after this long.
        forget_after: seconds the store keeps a window after its last write
            (default: by window, a little more than its length; never for
            `"total"`). A short-lived `"total"` budget (one per job, one per
            agent run) sets it so that the store forgets it by itself.

    Example:
        ```python
        budget = Budget("5.00", window="day", scope="user", thresholds=(0.8,))
        with get_holysheep_callback(budget=budget):
            chain.invoke(..., config={"metadata": {"user": "alice"}})
        ```
    """

    def __init__(
        self,
        limit: Decimal | str | int,
        window: Window = "total",
        scope: str = "global",
        thresholds: Iterable[float] = (0.5, 0.8),
        on_threshold: Callable[[ThresholdEvent], Any] | None = None,
        on_exceeded: Literal["raise", "downgrade"] = "raise",
        *,
        strict: bool = False,
        name: str | None = None,
        key: str | None = None,
        clock: Callable[[], float] = time.time,
        tz: tzinfo = timezone.utc,
        store: StateStore | str | None = None,
        estimate: Estimate = "bound",
        extra_prompt_tokens: int = 0,
        lease: float = 300.0,
        forget_after: float | None = None,
    ) -> None:
        self.limit = check_limit(limit)
        check_choices(window, scope, on_exceeded, estimate)
        self.window: Window = window
        self.scope = scope
        self.thresholds = check_thresholds(thresholds)
        self.on_threshold = on_threshold
        self.on_exceeded = on_exceeded
        self.strict = strict
        self.estimate: Estimate = estimate
        self.extra_prompt_tokens = check_extra_tokens(extra_prompt_tokens)
        self.lease = check_lease(lease)
        places = max(2, -self.limit.normalize().as_tuple().exponent)  # type: ignore[operator]
        self.name = name or f"{format_money(self.limit, places=places)}/{window}"
        self.key = check_key(key, self.name)
        self.clock = clock
        self.tz = tz
        self.store = resolve_store(store)
        forget = check_forget_after(forget_after)
        self._ttl = window_ttl(window) if forget is None else forget
        self._lock = threading.Lock()
        self._runs: dict[str, set[str]] = {}
        self._scopes: set[str] = set()
        self._overrun_warned = False
        self._span = WindowSpan(window, tz)

    # -- scope and window -------------------------------------------------------
    def scope_key(
        self,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """The scope value of a run: "global", or its value of the scope key."""
        return scope_value(self.scope, tags, metadata)

    def store_key(self, scope_key: str = "global") -> str:
        """The budget's key in its store: `key` (or name) and the scope value."""
        return f"{self.key}/{scope_key}"

    def end_run(self, run_key: str) -> None:
        """Forget the spend of a finished top-level run (`"run"` windows only)."""
        if self.window != "run":
            return
        with self._lock:
            scopes = self._runs.pop(run_key, set())
        for scope_key in scopes:
            try:
                self.store.forget(self.store_key(scope_key), run_key)
            except Exception:  # the window expires with its TTL anyway
                _logger.debug("Budget %r: could not forget run %s", self.name, run_key)

    # -- reservations -----------------------------------------------------------
    def reserve(
        self,
        amount: Decimal | None,
        scope_key: str = "global",
        *,
        run_key: str | None = None,
        model: str | None = None,
    ) -> Reservation:
        """Atomically reserve `amount` (a call's worst case) or raise.

        `amount=None` means the call is unpriced: refused when `strict`, else a
        zero reservation.

        Raises:
            BudgetExceededError: the amount does not fit; nothing was reserved.
            UnpricedCallError: `amount` is `None` and the budget is strict.
            BudgetStoreError: the state store cannot be reached (fail closed).
        """
        if amount is None:
            if self.strict:
                raise UnpricedCallError(self.name, [model or "<unknown>"], self.window)
            amount = _ZERO
        models = (model,) if model else ()
        return self._reserve(amount, scope_key, run_key, models, model)

    def reserve_routes(
        self,
        routes: Sequence[Route],
        scope_key: str = "global",
        *,
        run_key: str | None = None,
        combine: Literal["max", "sum"] = "max",
        lease: float | None = None,
    ) -> Reservation:
        """Reserve for a call that may use any of `routes` (model, worst-case cost).

        `combine="max"`: the call is billed on one route at most (the maximum
        is reserved); `"sum"`: it may be billed on every route (each cost
        already covers all of that route's attempts), so the sum is reserved.
        If that does not fit and `on_exceeded="downgrade"`, the most expensive
        routes are dropped until the rest fits, and `Reservation.models` names
        the routes left. Unpriced routes reserve nothing (refused when `strict`).
        `lease` lengthens the budget's lease for a call known to last longer.
        """
        if not routes:
            raise ValueError("reserve_routes needs at least one route")
        priced = [c for _, c in routes if c is not None]
        if self.strict and len(priced) < len(routes):
            unpriced = [m for m, c in routes if c is None]
            raise UnpricedCallError(self.name, unpriced, self.window)
        names = tuple([m for m, _ in routes])
        priced.sort()  # route_choices' first choice, without the others
        try:
            return self._reserve(
                combined(priced, combine), scope_key, run_key, names, names[0], lease
            )
        except BudgetExceededError:
            if self.on_exceeded != "downgrade" or len(priced) < 2:
                raise
        candidates = route_choices(routes, combine)
        for i, (amount, allowed) in enumerate(candidates[1:], 2):
            try:
                return self._reserve(
                    amount, scope_key, run_key, allowed, allowed[0], lease
                )
            except BudgetExceededError:
                if i == len(candidates):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _reserve(
        self,
        amount: Decimal,
        scope_key: str,
        run_key: str | None,
        models: tuple[str, ...],
        model: str | None,
        lease: float | None = None,
    ) -> Reservation:
        if amount < 0 or not amount.is_finite():
            raise ValueError(f"cannot reserve {amount!r}")
        wid = self._window_id(run_key)
        self._remember(scope_key, run_key)
        if amount == 0:
            return Reservation(self, None, amount, scope_key, wid, models)
        try:
            held = self.store.reserve(
                self.store_key(scope_key),
                wid,
                amount,
                self.limit,
                max(self.lease, lease or 0.0),
                window_ttl=self._ttl,
            )
        except StateStoreUnavailableError as exc:
            raise BudgetStoreError(self.name, self.window, model, exc) from exc
        except Exception as exc:
            raise BudgetCheckError(self.name, model, exc, self.window) from exc
        if isinstance(held, Refusal):
            raise self._refusal(held, scope_key, model)
        return Reservation(self, held, amount, scope_key, wid, models)

    def _remember(self, scope_key: str, run_key: str | None) -> None:
        if scope_key in self._scopes and self.window != "run":
            return  # already known (the usual case): no lock
        with self._lock:
            if len(self._scopes) < 10_000:
                self._scopes.add(scope_key)
            if self.window == "run" and run_key is not None:
                if len(self._runs) > 10_000:  # runs that never ended: forget them
                    self._runs.clear()
                self._runs.setdefault(run_key, set()).add(scope_key)

    def _refusal(
        self, refused: Refusal, scope_key: str, model: str | None
    ) -> BudgetExceededError:
        boundary = next_boundary(self.window, self.clock(), self.tz)
        return BudgetExceededError(
            budget=self.name,
            limit=self.limit,
            spent=refused.spent,
            reserved=refused.reserved,
            requested=refused.amount,
            window=self.window,
            window_id=refused.window_id,
            scope=self.scope,
            scope_key=scope_key,
            model=model,
            resets_at=boundary.isoformat() if boundary else None,
        )

    def _finish(self, res: Reservation, actual: Decimal | None) -> None:
        with self._lock:
            if res._done:
                return
            res._done = True
        if actual is not None and actual > 0:
            self._charge(res, actual)
        elif res.held is not None:
            try:
                self.store.release(res.held)
            except Exception:  # the lease frees it anyway
                _logger.warning("Budget %r: release failed", self.name, exc_info=True)
        if self.window == "run":
            with self._lock:
                ended = res.window_id not in self._runs
            if ended:  # settled after its run ended: forget the run's window again
                self._runs[res.window_id] = {res.scope_key}
                self.end_run(res.window_id)

    def _charge(self, res: Reservation, actual: Decimal) -> None:
        try:
            if res.held is not None:
                done = self.store.settle(res.held, actual)
                before, after = done.spent_before, done.spent
            else:
                usage = self.store.charge(
                    self.store_key(res.scope_key),
                    res.window_id,
                    actual,
                    window_ttl=self._ttl,
                )
                before, after = usage.spent - actual, usage.spent
        except Exception:
            _logger.exception(
                "Budget %r: could not record %s of spend", self.name, actual
            )
            return
        if actual > res.amount:
            self._warn_overrun(actual, res.amount)
        if self.thresholds and before is not None and after is not None:
            self._thresholds(before, after, res)

    def _extend(self, res: Reservation) -> None:
        if res._done or res.held is None:
            return
        try:
            renewed = self.store.extend(
                res.held, max(self.lease, res.held.lease_seconds)
            )
        except Exception:
            _logger.debug("Budget %r: lease renewal failed", self.name, exc_info=True)
            return
        if renewed is not None:
            res.held = renewed

    def _warn_overrun(self, actual: Decimal, reserved: Decimal) -> None:
        if not self._overrun_warned:
            self._overrun_warned = True
            warn_overrun(self.name, self.window, self.estimate, actual, reserved)

    def _thresholds(self, before: Decimal, after: Decimal, res: Reservation) -> None:
        for t in self.thresholds:
            if before < self.limit * Decimal(str(t)) <= after:
                event = ThresholdEvent(
                    self.name,
                    t,
                    after,
                    self.limit,
                    res.scope_key,
                    self.window,
                    res.window_id,
                )
                fire_threshold(event, self.on_threshold)

    def __repr__(self) -> str:
        return (
            f"Budget(limit={self.limit}, window={self.window!r}, scope={self.scope!r}, "
            f"on_exceeded={self.on_exceeded!r}, strict={self.strict}, "
            f"estimate={self.estimate!r}, store={self.store.url!r})"
        )
