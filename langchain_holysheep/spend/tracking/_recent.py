"""`RecentStats`: a tracker's activity over its recent window, for alert rules."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from langchain_holysheep.spend.tracking._summary import Percentiles

__all__ = ["RecentStats"]


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
