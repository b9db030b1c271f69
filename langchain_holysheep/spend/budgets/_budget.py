"""`Budget`: a spending cap enforced by reservations, so it cannot be overrun.

Every call reserves its worst-case cost *before* anything is sent; the check and
the reservation happen under one lock, so concurrent calls (threads or asyncio
tasks) can never together commit more than the limit. When the call ends the
reservation settles to the real cost (or is released on failure), freeing the
difference for other calls.

Unpriced calls: a model with no known price cannot be reserved for. By default
such a call reserves nothing (the price book warns once per model) and its
spend is reported as unpriced, not counted against the budget; with
`strict=True` it is refused with `UnpricedCallError` before it is sent.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.spend.budgets._errors import (
    BudgetError,
    BudgetExceededError,
    ThresholdEvent,
    UnpricedCallError,
)
from langchain_holysheep.spend.budgets._reservation import Reservation, WindowState
from langchain_holysheep.spend.budgets._windows import (
    WINDOWS,
    Window,
    next_boundary,
    window_id,
)
from langchain_holysheep.spend.pricing._book import format_money

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
#: "run" windows kept at most (oldest idle ones are forgotten first).
MAX_RUN_WINDOWS = 10_000


def _limit(value: Decimal | str | int | float) -> Decimal:
    if isinstance(value, bool):
        raise ConfigurationError(
            f"Budget limit must be an amount in USD, got {value!r}"
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigurationError(
                f"Budget limit must be a finite amount, got {value!r}"
            )
        value = str(value)
    try:
        amount = Decimal(value) if isinstance(value, (str, int, Decimal)) else None
    except InvalidOperation:
        amount = None
    if amount is None:
        raise ConfigurationError(
            f"Budget limit must be an amount in USD such as Decimal('5') or '5.00', "
            f"got {value!r}"
        )
    if not amount.is_finite() or amount <= 0:
        raise ConfigurationError(
            f"Budget limit must be a finite amount greater than 0 (USD), got {value!r}"
        )
    return amount


class Budget:
    """A spending cap in USD that concurrent calls cannot overrun.

    Args:
        limit: the cap in USD (`Decimal`, `str` or `int`; > 0).
        window: `"run"` (one top-level LangChain run), `"hour"`, `"day"`,
            `"month"` (calendar windows in `tz`, rolling over by wall clock) or
            `"total"` (never rolls over).
        scope: `"global"`, or a metadata key (`"user"`, `"thread_id"`, ...): each
            value of that key gets its own cap. The value is read from the run's
            metadata, else from a tag `"key:value"` / `"key=value"`; calls with
            no value share the bucket `""`.
        thresholds: fractions of the limit (0 < t <= 1) at which `on_threshold`
            fires, once per window and scope value, when settled spend crosses them.
        on_threshold: called with a `ThresholdEvent` (default: a log warning).
        on_exceeded: `"raise"` (`BudgetExceededError`, nothing sent) or
            `"downgrade"` (a router may use the cheapest route that fits).
        strict: refuse calls to unpriced models instead of letting them through.
        name: a label for messages and reports.
        clock: returns epoch seconds (injectable for tests).
        tz: the time zone of the calendar windows (default UTC).

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
        window: Window = "run",
        scope: str = "global",
        thresholds: Iterable[float] = (0.5, 0.8),
        on_threshold: Callable[[ThresholdEvent], Any] | None = None,
        on_exceeded: Literal["raise", "downgrade"] = "raise",
        *,
        strict: bool = False,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
        tz: tzinfo = timezone.utc,
    ) -> None:
        self.limit = _limit(limit)
        if window not in WINDOWS:
            raise ConfigurationError(
                f"Budget window must be one of {', '.join(WINDOWS)}, got {window!r}"
            )
        if not isinstance(scope, str) or not scope:
            raise ConfigurationError(
                "Budget scope must be 'global' or a metadata key such as 'user', "
                f"got {scope!r}"
            )
        if on_exceeded not in ("raise", "downgrade"):
            raise ConfigurationError(
                f"on_exceeded must be 'raise' or 'downgrade', got {on_exceeded!r}"
            )
        marks = []
        for t in thresholds:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1:
                raise ConfigurationError(
                    f"Budget thresholds must be fractions in (0, 1], got {t!r}"
                )
            marks.append(float(t))
        self.window: Window = window
        self.scope = scope
        self.thresholds = tuple(sorted(set(marks)))
        self.on_threshold = on_threshold
        self.on_exceeded = on_exceeded
        self.strict = strict
        places = max(2, -self.limit.normalize().as_tuple().exponent)  # type: ignore[operator]
        self.name = name or f"{format_money(self.limit, places=places)}/{window}"
        self.clock = clock
        self.tz = tz
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], WindowState] = {}
        self._current: dict[str, str] = {}
        self._overrun_warned = False

    # -- scope and window -------------------------------------------------------
    def scope_key(
        self,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """The scope value of a run: "global", or its value of the scope key."""
        if self.scope == "global":
            return "global"
        if metadata and metadata.get(self.scope) is not None:
            return str(metadata[self.scope])
        for tag in tags or ():
            for sep in (":", "="):
                if tag.startswith(self.scope + sep):
                    return tag[len(self.scope) + 1 :]
        return ""

    def _window_id(self, run_key: str | None) -> str:
        if self.window == "run":
            return run_key or "run"
        return window_id(self.window, self.clock(), self.tz)

    def _state(self, scope_key: str, run_key: str | None) -> WindowState:
        """The live state of a scope's current window (caller holds the lock)."""
        wid = self._window_id(run_key)
        key = (scope_key, wid)
        state = self._states.get(key)
        if state is not None:
            return state
        if self.window == "run":
            self._evict_runs()
        else:
            old = self._current.get(scope_key)
            if old is not None and old != wid:
                stale = self._states.get((scope_key, old))
                if stale is not None and stale.inflight == 0:
                    del self._states[(scope_key, old)]
                elif stale is not None:
                    stale.ended = True
            self._current[scope_key] = wid
        state = self._states[key] = WindowState(wid)
        return state

    def _evict_runs(self) -> None:
        if len(self._states) < MAX_RUN_WINDOWS:
            return
        for key in [k for k, s in self._states.items() if s.inflight == 0][
            : max(len(self._states) - MAX_RUN_WINDOWS + 1, MAX_RUN_WINDOWS // 10)
        ]:
            del self._states[key]

    def end_run(self, run_key: str) -> None:
        """Forget the spend of a finished top-level run (`"run"` windows only)."""
        if self.window != "run":
            return
        with self._lock:
            for key in [k for k in self._states if k[1] == run_key]:
                state = self._states[key]
                if state.inflight == 0:
                    del self._states[key]
                else:
                    state.ended = True

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
        """
        if amount is None:
            if self.strict:
                raise UnpricedCallError(self.name, [model or "<unknown>"])
            amount = _ZERO
        models = (model,) if model else ()
        return self._reserve(amount, scope_key, run_key, models, model)

    def reserve_routes(
        self,
        routes: Sequence[tuple[str, Decimal | None]],
        scope_key: str = "global",
        *,
        run_key: str | None = None,
    ) -> Reservation:
        """Reserve for a call that may use any of `routes` (model, worst-case cost).

        Reserves the maximum over the routes. If that does not fit and
        `on_exceeded="downgrade"`, reserves for the cheapest route instead and
        narrows `Reservation.models` to the routes that fit in that amount.
        Unpriced routes reserve nothing (refused when `strict`).
        """
        if not routes:
            raise ValueError("reserve_routes needs at least one route")
        unpriced = [m for m, c in routes if c is None]
        if unpriced and self.strict:
            raise UnpricedCallError(self.name, unpriced)
        priced = [(m, c) for m, c in routes if c is not None]
        worst = max((c for _, c in priced), default=_ZERO)
        names = tuple(m for m, _ in routes)
        try:
            return self._reserve(worst, scope_key, run_key, names, names[0])
        except BudgetExceededError:
            if self.on_exceeded != "downgrade" or not priced:
                raise
        cheapest = min(c for _, c in priced)
        allowed = tuple(m for m, c in priced if c <= cheapest)
        return self._reserve(cheapest, scope_key, run_key, allowed, allowed[0])

    def _reserve(
        self,
        amount: Decimal,
        scope_key: str,
        run_key: str | None,
        models: tuple[str, ...],
        model: str | None,
    ) -> Reservation:
        if amount < 0 or not amount.is_finite():
            raise ValueError(f"cannot reserve {amount!r}")
        with self._lock:
            state = self._state(scope_key, run_key)
            if state.spent + state.reserved + amount > self.limit:
                spent, reserved = state.spent, state.reserved
                wid = state.window_id
            else:
                state.reserved += amount
                state.inflight += 1
                return Reservation(self, state, amount, scope_key, models)
        boundary = next_boundary(self.window, self.clock(), self.tz)
        raise BudgetExceededError(
            budget=self.name,
            limit=self.limit,
            spent=spent,
            reserved=reserved,
            requested=amount,
            window=self.window,
            window_id=wid,
            scope=self.scope,
            scope_key=scope_key,
            model=model,
            resets_at=boundary.isoformat() if boundary else None,
        )

    def _finish(self, res: Reservation, actual: Decimal | None) -> None:
        fire: list[ThresholdEvent] = []
        with self._lock:
            if res._done:
                return
            res._done = True
            state = res._state
            state.reserved -= res.amount
            state.inflight -= 1
            if actual is not None and actual > 0:
                state.spent += actual
                if actual > res.amount and not self._overrun_warned:
                    self._overrun_warned = True
                    _logger.warning(
                        "Budget %r: a call cost %s, more than its reservation %s "
                        "(the prompt estimate was low); spend may pass the limit. "
                        "Use safe_estimate=True for a hard bound. (Logged once.)",
                        self.name,
                        actual,
                        res.amount,
                    )
                for t in self.thresholds:
                    if t not in state.fired and state.spent >= self.limit * Decimal(
                        str(t)
                    ):
                        state.fired.add(t)
                        fire.append(
                            ThresholdEvent(
                                self.name,
                                t,
                                state.spent,
                                self.limit,
                                res.scope_key,
                                self.window,
                                state.window_id,
                            )
                        )
            key = (res.scope_key, state.window_id)
            if state.ended and state.inflight == 0 and self._states.get(key) is state:
                del self._states[key]
        for event in fire:
            self._fire(event)

    def _fire(self, event: ThresholdEvent) -> None:
        if self.on_threshold is None:
            _logger.warning(
                "Budget %r: %d%% of %s reached (spent %s, scope %r, window %s)",
                event.budget,
                round(event.threshold * 100),
                format_money(event.limit),
                format_money(event.spent),
                event.scope_key,
                event.window_id,
            )
            return
        try:
            self.on_threshold(event)
        except Exception:
            _logger.exception("Budget %r: on_threshold hook failed", self.name)

    # -- inspection -------------------------------------------------------------
    def _peek(self, scope_key: str, run_key: str | None) -> WindowState:
        with self._lock:
            wid = self._window_id(run_key)
            state = self._states.get((scope_key, wid)) or WindowState(wid)
            return WindowState(wid, state.spent, state.reserved, state.inflight)

    def spent(
        self, scope_key: str = "global", *, run_key: str | None = None
    ) -> Decimal:
        """Settled spend in the current window of `scope_key`."""
        return self._peek(scope_key, run_key).spent

    def reserved(
        self, scope_key: str = "global", *, run_key: str | None = None
    ) -> Decimal:
        """Amount reserved by calls in flight in the current window of `scope_key`."""
        return self._peek(scope_key, run_key).reserved

    def remaining(
        self, scope_key: str = "global", *, run_key: str | None = None
    ) -> Decimal:
        """What is left: limit - spent - reserved (never below 0)."""
        state = self._peek(scope_key, run_key)
        return max(self.limit - state.spent - state.reserved, _ZERO)

    def reset(self) -> None:
        """Forget all spend (reservations in flight still settle harmlessly)."""
        with self._lock:
            for state in self._states.values():
                state.ended = True
            self._states.clear()
            self._current.clear()

    def __repr__(self) -> str:
        return (
            f"Budget(limit={self.limit}, window={self.window!r}, scope={self.scope!r}, "
            f"on_exceeded={self.on_exceeded!r}, strict={self.strict})"
        )
