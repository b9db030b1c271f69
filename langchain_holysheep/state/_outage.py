"""The outage policy of a shared store, its alert event, and the replay queue."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_holysheep.state._errors import StateStoreUnavailableError
from langchain_holysheep.state._requests import Charge, Finish

__all__ = ["OnStoreError", "Outage", "log_alert", "StoreErrorPolicy", "StoreEvent"]

logger = logging.getLogger("langchain_holysheep.state._guarded")

OnStoreError = Literal["raise", "local"]
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


def log_alert(event: StoreEvent) -> None:
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


class Outage:
    """Whether a shared store is down, when to try it again, and queued spend.

    Thread-safe. `failed` starts an outage (and alerts once), `should_try`
    paces the attempts to reach the store, `end` leaves the outage once
    every queued settle and charge has been replayed.

    Args:
        url: the store's URL (for alerts and logs).
        on_alert: called with a `StoreEvent` when an outage starts and ends.
        retry_interval: seconds between attempts to reach a down store.
        max_pending: settles and charges kept for replay.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        url: str,
        on_alert: Callable[[StoreEvent], Any],
        retry_interval: float,
        max_pending: int,
        clock: Callable[[], float],
    ) -> None:
        self.url = url
        self.on_alert = on_alert
        self.retry_interval = retry_interval
        self._mono = clock
        self._lock = threading.Lock()
        self.down_at: float | None = None
        self.reason = self.hint = ""
        self._next_try = 0.0
        self.pending: deque[Finish | Charge] = deque()
        self._max_pending = max_pending
        self._dropped = 0
        self._replayed = 0

    def should_try(self, *, now: bool = False) -> bool:
        """Whether a call may try the store (`now`: regardless of the pace)."""
        if self.down_at is None:
            return True
        with self._lock:
            if now:
                self._next_try = 0.0
            mono = self._mono()
            if self.down_at is None or mono >= self._next_try:
                self._next_try = mono + self.retry_interval
                return True
        return False

    def failed(self, exc: StateStoreUnavailableError) -> bool:
        """The store did not answer; `True` if this starts an outage."""
        with self._lock:
            first = self.down_at is None
            mono = self._mono()
            if first:
                self.down_at = mono
                self.reason, self.hint = exc.reason, exc.hint
            self._next_try = mono + self.retry_interval
        if first:
            self.alert(StoreEvent(self.url, False, exc.reason))
        return first

    def take_pending(self) -> list[Finish | Charge]:
        """Every queued update, oldest first (the queue is emptied)."""
        with self._lock:
            items = list(self.pending)
            self.pending.clear()
        return items

    def replayed(self, done: int, rest: list[Finish | Charge]) -> None:
        """`done` updates were replayed; `rest` go back to the queue's front."""
        with self._lock:
            self.pending.extendleft(reversed(rest))
            self._replayed += done

    def end(self) -> None:
        """The store answered: leave the outage (unless updates still wait)."""
        with self._lock:
            if self.down_at is None or self.pending:
                return
            down_for = self._mono() - self.down_at
            replayed, self._replayed = self._replayed, 0
            self.down_at = None
        self.alert(StoreEvent(self.url, True, down_for=down_for, replayed=replayed))

    def queue(self, item: Finish | Charge) -> None:
        """Keep a settle or charge for replay (the oldest goes when full)."""
        with self._lock:
            if len(self.pending) >= self._max_pending:
                self.pending.popleft()
                self._dropped += 1
                logger.error(
                    "State store %s: %d queued spend updates dropped (the outage "
                    "outlasted max_pending=%d)",
                    self.url,
                    self._dropped,
                    self._max_pending,
                )
            self.pending.append(item)

    def alert(self, event: StoreEvent) -> None:
        """Call the alert hook (its errors are logged, never raised)."""
        try:
            self.on_alert(event)
        except Exception:  # an alert hook must never break a call
            logger.exception("state store alert hook failed")
