"""Retry on the same route, built on tenacity (there is no second retry loop).

`RetryPolicy` is plain data; `RetryPolicy.retrying(...)` /
`RetryPolicy.aretrying(...)` build tenacity `Retrying` / `AsyncRetrying`
objects whose strategies read the error policy's `Decision`:

- retry only what the `ErrorPolicy` classifies as `RETRY`;
- wait: exponential backoff with jitter (`initial * 2**n`, capped at
  `max_backoff`, jittered into `[b/2, b]`, never below `min_wait`), or the
  server's `Retry-After` / `retry-after-ms` when it sent one;
- stop after `max_attempts`, when the server asks for a wait longer than
  `max_retry_after`, or when the wait would not fit the remaining `Deadline`;
  stopping raises `RetriesExhaustedError` (the router then falls over).

Example:
    ```python
    policy = RetryPolicy(max_attempts=3, initial=0.5)
    retrying = policy.retrying(deadline=Deadline(30), sleep=fake_sleep)
    result = retrying(call_the_model)
    ```
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, Retrying
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from langchain_holysheep.resilience._deadline import Deadline
from langchain_holysheep.resilience._exceptions import RetriesExhaustedError
from langchain_holysheep.resilience._policy import (
    Action,
    Decision,
    ErrorPolicy,
    default_policy,
)

__all__ = [
    "RetryPolicy",
    "decision_of",
    "retry_on_policy",
    "stop_on_policy",
    "wait_backoff_or_retry_after",
]

_RNG = random.Random()
_DECISION_ATTR = "holysheep_decision"
_STOP_ATTR = "holysheep_stop_reason"


def decision_of(retry_state: RetryCallState) -> Decision | None:
    """The policy decision recorded for the last failed attempt, if any."""
    return getattr(retry_state, _DECISION_ATTR, None)


Decide = Callable[[BaseException], Decision]
"""Returns the decision on a failed attempt (classified once, elsewhere)."""


class retry_on_policy(retry_base):
    """Retry when the `ErrorPolicy` says `RETRY`; records the decision.

    Args:
        policy: the classification table.
        gateway: whether the route is a gateway route (401/403 stop).
        decide: where the decision comes from when it was already made (the
            router classifies each failure once, when its attempt ends); by
            default `policy.classify`.
    """

    def __init__(
        self, policy: ErrorPolicy, *, gateway: bool = True, decide: Decide | None = None
    ) -> None:
        self.policy = policy
        self.gateway = gateway
        self.decide = decide

    def __call__(self, retry_state: RetryCallState) -> bool:
        """Classify the failed attempt; `True` to retry."""
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        if exc is None:
            return False
        if self.decide is not None:
            decision = self.decide(exc)
        else:
            decision = self.policy.classify(exc, gateway=self.gateway)
        setattr(retry_state, _DECISION_ATTR, decision)
        return decision.action is Action.RETRY


class wait_backoff_or_retry_after(wait_base):
    """Exponential backoff with jitter, or the server's `Retry-After`."""

    def __init__(self, policy: RetryPolicy, rng: random.Random | None = None):
        self.policy = policy
        self.rng = rng or _RNG

    def __call__(self, retry_state: RetryCallState) -> float:
        """Seconds to wait before the next attempt."""
        decision = decision_of(retry_state)
        if decision is not None and decision.retry_after_s is not None:
            return max(decision.retry_after_s, self.policy.min_wait)
        return self.policy.backoff(retry_state.attempt_number, self.rng)


class stop_on_policy(stop_base):
    """Stop on max attempts, a too-long `Retry-After`, or a short deadline."""

    def __init__(self, policy: RetryPolicy, deadline: Deadline | None) -> None:
        self.policy = policy
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        """`True` to stop retrying (the reason is kept on the retry state)."""
        reason = self.reason(retry_state)
        if reason is not None:
            setattr(retry_state, _STOP_ATTR, reason)
            return True
        return False

    def reason(self, retry_state: RetryCallState) -> str | None:
        """Why retrying must stop now, or `None` to go on."""
        p = self.policy
        if retry_state.attempt_number >= p.max_attempts:
            return f"{retry_state.attempt_number} attempt(s), the maximum"
        decision = decision_of(retry_state)
        retry_after = decision.retry_after_s if decision is not None else None
        if retry_after is not None and retry_after > p.max_retry_after:
            return (
                f"Retry-After {retry_after:g} s exceeds max_retry_after "
                f"{p.max_retry_after:g} s"
            )
        wait = retry_state.upcoming_sleep
        if self.deadline is not None and not self.deadline.fits(wait):
            what = "Retry-After" if retry_after is not None else "backoff"
            return (
                f"{what} of {wait:.2f} s does not fit the remaining deadline "
                f"({self.deadline.remaining():.2f} s)"
            )
        return None


