"""`Attempt`: one request on one route, and the breaker permits it holds."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_holysheep.resilience._breaker import CircuitBreaker
from langchain_holysheep.resilience._policy import Decision
from langchain_holysheep.resilience._routes import Route

__all__ = ["Attempt"]


@dataclass
class Attempt:
    """One request on one route (holds breaker permits until it ends)."""

    index: int
    route: Route
    number: int
    started: float
    model_breaker: CircuitBreaker
    gateway_breaker: CircuitBreaker | None
    ended: bool = False
    decision: Decision | None = None
    """The policy's decision on this attempt's failure (set once)."""
    probes: tuple[CircuitBreaker, ...] = ()
    """The breakers whose half-open probe this attempt holds."""

    def release(self) -> None:
        """Give back the breakers' half-open probe permits (no verdict)."""
        if not self.ended:
            self.ended = True
            self.give_back()

    def give_back(self) -> None:
        """Return the probes this attempt holds (only its own: never another's)."""
        probes, self.probes = self.probes, ()
        for breaker in probes:
            breaker.release()
