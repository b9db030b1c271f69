"""`RecentStats`: a tracker's activity over its recent window, for alert rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from langchain_holysheep.spend.tracking._stats import RecentHistogram, SlidingCounter
from langchain_holysheep.spend.tracking._summary import Percentiles

__all__ = ["RecentStats", "RecentWindow"]


@dataclass(frozen=True)
class RecentStats:
    """Recent activity, for alert rules.

    Attributes:
        calls / successes / failures / fallbacks / attempts / failed_attempts:
            counts over the last `span` seconds.
        cost: priced spend over the last `span` seconds (USD).
        span: the window in seconds (one hour by default).
        latency_ms: latency percentiles over the last few minutes.
    """

    calls: int
    successes: int
    failures: int
    fallbacks: int
    attempts: int
    failed_attempts: int
    cost: Decimal
    span: float
    latency_ms: Percentiles

    @property
    def success_rate(self) -> float | None:
        """Successes / calls, or `None` without calls."""
        return self.successes / self.calls if self.calls else None

    @property
    def error_rate(self) -> float | None:
        """Failed attempts / attempts, or `None` without attempts."""
        return self.failed_attempts / self.attempts if self.attempts else None

    @property
    def failover_rate(self) -> float | None:
        """Calls answered by a fallback / calls, or `None` without calls."""
        return self.fallbacks / self.calls if self.calls else None

    @property
    def cost_per_hour(self) -> Decimal:
        """Spend over the window, scaled to one hour."""
        return self.cost * Decimal(3600) / Decimal(str(self.span))


_COUNTS = ("calls", "successes", "failures", "fallbacks", "attempts", "failed_attempts")


class RecentWindow:
    """Counts and cost over the last `span` seconds, latency over five minutes.

    Calls are added with the `clock()` reading of their end, so a call added a
    moment after it ended counts where it belongs. Not locked: the tracker
    that owns it holds its lock around every call.

    Args:
        span: seconds the counts and cost cover.
        clock: epoch-seconds clock.
    """

    def __init__(self, span: float, clock: Callable[[], float]) -> None:
        self.span = span
        self._counts = SlidingCounter(span, 60, clock)
        self._latency = RecentHistogram(300.0, clock)

    def add_call(
        self,
        when: float,
        latency_ms: float | None,
        bucket: int,
        *,
        ok: bool,
        fallback: bool,
        attempts: int,
        failed_attempts: int,
        cost: Decimal,
    ) -> None:
        """Count one call that ended at `when`: outcome, attempts, cost, latency.

        `bucket` is the latency's `bucket_of`.
        """
        if latency_ms is not None:
            self._latency.add_at(latency_ms, when, bucket)
        if ok and not failed_attempts:  # the usual call: no zeros to add
            amounts: dict[str, int | Decimal] = {
                "calls": 1,
                "successes": 1,
                "attempts": attempts,
                "cost": cost,
            }
            if fallback:
                amounts["fallbacks"] = 1
        else:
            amounts = {
                "calls": 1,
                "successes": int(ok),
                "failures": int(not ok),
                "fallbacks": int(ok and fallback),
                "attempts": attempts,
                "failed_attempts": failed_attempts,
                "cost": cost,
            }
        self._counts.add_at(when, amounts)

    def stats(self) -> RecentStats:
        """The window's totals now."""
        totals = self._counts.totals()
        return RecentStats(
            **{name: int(totals.get(name, 0)) for name in _COUNTS},
            cost=Decimal(totals.get("cost", 0)),
            span=self.span,
            latency_ms=Percentiles.of(self._latency.snapshot()),
        )
