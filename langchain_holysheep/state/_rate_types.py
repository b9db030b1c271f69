"""Rate-limit values: a shared limit, a grant, and a view of what is left."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RateGrant", "RateSpec", "RateView"]


@dataclass(frozen=True)
class RateSpec:
    """Requests and tokens per `per` seconds, as shared token buckets.

    Each bucket holds up to its burst (default: one period's worth) and
    refills continuously at `requests / per` (or `tokens / per`) a second.
    `resilience.RateLimit(rpm, tpm, burst_requests, burst_tokens)` maps to
    `RateSpec(rpm, tpm, burst_requests=..., burst_tokens=...)`.

    Args:
        requests: requests per period (`None`: unlimited).
        tokens: tokens per period (`None`: unlimited).
        per: the period, seconds (60: per minute).
        burst_requests: request bucket size (default `requests`).
        burst_tokens: token bucket size (default `tokens`).
    """

    requests: float | None = None
    tokens: float | None = None
    per: float = 60.0
    burst_requests: float | None = None
    burst_tokens: float | None = None

    def __post_init__(self) -> None:
        for name in ("requests", "tokens", "per", "burst_requests", "burst_tokens"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")

    @property
    def request_capacity(self) -> float | None:
        """Size of the request bucket (`None`: no request limit)."""
        if self.requests is None:
            return None
        return self.burst_requests if self.burst_requests is not None else self.requests

    @property
    def token_capacity(self) -> float | None:
        """Size of the token bucket (`None`: no token limit)."""
        if self.tokens is None:
            return None
        return self.burst_tokens if self.burst_tokens is not None else self.tokens


@dataclass(frozen=True)
class RateGrant:
    """The answer to `acquire_rate`.

    Attributes:
        granted: the capacity was taken; start the request after `wait`
            seconds (0: now).
        wait: when granted, the seconds to wait before sending (the slot
            reserved ahead of time); when refused, the seconds until a slot
            frees (nothing was taken).
    """

    granted: bool
    wait: float = 0.0


@dataclass(frozen=True)
class RateView:
    """Capacity left now (negative: reserved ahead by waiting callers)."""

    requests_available: float | None
    tokens_available: float | None
    blocked_for: float
