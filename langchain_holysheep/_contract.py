"""What crosses between routing and spend: metadata schema, event names, payloads.

Routing (`langchain_holysheep.resilience`) writes these; spend tracking, the CLI
and users read them. Neither side imports the other: both import this module.

- `response_metadata["holysheep"]` of every routed answer is a `CallMetadata`
  (also `llm_output["holysheep"]`, and the last chunk of a stream);
- custom callback events (`on_custom_event(name, data)`) carry an
  `AttemptEvent`, `FallbackEvent` or `CircuitEvent`; retries go through
  LangChain's own `on_retry`;
- `ROUTES_PARAM` in a chat model's invocation params lists every route a call
  may take, so a budget can reserve the worst case over all of them;
  `ROUTE_LIMITS_PARAM` gives each route's most attempts and output limit.
"""

from __future__ import annotations

from typing import TypedDict

from typing_extensions import NotRequired

__all__ = [
    "ATTEMPT_EVENT",
    "CIRCUIT_EVENT",
    "FALLBACK_EVENT",
    "METADATA_KEY",
    "ROUTES_PARAM",
    "ROUTE_LIMITS_PARAM",
    "DEADLINE_PARAM",
    "AttemptEvent",
    "CallMetadata",
    "CircuitEvent",
    "FailureRecord",
    "FallbackEvent",
    "RouteAttemptEvent",
]

METADATA_KEY = "holysheep"
"""Key of the routing report in `response_metadata` and `llm_output`."""

ATTEMPT_EVENT = "holysheep_attempt"
"""Custom event after every attempt (success or failure)."""

FALLBACK_EVENT = "holysheep_fallback"
"""Custom event when a route is left (failed, or skipped before any request)."""

CIRCUIT_EVENT = "holysheep_circuit"
"""Custom event when a call moves a circuit breaker to another state."""

ROUTES_PARAM = "holysheep_routes"
"""Invocation param (never sent): the model ids a call may be served by."""

DEADLINE_PARAM = "holysheep_deadline"
"""Invocation param (never sent): the call's overall deadline in seconds, or
`None` (a budget's reservation lease must outlast it)."""

ROUTE_LIMITS_PARAM = "holysheep_route_limits"
"""Invocation param (never sent): per route, in `ROUTES_PARAM` order, a dict
`{"model": id, "attempts": most requests, "gateway": bool, "max_tokens": int |
None}` (`max_tokens` of a non-gateway route is its own; gateway routes use the
call's)."""


class FailureRecord(TypedDict):
    """One failed attempt or skipped route, as listed in `CallMetadata.failures`."""

    model: str
    error: str
    status: int | None
    action: str
    """"retry", "fallback" or "stop"."""
    elapsed_ms: float
    reason: str
    route_index: int
    delivered_chars: NotRequired[int]
    """A streamed attempt that failed after delivering text: how much (the
    provider bills it although no usage block came)."""


class CallMetadata(TypedDict):
    """`response_metadata["holysheep"]`: how one routed call was served."""

    requested_model: str
    served_model: str | None
    route_index: NotRequired[int]
    attempts: int
    retries: int
    fallbacks: int
    failures: list[FailureRecord]
    continued_from: NotRequired[list[str]]
    """Models whose streams broke and were continued by `served_model`."""


class RouteAttemptEvent(TypedDict):
    """What the payload of every event of an attempt on a route carries."""

    model: str
    route_index: int
    attempt: int
    status: int | None
    action: str
    """"success", "retry", "fallback" or "stop"."""
    elapsed_ms: float


class AttemptEvent(RouteAttemptEvent):
    """Payload of `ATTEMPT_EVENT`."""

    error: str | None
    delivered_chars: NotRequired[int]
    """As in `FailureRecord`."""


class FallbackEvent(RouteAttemptEvent):
    """Payload of `FALLBACK_EVENT` (its `action` is "fallback")."""

    next_model: str | None
    error: str
    reason: str


class CircuitEvent(TypedDict):
    """Payload of `CIRCUIT_EVENT`."""

    model: str
    base_url: str
    old: str
    new: str
    reason: str
    route_model: str
