"""Breaker values: the rules a breaker follows and a view of its shared state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["BreakerRules", "BreakerSpec", "BreakerStateName", "BreakerView"]

BreakerStateName = Literal["closed", "open", "half_open"]
"""The state of a breaker (the values of `resilience.BreakerState`)."""


class BreakerRules(Protocol):
    """When a breaker opens and for how long (`resilience.BreakerConfig` fits)."""

    @property
    def failure_threshold(self) -> int | None:
        """Failures in the window that open the breaker (`None`: rate only)."""

    @property
    def failure_rate(self) -> float | None:
        """Failure ratio in the window that opens it (`None`: count only)."""

    @property
    def minimum_requests(self) -> int:
        """No opening before this many calls in the window."""

    @property
    def window(self) -> float:
        """Length of the rolling window, seconds."""

    @property
    def buckets(self) -> int:
        """Time buckets of the window."""

    @property
    def cooldown(self) -> float:
        """Seconds open before a half-open probe."""


@dataclass(frozen=True)
class BreakerSpec:
    """A plain `BreakerRules` (same defaults as `resilience.BreakerConfig`).

    When both `failure_threshold` and `failure_rate` are set, both must hold.
    """

    failure_threshold: int | None = 5
    failure_rate: float | None = 0.5
    minimum_requests: int = 5
    window: float = 60.0
    buckets: int = 12
    cooldown: float = 60.0

    def __post_init__(self) -> None:
        if self.failure_threshold is None and self.failure_rate is None:
            raise ValueError("set failure_threshold or failure_rate (or both)")
        if self.failure_threshold is not None and self.failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if self.failure_rate is not None and not 0 < self.failure_rate <= 1:
            raise ValueError("failure_rate must be in (0, 1]")
        if self.minimum_requests < 1:
            raise ValueError("minimum_requests must be >= 1")
        if not self.window > 0 or self.buckets < 1:
            raise ValueError("window must be > 0 and buckets >= 1")
        if self.cooldown < 0:
            raise ValueError("cooldown must be >= 0")


@dataclass(frozen=True)
class BreakerView:
    """The shared state of one breaker, as one store operation left it.

    Attributes:
        key: the breaker's key.
        state: `"closed"`, `"open"` or `"half_open"`.
        failures: failures counted in the rolling window.
        successes: successes counted in the rolling window.
        opened_at: when it last opened (store clock), `None` if never.
        retry_in: seconds until an open breaker allows a probe (0 otherwise).
        probe_in_flight: a half-open probe is claimed and its claim is live.
        trips: how many times it opened.
        last_failure: the reason of the last failure.
        previous: the state before this operation when it changed the state
            (the caller fires transition listeners), else `None`.
    """

    key: str
    state: BreakerStateName
    failures: int = 0
    successes: int = 0
    opened_at: float | None = None
    retry_in: float = 0.0
    probe_in_flight: bool = False
    trips: int = 0
    last_failure: str = ""
    previous: BreakerStateName | None = None

    @property
    def changed(self) -> bool:
        """Whether the operation that returned this view changed the state."""
        return self.previous is not None and self.previous != self.state

    @property
    def requests(self) -> int:
        """Calls counted in the window."""
        return self.failures + self.successes
