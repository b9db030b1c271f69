"""Resilience inside the chat model: error policy, retry, breakers, limits, routing.

Plain policy objects (no hidden global state; the process-wide registries are
explicit, injectable and resettable) and the `Router` that `ChatHolySheep` runs
every call through (`fallbacks=`, `retry=`, `breaker=`, `rate_limit=`,
`deadline=`, `first_token_timeout=`, `stall_timeout=`). Breakers and rate
limits live in this process by default, or in a shared `StateStore`
(`state=`, `HOLYSHEEP_STATE_URL`) for every process of a deployment.
"""

from langchain_holysheep.resilience import _breaker
from langchain_holysheep.resilience._breaker import *  # noqa: F403 (its __all__)
from langchain_holysheep.resilience._breakers import (
    BreakerRegistry,
    default_registry,
    gateway_key,
    registry_for,
)
from langchain_holysheep.resilience._deadline import Deadline
from langchain_holysheep.resilience._exceptions import (
    AllRoutesFailedError,
    AttemptTimeoutError,
    CircuitOpenError,
    DeadlineExceededError,
    FirstTokenTimeoutError,
    RateLimitTimeoutError,
    ResilienceError,
    RetriesExhaustedError,
    RouteFailure,
    StreamFailureError,
    StreamInterruptedError,
    StreamStallError,
)
from langchain_holysheep.resilience._policy import (
    Action,
    Decision,
    ErrorPolicy,
    default_policy,
)
from langchain_holysheep.resilience._ratelimit import (
    RateLimit,
    RateLimiter,
    RateLimiterRegistry,
    default_rate_limiters,
    rate_limiters_for,
)
from langchain_holysheep.resilience._retry import RetryPolicy
from langchain_holysheep.resilience._router import Router
from langchain_holysheep.resilience._routes import Requirements, Route
from langchain_holysheep.resilience._shared_breaker import SharedCircuitBreaker
from langchain_holysheep.resilience._shared_ratelimit import SharedRateLimiter
from langchain_holysheep.resilience._state import StateArg

__all__ = [
    "Action",
    "AllRoutesFailedError",
    "AttemptTimeoutError",
    "BreakerRegistry",
    "CircuitOpenError",
    "Deadline",
    "DeadlineExceededError",
    "Decision",
    "ErrorPolicy",
    "FirstTokenTimeoutError",
    "RateLimit",
    "RateLimitTimeoutError",
    "RateLimiter",
    "RateLimiterRegistry",
    "Requirements",
    "ResilienceError",
    "RetriesExhaustedError",
    "RetryPolicy",
    "Route",
    "RouteFailure",
    "Router",
    "SharedCircuitBreaker",
    "SharedRateLimiter",
    "StateArg",
    "StreamFailureError",
    "StreamInterruptedError",
    "StreamStallError",
    "default_policy",
    "default_rate_limiters",
    "default_registry",
    "gateway_key",
    "rate_limiters_for",
    "registry_for",
]
__all__ += _breaker.__all__
