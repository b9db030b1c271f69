"""`Deadline`: one time budget shared by every retry and fallback of a call."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["Clock", "Deadline"]

Clock = Callable[[], float]
"""A monotonic clock returning seconds (`time.monotonic` by default)."""


class Deadline:
    """An overall time budget, measured on a monotonic clock.

    A call that retries and falls over creates one `Deadline` and hands it to
    every step: rate-limit waits, retry sleeps and per-route timeouts are all
    capped by what is left, so the call as a whole never overruns.

    Args:
        seconds: the budget; `None` means no deadline (`remaining()` is `inf`).
        clock: a monotonic clock (injectable in tests).

    Example:
        ```python
        deadline = Deadline(30.0)
        timeout = deadline.cap(20.0)  # min(20, what is left)
        if deadline.expired:
            ...
        ```
    """

    __slots__ = ("_clock", "_end", "_start", "seconds")

    def __init__(self, seconds: float | None = None, *, clock: Clock | None = None):
        if seconds is not None and (math.isnan(seconds) or seconds < 0):
            raise ValueError(f"deadline seconds must be >= 0 or None, got {seconds!r}")
        self._clock: Clock = clock or time.monotonic
        self.seconds = seconds
        self._start = self._clock()
        self._end = math.inf if seconds is None else self._start + seconds

    @classmethod
    def never(cls, *, clock: Clock | None = None) -> Deadline:
        """A deadline that never expires."""
        return cls(None, clock=clock)

    @property
    def clock(self) -> Clock:
        """The clock this deadline reads."""
        return self._clock

    @property
    def bounded(self) -> bool:
        """Whether there is a deadline at all."""
        return self._end != math.inf

    def now(self) -> float:
        """The current reading of this deadline's clock."""
        return self._clock()

    def remaining(self) -> float:
        """Seconds left (never negative; `inf` without a deadline)."""
        left = self._end - self._clock()
        return left if left > 0 else 0.0

    def elapsed(self) -> float:
        """Seconds since the deadline was created."""
        return self._clock() - self._start

    @property
    def expired(self) -> bool:
        """Whether no time is left."""
        return self._clock() >= self._end

    def cap(self, timeout: float | None) -> float | None:
        """`timeout` limited to what is left; `None` stays `None` if unbounded."""
        left = self._end - self._clock()
        if left == math.inf:
            return timeout
        left = max(left, 0.0)
        return left if timeout is None else min(timeout, left)

    def fits(self, seconds: float) -> bool:
        """Whether `seconds` from now is still before the deadline."""
        return self._clock() + seconds < self._end

    def __repr__(self) -> str:
        if not self.bounded:
            return "Deadline(None)"
        return f"Deadline({self.seconds!r}, remaining={self.remaining():.3f})"
