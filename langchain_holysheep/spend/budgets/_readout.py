"""What a budget has spent and holds, read from its state store."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import tzinfo
from decimal import Decimal

from langchain_holysheep.spend.budgets._windows import Window, WindowSpan
from langchain_holysheep.state import StateStore

__all__ = ["BudgetReadout"]

_ZERO = Decimal(0)


class BudgetReadout:
    """The read side of a `Budget`: spend, reservations and what is left.

    Every read asks the store, so it shows what every process sharing the
    store has spent in the current window.
    """

    limit: Decimal
    store: StateStore
    window: Window
    tz: tzinfo
    clock: Callable[[], float]
    _lock: threading.Lock
    _scopes: set[str]
    _span: WindowSpan

    def store_key(self, scope_key: str = "global") -> str:  # pragma: no cover
        raise NotImplementedError

    def _window_id(self, run_key: str | None) -> str:
        """The id of the current window (`run_key` for `"run"` windows)."""
        if self.window == "run":
            return run_key or "run"
        span = self._span
        if span.tz is not self.tz or span.window != self.window:  # set anew
            span = self._span = WindowSpan(self.window, self.tz)
        return span.id(self.clock())

    def _usage(self, scope_key: str, run_key: str | None) -> tuple[Decimal, Decimal]:
        usage = self.store.usage(self.store_key(scope_key), self._window_id(run_key))
        return usage.spent, usage.reserved

    def spent(
        self, scope_key: str = "global", *, run_key: str | None = None
    ) -> Decimal:
        """Settled spend in the current window of `scope_key` (read from the store)."""
        return self._usage(scope_key, run_key)[0]

    def reserved(
        self, scope_key: str = "global", *, run_key: str | None = None
    ) -> Decimal:
        """Amount reserved by calls in flight in the current window of `scope_key`."""
        return self._usage(scope_key, run_key)[1]

    def remaining(
        self, scope_key: str = "global", *, run_key: str | None = None
    ) -> Decimal:
        """What is left: limit - spent - reserved (never below 0)."""
        spent, reserved = self._usage(scope_key, run_key)
        return max(self.limit - spent - reserved, _ZERO)

    def reset(self) -> None:
        """Forget the current window's spend of every scope value this process used.

        Reservations in flight still settle; with a shared store this resets
        the window for every process.
        """
        with self._lock:
            scopes = list(self._scopes)
        wid = self._window_id(None)
        for scope_key in scopes:
            self.store.forget(self.store_key(scope_key), wid)
