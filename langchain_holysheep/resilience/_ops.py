"""The operations a route loop yields, and that a driver performs."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeAlias

from langchain_holysheep.resilience._call import CallState
from langchain_holysheep.resilience._exceptions import (
    AttemptTimeoutError,
    DeadlineExceededError,
)
from langchain_holysheep.resilience._ratelimit import RateLimiter
from langchain_holysheep.resilience._routes import Route

__all__ = [
    "Acquire",
    "Close",
    "Deliver",
    "Loop",
    "Op",
    "Open",
    "Read",
    "Send",
    "Sleep",
]


@dataclass(slots=True)
class Send:
    """Make one non-streaming attempt; the driver sends back the reply.

    `timeout`: wall-clock bound of the attempt (`None`: unbounded).
    `limits`: the route's `(first_token, stall)` limits; a transport that can
    read the answer as a stream applies them (see `_collect`).
    """

    route: Route
    messages: Any
    kwargs: dict[str, Any]
    timeout: float | None
    call: CallState
    limits: tuple[float | None, float | None] = (None, None)

    def expired(self) -> BaseException:
        """The error for an attempt cut at `timeout`."""
        if self.call.deadline.expired:
            return DeadlineExceededError(self.call.deadline.seconds)
        return AttemptTimeoutError(self.route.name, self.timeout or 0.0)


@dataclass(slots=True)
class Open:
    """Open a streamed attempt; the driver sends back a chunk source.

    `timed`: reads need timeouts (a sync driver then reads in a pump thread).
    """

    route: Route
    messages: Any
    kwargs: dict[str, Any]
    timed: bool


@dataclass(slots=True)
class Read:
    """Read the next chunk (`None` at the end); may throw `ReadTimeout`."""

    source: Any
    timeout: float | None


@dataclass(slots=True)
class Close:
    """Close a source (the HTTP response)."""

    source: Any


@dataclass(slots=True)
class Sleep:
    """Back off before the next attempt."""

    seconds: float


@dataclass(slots=True)
class Acquire:
    """Wait for a rate-limit slot (may throw `RateLimitTimeoutError`)."""

    limiter: RateLimiter
    tokens: int
    call: CallState


@dataclass(slots=True)
class Deliver:
    """Hand a chunk to the consumer of the stream."""

    chunk: Any


Op: TypeAlias = Send | Open | Read | Close | Sleep | Acquire | Deliver
Loop: TypeAlias = Generator[Op, Any, Any]