def _give_up(retry_state: RetryCallState) -> Any:
    outcome = retry_state.outcome
    assert outcome is not None
    exc = outcome.exception()
    assert exc is not None
    reason = getattr(retry_state, _STOP_ATTR, "retries exhausted")
    raise RetriesExhaustedError(exc, retry_state.attempt_number, reason) from exc


BeforeSleep = Callable[[RetryCallState], None]
AsyncBeforeSleep = Callable[[RetryCallState], Awaitable[None] | None]


@dataclass(frozen=True)
class RetryPolicy:
    """How a route retries retryable errors (429, 5xx, connection errors...).

    Args:
        max_attempts: attempts per route, the first included (1: no retry).
        initial: first backoff, seconds.
        max_backoff: cap of the exponential backoff, seconds.
        jitter: randomise each backoff within `[b/2, b]`.
        max_retry_after: longest server-requested wait honoured; a longer
            `Retry-After` makes the router fall over instead.
        min_wait: floor of every wait (no tight loops).

    Example:
        ```python
        RetryPolicy(max_attempts=5, initial=1.0)  # 1, 2, 4, 8 s (jittered)
        RetryPolicy.none()  # one attempt per route
        ```
    """

    max_attempts: int = 3
    initial: float = 0.5
    max_backoff: float = 8.0
    jitter: bool = True
    max_retry_after: float = 30.0
    min_wait: float = 0.05

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts!r}")
        for name in ("initial", "max_backoff", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.min_wait > 0:
            raise ValueError(f"min_wait must be > 0, got {self.min_wait!r}")

    @classmethod
    def none(cls) -> RetryPolicy:
        """No retries: one attempt per route."""
        return cls(max_attempts=1)

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt."""
        return self.max_attempts - 1

    def backoff(self, attempt_number: int, rng: random.Random | None = None) -> float:
        """The wait after failed attempt `attempt_number` (1-based)."""
        exp = min(attempt_number - 1, 60)
        base = min(self.initial * (2.0**exp), self.max_backoff)
        if self.jitter:
            base = (rng or random).uniform(base / 2, base)
        return max(base, self.min_wait)

    # -- tenacity -------------------------------------------------------------------
    def retrying(
        self,
        *,
        error_policy: ErrorPolicy | None = None,
        deadline: Deadline | None = None,
        sleep: Callable[[float], None] | None = None,
        before_sleep: BeforeSleep | None = None,
        gateway: bool = True,
        rng: random.Random | None = None,
        decide: Decide | None = None,
    ) -> Retrying:
        """A tenacity `Retrying` for one route (sync).

        Args:
            error_policy: the classification table (default: the built-in one).
            deadline: the call's overall deadline.
            sleep: the sleep function (inject a fake one in tests).
            before_sleep: called before each backoff (report the retry here).
            gateway: whether the route is a gateway route (401/403 stop).
            rng: random source of the jitter.
            decide: the decision on a failed attempt, when already made.
        """
        return Retrying(
            sleep=sleep or time.sleep,
            **self._strategies(error_policy, deadline, gateway, rng, decide),
            before_sleep=before_sleep,
        )

    def aretrying(
        self,
        *,
        error_policy: ErrorPolicy | None = None,
        deadline: Deadline | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        before_sleep: AsyncBeforeSleep | None = None,
        gateway: bool = True,
        rng: random.Random | None = None,
    ) -> AsyncRetrying:
        """A tenacity `AsyncRetrying` for one route; see `retrying`."""
        return AsyncRetrying(
            sleep=sleep or asyncio.sleep,
            **self._strategies(error_policy, deadline, gateway, rng, None),
            before_sleep=before_sleep,
        )

    def _strategies(
        self,
        error_policy: ErrorPolicy | None,
        deadline: Deadline | None,
        gateway: bool,
        rng: random.Random | None,
        decide: Decide | None,
    ) -> dict[str, Any]:
        return {
            "retry": retry_on_policy(
                error_policy or default_policy(), gateway=gateway, decide=decide
            ),
            "wait": wait_backoff_or_retry_after(self, rng),
            "stop": stop_on_policy(self, deadline),
            "retry_error_callback": _give_up,
            "reraise": True,
        }
