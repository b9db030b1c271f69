"""`CircuitBreaker`: stop calling a route that keeps failing, probe it later.

States: **closed** (calls go through; failures are counted in a rolling time
window), **open** (calls are refused without a request until `cooldown` has
passed), **half-open** (exactly one probe call goes through: success closes the
breaker, failure re-opens it for another cooldown).

`allow()` is O(1) and lock-free on the hot paths (closed, or open and cooling
down); transitions take a `threading.Lock` for a few instructions, so one
breaker is safe to share between threads and asyncio tasks. Listeners
registered with `on_transition` are called after the lock is released.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from langchain_holysheep.resilience._deadline import Clock
from langchain_holysheep.resilience._listeners import Listeners
from langchain_holysheep.state import BreakerSpec

__all__ = [
    "BreakerConfig",
    "BreakerKey",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "Transition",
]

logger = logging.getLogger(__name__)

BreakerKey = tuple[str, str]
"""`(base_url, model)`; `(base_url, "*")` is the gateway-wide breaker."""


class BreakerState(str, Enum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_CLOSED, _OPEN, _HALF_OPEN = (
    BreakerState.CLOSED,
    BreakerState.OPEN,
    BreakerState.HALF_OPEN,
)

LEGAL_TRANSITIONS: frozenset[tuple[BreakerState, BreakerState]] = frozenset(
    {
        (_CLOSED, _OPEN),
        (_OPEN, _HALF_OPEN),
        (_HALF_OPEN, _CLOSED),
        (_HALF_OPEN, _OPEN),
        (_OPEN, _CLOSED),  # reset()
    }
)
"""Every transition a breaker can make (`reset()` closes from any state)."""


@dataclass(frozen=True)
class BreakerConfig(BreakerSpec):
    """When a breaker opens and how long it stays open.

    Args:
        failure_threshold: failures in the window that open the breaker
            (`None`: use `failure_rate` only).
        failure_rate: failure ratio in the window that opens it (`None`: use
            `failure_threshold` only). When both are set, BOTH must hold: the
            default (5 failures and at least half of the window's calls) opens
            a dead model after 5 calls but never a busy model whose error rate
            is merely a few per cent.
        minimum_requests: no opening before this many calls in the window.
        window: length of the rolling window, seconds.
        buckets: time buckets of the window (memory is fixed: 3 ints each).
        cooldown: seconds open before a half-open probe.
        probe_timeout: a probe that has not reported after this long is
            considered lost and another probe is allowed (`None`: never).
    """

    probe_timeout: float | None = 300.0


@dataclass(frozen=True)
class BreakerSnapshot:
    """A consistent view of one breaker (for dashboards, logs and tests)."""

    key: BreakerKey
    state: BreakerState
    failures: int
    successes: int
    opened_at: float | None
    retry_in_s: float
    probe_in_flight: bool
    trips: int
    last_failure: str

    @property
    def requests(self) -> int:
        """Calls counted in the window."""
        return self.failures + self.successes


@dataclass(frozen=True)
class Transition:
    """A state change, as passed to `on_transition` listeners."""

    key: BreakerKey
    old: BreakerState
    new: BreakerState
    reason: str
    at: float


Listener = Callable[[Transition], Any]


class CircuitBreaker:
    """A circuit breaker for one key (`(base_url, model)`).

    Args:
        key: what the breaker protects.
        config: thresholds and timings (default `BreakerConfig()`: 5 failures
            out of at least 5 calls in 60 s open it for 60 s).
        clock: monotonic clock (injectable in tests).

    Example:
        ```python
        breaker = CircuitBreaker(("https://api.holysheep.ai/v1", "gpt-4.1"))
        if breaker.allow():
            try:
                result = call()
            except Exception:
                breaker.record_failure("server error")
                raise
            breaker.record_success()
        breaker.on_transition(lambda t: print(t.key, t.old, "->", t.new))
        ```
    """

    def __init__(
        self,
        key: BreakerKey = ("", ""),
        config: BreakerConfig | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.key = key
        self.config = config or BreakerConfig()
        self._clock: Clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._listeners = Listeners()
        n = self.config.buckets
        self._width = self.config.window / n
        self._ids = [-1] * n
        self._ok = [0] * n
        self._fail = [0] * n
        self._state = _CLOSED
        self._retry_at = math.inf
        self._opened_at: float | None = None
        self._probe_started: float | None = None
        self._trips = 0
        self._last_failure = ""

    @property
    def clock(self) -> Clock:
        """The breaker's clock."""
        return self._clock

    # -- observation ----------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """The current state."""
        return self._state

    def snapshot(self) -> BreakerSnapshot:
        """A consistent copy of the breaker's state and window counts."""
        with self._lock:
            now = self._clock()
            ok, fail = self._totals(now)
            retry_in = max(self._retry_at - now, 0.0) if self._state is _OPEN else 0.0
            return BreakerSnapshot(
                key=self.key,
                state=self._state,
                failures=fail,
                successes=ok,
                opened_at=self._opened_at,
                retry_in_s=retry_in,
                probe_in_flight=self._probe_started is not None,
                trips=self._trips,
                last_failure=self._last_failure,
            )

    def retry_in(self) -> float:
        """Seconds until an open breaker allows a probe (0 if not open)."""
        if self._state is not _OPEN:
            return 0.0
        return max(self._retry_at - self._clock(), 0.0)

    def on_transition(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(Transition)` on every state change; returns a remover."""
        return self._listeners.add(listener)

    def rejects(self) -> bool:
        """Whether `allow()` would refuse now (open, cooling down); claims nothing."""
        return self._state is _OPEN and self._clock() < self._retry_at

    # -- the hot path ---------------------------------------------------------------
    def allow(self) -> bool:
        """Whether a call may go through now (a half-open probe is claimed).

        A caller that got `True` must report `record_success()`,
        `record_failure()` or `release()`.
        """
        state = self._state
        if state is _CLOSED:
            return True
        if state is _OPEN and self._clock() < self._retry_at:
            return False
        fired: Transition | None = None
        with self._lock:
            now = self._clock()
            if self._state is _CLOSED:
                return True
            if self._state is _OPEN:
                if now < self._retry_at:
                    return False
                fired = self._move(_HALF_OPEN, "cooldown elapsed", now)
                self._probe_started = now
                allowed = True
            else:  # half-open
                started = self._probe_started
                timeout = self.config.probe_timeout
                lost = (
                    started is not None
                    and timeout is not None
                    and now - started >= timeout
                )
                allowed = started is None or lost
                if allowed:
                    self._probe_started = now
        if fired is not None:
            self._notify(fired)
        return allowed

    def record_success(self) -> None:
        """A call succeeded (closes a half-open breaker)."""
        if self._state is _CLOSED:
            now = self._clock()
            with self._lock:
                if self._state is _CLOSED:
                    self._ok[self._slot(now)] += 1
                    return
        self._change(self._succeeded)

    def record_failure(self, reason: str = "failure") -> None:
        """A call failed; may open the breaker."""
        self._change(lambda now: self._failed(reason, now))

    def release(self) -> None:
        """Give back a half-open probe that ended with no verdict (cancelled)."""
        with self._lock:
            if self._state is _HALF_OPEN:
                self._probe_started = None

    # -- control --------------------------------------------------------------------
    def force_open(self, reason: str = "forced open") -> None:
        """Open now (or restart the cooldown of an open breaker)."""
        self._change(lambda now: self._forced_open(reason, now))

    def reset(self) -> None:
        """Close the breaker and forget its window."""
        self._change(self._reset)

    # -- changes: made with the lock held, their transition reported after it -------
    def _change(self, step: Callable[[float], Transition | None]) -> None:
        """Take `step` now under the lock; then tell the listeners what it changed."""
        with self._lock:
            fired = step(self._clock())
        if fired is not None:
            self._notify(fired)

    def _succeeded(self, now: float) -> Transition | None:
        if self._state is _HALF_OPEN:
            self._clear_window()
            self._probe_started = None
            return self._move(_CLOSED, "probe succeeded", now)
        if self._state is _CLOSED:
            self._ok[self._slot(now)] += 1
        return None

    def _failed(self, reason: str, now: float) -> Transition | None:
        self._last_failure = reason
        if self._state is _CLOSED:
            self._fail[self._slot(now)] += 1
            if self._should_trip(now):
                return self._open(f"{reason}: failure threshold reached", now)
        elif self._state is _HALF_OPEN:
            return self._open(f"{reason}: probe failed", now)
        return None

    def _forced_open(self, reason: str, now: float) -> Transition | None:
        self._last_failure = reason
        if self._state is _OPEN:
            self._retry_at = now + self.config.cooldown
            return None
        return self._open(reason, now)

    def _reset(self, now: float) -> Transition | None:
        self._clear_window()
        self._probe_started = None
        self._retry_at = math.inf
        self._opened_at = None
        if self._state is _CLOSED:
            return None
        return self._move(_CLOSED, "reset", now)

    # -- internals (lock held) ------------------------------------------------------
    def _slot(self, now: float) -> int:
        bucket = int(now // self._width)
        i = bucket % len(self._ids)
        if self._ids[i] != bucket:
            self._ids[i] = bucket
            self._ok[i] = 0
            self._fail[i] = 0
        return i

    def _totals(self, now: float) -> tuple[int, int]:
        oldest = int(now // self._width) - len(self._ids)
        ok = fail = 0
        for i, bucket in enumerate(self._ids):
            if bucket > oldest:
                ok += self._ok[i]
                fail += self._fail[i]
        return ok, fail

    def _should_trip(self, now: float) -> bool:
        ok, fail = self._totals(now)
        total = ok + fail
        cfg = self.config
        if total < cfg.minimum_requests:
            return False
        by_count = cfg.failure_threshold is None or fail >= cfg.failure_threshold
        by_rate = cfg.failure_rate is None or fail / total >= cfg.failure_rate
        return by_count and by_rate

    def unhealthy(self) -> bool:
        """Open, or failing at least half of its recent calls."""
        with self._lock:
            if self._state is _OPEN:
                return True
            ok, fail = self._totals(self._clock())
        return fail >= 1 and fail >= ok

    def _clear_window(self) -> None:
        n = len(self._ids)
        self._ids = [-1] * n
        self._ok = [0] * n
        self._fail = [0] * n

    def _open(self, reason: str, now: float) -> Transition:
        self._trips += 1
        self._opened_at = now
        self._retry_at = now + self.config.cooldown
        self._probe_started = None
        return self._move(_OPEN, reason, now)

    def _move(self, new: BreakerState, reason: str, now: float) -> Transition:
        old = self._state
        self._state = new
        return Transition(self.key, old, new, reason, now)

    def _notify(self, transition: Transition) -> None:
        self._listeners.notify(transition)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.key!r}, state={self._state.value})"
