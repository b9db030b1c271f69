"""`SharedCircuitBreaker`: one breaker's state in a `StateStore`, for every process.

The breaker keeps the lock-free local state of `CircuitBreaker` as a cache, so
an open circuit is still skipped without a round trip. The cache adopts the
shared state at most every `sync_interval` seconds while the breaker is in use
(default 0.25 s: an opening in one process is seen by the others well within a
second). Failures, forced openings and resets go to the store at once; an
open breaker whose cooldown has passed asks the store for the one half-open
probe, which exactly one caller across all processes gets. Successes while
closed are counted locally and sent with the next sync (or before the next
failure, so the failure-rate rule always sees them): a healthy route costs
no round trip per call.

Listeners fire in the process whose operation changed the state, and in the
others when a sync sees the change; a change seen in one step (closed to
half-open) is reported as its legal steps (closed -> open -> half-open).
"""

from __future__ import annotations

import math
from dataclasses import replace

from langchain_holysheep.resilience._breaker import (
    BreakerConfig,
    BreakerKey,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    Transition,
)
from langchain_holysheep.resilience._deadline import Clock
from langchain_holysheep.state import BreakerView, StateStore

__all__ = ["DEFAULT_SYNC_INTERVAL", "SharedCircuitBreaker", "store_key"]

DEFAULT_SYNC_INTERVAL = 0.25
"""Seconds between two reads of a breaker's shared state by one process."""

_UNBOUNDED_PROBE = 3600.0
"""Claim of a probe with `probe_timeout=None`: a process killed while probing
must not block the breaker of every other process forever."""
_CLOSED, _OPEN, _HALF_OPEN = (
    BreakerState.CLOSED,
    BreakerState.OPEN,
    BreakerState.HALF_OPEN,
)


def store_key(key: object) -> str:
    """The store key of a breaker or limiter key (`"base_url|model"`)."""
    if isinstance(key, tuple):
        return "|".join(str(part) for part in key)
    return str(key)


def _steps(old: BreakerState, new: BreakerState) -> list[tuple[BreakerState, ...]]:
    """The legal transitions from `old` to `new` (closed -> half-open is two)."""
    if old is _CLOSED and new is _HALF_OPEN:
        return [(_CLOSED, _OPEN), (_OPEN, _HALF_OPEN)]
    return [(old, new)]


def _seen(new: BreakerState, view: BreakerView) -> str:
    """Why a state read from the store changed (another process moved it)."""
    if new is _OPEN:
        return f"{view.last_failure} (seen in the shared state)"
    return "seen in the shared state"


