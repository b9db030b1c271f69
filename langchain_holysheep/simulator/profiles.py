"""Model profiles: seeded random failures and latency, for benchmark replays."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_holysheep.simulator.checks import FaultSpecError, check_nonneg
from langchain_holysheep.simulator.faults import Fault

__all__ = ["ModelProfile"]

_Z95 = 1.6448536269514722  # standard normal quantile at 0.95


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """Random failures and latency for one model, seeded (benchmark replays).

    Each request draws, in order, one uniform number (failure when below
    `failure_rate`) and one log-normal latency with median `p50_ms` and 95th
    percentile `p95_ms`. Successes are delayed by the latency; failures are
    answered with `failure` as is. With a `seed`, the sequence is reproducible.

    Args:
        failure_rate: probability of a failure, 0-1.
        p50_ms: median latency in milliseconds (0: none).
        p95_ms: 95th percentile in milliseconds (defaults to `p50_ms`).
        seed: random seed (`None`: not reproducible).
        failure: the fault served on failure (default `Fault.status(503)`).

    Example:
        ```python
        sim.set_profile(
            "gpt-4.1", ModelProfile(failure_rate=0.058, p50_ms=900, p95_ms=2100, seed=1)
        )
        ```
    """

    failure_rate: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float | None = None
    seed: int | None = None
    failure: Fault = field(default_factory=lambda: Fault.status(503))

    def __post_init__(self) -> None:
        check_nonneg(self.failure_rate, "failure_rate")
        if self.failure_rate > 1:
            raise FaultSpecError(
                "failure_rate", f"expected a probability 0-1, got {self.failure_rate!r}"
            )
        check_nonneg(self.p50_ms, "p50_ms")
        check_nonneg(self.p95_ms, "p95_ms", allow_none=True)
        if self.p95_ms is not None and self.p95_ms < self.p50_ms:
            raise FaultSpecError(
                "p95_ms", f"must be >= p50_ms ({self.p50_ms}), got {self.p95_ms}"
            )
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise FaultSpecError("seed", f"expected an integer, got {self.seed!r}")
        if not isinstance(self.failure, Fault):
            raise FaultSpecError("failure", f"expected a Fault, got {self.failure!r}")

    def sampler(self) -> Callable[[], Fault]:
        """A fresh, stateful draw function (one per model, reset by `sim.reset()`)."""
        rng = random.Random(self.seed)
        rate, failure = self.failure_rate, self.failure
        p50 = self.p50_ms / 1000.0
        p95 = (self.p95_ms if self.p95_ms is not None else self.p50_ms) / 1000.0
        mu = math.log(p50) if p50 > 0 else 0.0
        sigma = math.log(p95 / p50) / _Z95 if p50 > 0 else 0.0

        def draw() -> Fault:
            failed = rng.random() < rate
            latency = rng.lognormvariate(mu, sigma) if p50 > 0 else 0.0
            return failure if failed else Fault.ok(latency)

        return draw

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "") -> ModelProfile:
        """Build a profile from its fault-script form.

        Fields: `failure_rate`, `p50_ms`, `p95_ms`, `seed`, `failure` (a fault).

        Raises:
            FaultSpecError: naming the field at fault.
        """
        prefix = f"{where}." if where else ""
        if not isinstance(data, Mapping):
            raise FaultSpecError(where, f"expected an object, got {data!r}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "failure":
                kwargs["failure"] = Fault.from_dict(value, where=f"{prefix}failure")
            elif key in ("failure_rate", "p50_ms", "p95_ms", "seed"):
                kwargs[key] = value
            else:
                raise FaultSpecError(
                    f"{prefix}{key}",
                    "unknown profile field (fields: failure_rate, p50_ms, p95_ms, "
                    "seed, failure)",
                )
        try:
            return cls(**kwargs)
        except FaultSpecError as exc:
            raise FaultSpecError(f"{prefix}{exc.field}", exc.problem) from None
