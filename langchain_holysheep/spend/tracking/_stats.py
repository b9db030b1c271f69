"""Bounded-memory statistics: log-bucket histograms and sliding-window sums.

`LogHistogram` keeps a fixed array of logarithmic buckets (like HDR histogram or
DDSketch): quantiles within ~1 % relative error over 1 µs .. 3 hours (in ms),
whatever the number of samples. `RecentHistogram` covers only the last few
minutes; `SlidingCounter` sums values over the last hour in one-minute slots.
None of them are thread-safe: the owner (the tracker) locks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

__all__ = ["LogHistogram", "RecentHistogram", "SlidingCounter", "bucket_of"]

_ACCURACY = 0.01  # relative error bound of a bucket's representative value
_GAMMA = (1 + _ACCURACY) / (1 - _ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_MIN = 1e-3  # smallest distinguished value; below it: the zero bucket
_MAX = 1e7
_OFFSET = math.floor(math.log(_MIN) / _LOG_GAMMA)
_BUCKETS = math.ceil(math.log(_MAX) / _LOG_GAMMA) - _OFFSET + 2


def _index(value: float, log: Callable[[float], float] = math.log) -> int:
    if value < _MIN:
        return 0
    if value >= _MAX:
        return _BUCKETS - 1
    index = math.ceil(log(value) / _LOG_GAMMA) - _OFFSET
    return index if index < _BUCKETS else _BUCKETS - 1


def bucket_of(value: float | None) -> int:
    """The bucket of a value in every `LogHistogram` (-1: none, not counted)."""
    return _index(value) if value is not None and value >= 0 else -1


def _value(index: int) -> float:
    if index == 0:
        return 0.0
    upper = _GAMMA ** (index + _OFFSET)
    return 2 * upper / (_GAMMA + 1)  # relative error <= _ACCURACY in the bucket


class LogHistogram:
    """A fixed-size histogram of non-negative values with ~1 % relative error.

    Memory is one array of ~2,000 counters, allocated on the first sample.
    Quantiles use the nearest-rank definition and are clamped to the exact
    min and max.
    """

    __slots__ = ("_counts", "count", "max", "min", "total")

    def __init__(self) -> None:
        self._counts: list[int] | None = None
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float, bucket: int = -1) -> None:
        """Record one value (negative and NaN values are ignored).

        `bucket` is the value's `bucket_of`, when the caller has it already.
        """
        if not value >= 0:
            return
        counts = self._counts
        if counts is None:
            counts = self._counts = [0] * _BUCKETS
        counts[bucket if bucket >= 0 else _index(value)] += 1
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def merge(self, other: LogHistogram) -> None:
        """Add `other`'s samples to this histogram."""
        if other._counts is None:
            return
        if self._counts is None:
            self._counts = [0] * _BUCKETS
        for i, n in enumerate(other._counts):
            if n:
                self._counts[i] += n
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def copy(self) -> LogHistogram:
        """An independent copy."""
        out = LogHistogram()
        out.merge(self)
        return out

    def quantile(self, q: float) -> float | None:
        """The `q`-quantile (0 <= q <= 1), or `None` without samples."""
        if self._counts is None or self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank >= self.count:
            return self.max
        seen = 0
        for i, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                return min(max(_value(i), self.min), self.max)
        return self.max

    def quantiles(self, qs: Iterable[float] = (0.5, 0.95, 0.99)) -> list[float | None]:
        """Several quantiles at once."""
        return [self.quantile(q) for q in qs]

    @property
    def mean(self) -> float | None:
        """The exact mean, or `None` without samples."""
        return self.total / self.count if self.count else None


class RecentHistogram:
    """A histogram of the last `period` to `2 * period` seconds.

    Two `LogHistogram`s rotate every `period` seconds; a snapshot merges them.
    """

    def __init__(
        self, period: float = 300.0, clock: Callable[[], float] = time.monotonic
    ):
        self.period = period
        self.clock = clock
        self._epoch = math.floor(clock() / period)
        self._current = LogHistogram()
        self._previous = LogHistogram()

    def _rotate(self, epoch: int) -> None:
        if epoch <= self._epoch:
            return
        self._previous = self._current if epoch == self._epoch + 1 else LogHistogram()
        self._current = LogHistogram()
        self._epoch = epoch

    def add(self, value: float) -> None:
        """Record one value, now."""
        self.add_at(value, self.clock())

    def add_at(self, value: float, when: float, bucket: int = -1) -> None:
        """Record one value taken at `when` (a `clock()` reading).

        A value older than the two periods kept is dropped. `bucket`: as
        `LogHistogram.add` takes it.
        """
        epoch = math.floor(when / self.period)
        self._rotate(epoch)
        if epoch == self._epoch:
            self._current.add(value, bucket)
        elif epoch == self._epoch - 1:
            self._previous.add(value, bucket)

    def snapshot(self) -> LogHistogram:
        """The recent samples as one histogram."""
        self._rotate(math.floor(self.clock() / self.period))
        out = self._previous.copy()
        out.merge(self._current)
        return out


class SlidingCounter:
    """Sums of named quantities over the last `span` seconds, in `slots` slots.

    Amounts may be `int`, `float` or `Decimal` (money stays `Decimal`).
    """

    def __init__(
        self,
        span: float = 3600.0,
        slots: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.width = span / slots
        self.slots = slots
        self.clock = clock
        self._ring: list[dict[str, Any]] = [{} for _ in range(slots)]
        self._stamp: list[int] = [-1] * slots

    def add(self, **amounts: int | float | Decimal) -> None:
        """Add amounts (by name) at the current time."""
        self.add_at(self.clock(), amounts)

    def add_at(self, when: float, amounts: Mapping[str, int | float | Decimal]) -> None:
        """Add amounts (by name) taken at `when` (a `clock()` reading).

        Amounts older than the span are dropped.
        """
        tick = math.floor(when / self.width)
        i = tick % self.slots
        stamp = self._stamp[i]
        if stamp != tick:
            if stamp > tick:  # the slot holds a later tick: `when` is too old
                return
            self._ring[i] = {}
            self._stamp[i] = tick
        slot = self._ring[i]
        for name, amount in amounts.items():
            slot[name] = slot.get(name, 0) + amount

    def totals(self) -> dict[str, Any]:
        """The sums over the span."""
        tick = math.floor(self.clock() / self.width)
        out: dict[str, Any] = {}
        for i in range(self.slots):
            if tick - self.slots < self._stamp[i] <= tick:
                for name, amount in self._ring[i].items():
                    out[name] = out.get(name, 0) + amount
        return out