class SharedCircuitBreaker(CircuitBreaker):
    """A circuit breaker whose state lives in a `StateStore` (shared by processes).

    Args:
        key: what the breaker protects (`(base_url, model)`).
        config: thresholds and timings (the same `BreakerConfig` as a local
            breaker: the store applies the same rules).
        store: where the state lives (`SQLiteStore`, `RedisStore`, a
            `GuardedStore` around either, or a `MemoryStore` shared by
            several registries of one process).
        clock: monotonic clock of the local cache (injectable in tests).
        sync_interval: seconds between two reads of the shared state.

    Example:
        ```python
        store = open_store("redis://127.0.0.1:6379/0")
        breaker = SharedCircuitBreaker(("https://api.holysheep.ai/v1", "gpt-4.1"),
                                       store=store)
        if breaker.allow():  # a half-open probe is claimed fleet-wide
            ...
        ```
    """

    def __init__(
        self,
        key: BreakerKey = ("", ""),
        config: BreakerConfig | None = None,
        *,
        store: StateStore,
        clock: Clock | None = None,
        sync_interval: float = DEFAULT_SYNC_INTERVAL,
    ) -> None:
        super().__init__(key, config, clock=clock)
        self.store = store
        self.store_key = store_key(key)
        self.sync_interval = sync_interval
        self._next_sync = -math.inf
        self._pending = 0  # successes seen while closed, not yet in the store
        timeout = self.config.probe_timeout
        self._probe_ttl = _UNBOUNDED_PROBE if timeout is None else timeout

    # -- the shared state --------------------------------------------------------------
    def sync(self) -> BreakerView:
        """Send counted successes, adopt the shared state (listeners hear of it)."""
        with self._lock:
            pending, self._pending = self._pending, 0
        if pending:
            view = self.store.count_successes(self.store_key, self.config, pending)
        else:
            view = self.store.breaker(self.store_key, self.config)
        self._adopt(view, "")
        return view

    def _maybe_sync(self) -> None:
        if self._clock() >= self._next_sync:
            self.sync()

    def _adopt(self, view: BreakerView, reason: str) -> None:
        fired: list[Transition] = []
        with self._lock:
            now = self._clock()
            self._next_sync = now + self.sync_interval
            new = BreakerState(view.state)
            self._trips = view.trips
            self._last_failure = view.last_failure
            self._opened_at = view.opened_at
            self._retry_at = now + view.retry_in if new is _OPEN else math.inf
            if new is not _HALF_OPEN:
                self._probe_started = None
            old = self._state
            if new is not old:
                fired = [
                    Transition(self.key, a, b, reason or _seen(b, view), now)
                    for a, b in _steps(old, new)
                ]
                self._state = new
        for transition in fired:
            self._notify(transition)

    # -- observation -------------------------------------------------------------------
    def snapshot(self) -> BreakerSnapshot:
        """The shared state (read from the store now, this process's counts sent)."""
        view = self.sync()  # state, trips, last failure, opening: adopted from it
        return replace(
            super().snapshot(),
            failures=view.failures,
            successes=view.successes,
            retry_in_s=view.retry_in,
            probe_in_flight=view.probe_in_flight,
        )

    def rejects(self) -> bool:
        """Whether `allow()` would refuse now (open, cooling down); claims nothing."""
        self._maybe_sync()
        return self._state is _OPEN and self._clock() < self._retry_at

    def unhealthy(self) -> bool:
        """Open, or failing at least half of its recent calls (shared counts)."""
        snap = self.snapshot()
        if snap.state is _OPEN:
            return True
        return snap.failures >= 1 and snap.failures >= snap.successes

    # -- the hot path ------------------------------------------------------------------
    def allow(self) -> bool:
        """Whether a call may go through now (one half-open probe fleet-wide).

        A caller that got `True` must report `record_success()`,
        `record_failure()` or `release()`.
        """
        self._maybe_sync()
        state = self._state
        if state is _CLOSED:
            return True
        if state is _OPEN and self._clock() < self._retry_at:
            return False
        if self.store.try_claim_probe(self.store_key, self._probe_ttl):
            fired: list[Transition] = []
            with self._lock:
                now = self._clock()
                if self._state is not _HALF_OPEN:  # a stale closed cache too
                    steps = _steps(self._state, _HALF_OPEN)
                    why = {_OPEN: self._last_failure, _HALF_OPEN: "cooldown elapsed"}
                    fired = [Transition(self.key, a, b, why[b], now) for a, b in steps]
                    self._state = _HALF_OPEN
                self._probe_started = now
                self._next_sync = now + self.sync_interval
            for transition in fired:
                self._notify(transition)
            return True
        self.sync()  # someone else probes, or the state moved on
        return self._state is _CLOSED

    def record_success(self) -> None:
        """A call succeeded (closes a half-open breaker, fleet-wide)."""
        if self._state is _CLOSED:
            with self._lock:
                if self._state is _CLOSED:
                    self._pending += 1  # sent with the next sync
                    return
        view = self.store.record_success(self.store_key, self.config)
        self._adopt(view, "probe succeeded" if view.changed else "")

    def record_failure(self, reason: str = "failure") -> None:
        """A call failed; may open the breaker (for every process)."""
        with self._lock:
            pending, self._pending = self._pending, 0
        if pending:  # the rate rule weighs this failure against every success
            self.store.count_successes(self.store_key, self.config, pending)
        view = self.store.record_failure(self.store_key, self.config, reason)
        why = ""
        if view.changed and view.state == "open":
            probe = view.previous == "half_open"
            step = "probe failed" if probe else "failure threshold reached"
            why = f"{reason}: {step}"
        self._adopt(view, why)

    def release(self) -> None:
        """Give back a half-open probe this breaker claimed (no verdict)."""
        with self._lock:
            held = self._state is _HALF_OPEN and self._probe_started is not None
            self._probe_started = None
        if held:
            self.store.release_probe(self.store_key)

    # -- control -----------------------------------------------------------------------
    def force_open(self, reason: str = "forced open") -> None:
        """Open now for every process (or restart the cooldown)."""
        view = self.store.force_open(self.store_key, self.config, reason)
        self._adopt(view, reason)

    def reset(self) -> None:
        """Close the breaker for every process and forget its window."""
        with self._lock:
            self._pending = 0
        self.store.reset_breaker(self.store_key)
        self._adopt(self.store.breaker(self.store_key, self.config), "reset")

    def __repr__(self) -> str:
        return (
            f"SharedCircuitBreaker({self.key!r}, state={self._state.value}, "
            f"store={self.store.url!r})"
        )
