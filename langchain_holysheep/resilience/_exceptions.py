"""Exceptions raised by the resilience layer (router, breakers, rate limits, streams).

Each class carries `holysheep_action` ("retry", "fallback" or "stop"): the error
policy reads it, so an error raised by one of our own components is classified
the same way everywhere (users' and other modules' exceptions can carry it too,
e.g. the spend module's `BudgetExceededError` has `holysheep_action = "stop"`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_holysheep._contract import FailureRecord
from langchain_holysheep.errors import HolySheepError

__all__ = [
    "AllRoutesFailedError",
    "AttemptTimeoutError",
    "CircuitOpenError",
    "DeadlineExceededError",
    "FirstTokenTimeoutError",
    "RateLimitTimeoutError",
    "RetriesExhaustedError",
    "ResilienceError",
    "RouteFailure",
    "StreamFailureError",
    "StreamInterruptedError",
    "StreamStallError",
]


class ResilienceError(HolySheepError):
    """Base class of the errors raised by `langchain_holysheep.resilience`."""

    holysheep_action: ClassVar[str] = "stop"
    holysheep_reason: ClassVar[str] = ""
    holysheep_silent: ClassVar[bool] = False


class CircuitOpenError(ResilienceError):
    """A route was skipped because its circuit breaker is open (no request sent).

    Attributes:
        key: the breaker key, `(base_url, model)`.
        retry_in_s: seconds until the breaker lets a probe through.
    """

    holysheep_action = "fallback"
    holysheep_reason = "circuit open"

    def __init__(self, key: tuple[str, str], retry_in_s: float = 0.0) -> None:
        self.key = key
        self.retry_in_s = retry_in_s
        base_url, model = key
        what = "the gateway" if model == "*" else f"model {model!r}"
        super().__init__(
            f"Circuit open for {what} at {base_url}: skipped without a request "
            f"(next probe in {retry_in_s:.1f} s). Reset it with "
            "`default_registry().reset_all()` if the outage is over."
        )


class RateLimitTimeoutError(ResilienceError):
    """The client-side rate limit cannot grant a slot before the deadline.

    Attributes:
        key: the limiter key.
        wait_s: how long the slot would take.
        remaining_s: what was left of the deadline.
    """

    holysheep_action = "fallback"
    holysheep_reason = "rate-limit wait beyond the deadline"

    def __init__(self, key: Any, wait_s: float, remaining_s: float) -> None:
        self.key = key
        self.wait_s = wait_s
        self.remaining_s = remaining_s
        super().__init__(
            f"Client-side rate limit for {key!r} needs {wait_s:.2f} s before the "
            f"next request but only {remaining_s:.2f} s remain in the deadline. "
            "Raise the limit (requests/tokens per minute), the deadline, or add a "
            "fallback model."
        )


class DeadlineExceededError(ResilienceError, TimeoutError):
    """The overall deadline of a call ran out."""

    holysheep_action = "stop"
    holysheep_reason = "deadline exceeded"

    def __init__(self, seconds: float | None, detail: str = "") -> None:
        self.seconds = seconds
        budget = "" if seconds is None else f" of {seconds:g} s"
        extra = f" {detail}" if detail else ""
        super().__init__(
            f"The call's overall deadline{budget} ran out.{extra} Raise `deadline=` "
            "or lower per-route timeouts and retries."
        )


class AttemptTimeoutError(ResilienceError, TimeoutError):
    """One attempt took longer than its route's `timeout` (wall-clock).

    The whole attempt counts, however the reply arrives (a reply trickling in
    byte by byte is cut as surely as a silent one); the router falls over.
    """

    holysheep_action = "fallback"
    holysheep_reason = "attempt timeout"

    def __init__(self, model: str, seconds: float) -> None:
        self.model = model
        self.seconds = seconds
        super().__init__(
            f"The attempt on {model!r} did not complete within its timeout of "
            f"{seconds:g} s. Raise the route's `timeout`, or add a fallback."
        )


class StreamFailureError(ResilienceError):
    """A streamed response broke before it completed (cut, stall, malformed).

    Attributes:
        kind: "cut", "stall", "first_token", "malformed" or "incomplete".
        model: the model whose stream broke.
        chunks: chunks received before the failure.
    """

    holysheep_action = "fallback"

    def __init__(
        self, kind: str, model: str, *, chunks: int = 0, detail: str = ""
    ) -> None:
        self.kind = kind
        self.model = model
        self.chunks = chunks
        self.holysheep_reason = (  # type: ignore[misc]
            "first-token timeout" if kind == "first_token" else f"stream {kind}"
        )
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"The stream from {model!r} failed ({kind}) after {chunks} chunk(s){extra}"
        )


class _StreamLimitError(StreamFailureError):
    """A stream time limit passed (`seconds`: the limit)."""

    limit_kind: ClassVar[str] = ""
    limit_detail: ClassVar[str] = ""

    def __init__(self, model: str, seconds: float, *, chunks: int = 0) -> None:
        self.seconds = seconds
        detail = self.limit_detail.format(seconds=seconds)
        super().__init__(self.limit_kind, model, chunks=chunks, detail=detail)


class FirstTokenTimeoutError(_StreamLimitError):
    """No content arrived within the time-to-first-token limit (a silent route)."""

    holysheep_silent = True
    limit_kind = "first_token"
    limit_detail = "no content within the first-token limit of {seconds:g} s"


class StreamStallError(_StreamLimitError):
    """The answer made no progress for longer than the stall limit."""

    limit_kind = "stall"
    limit_detail = "no progress of the answer for {seconds:g} s (stall limit)"


@dataclass(frozen=True)
class RouteFailure:
    """Why one route did not answer (reported in metadata and errors).

    Attributes:
        model: the route's model id.
        error: the exception's class name and message (short).
        status: the HTTP status, if any.
        action: "retry", "fallback", "stop" or "skip".
        elapsed_ms: time spent on the route.
        reason: the policy's reason (e.g. "server error", "circuit open").
        route_index: the route's position in the chain.
        delivered_chars: characters a streamed attempt delivered before it
            failed (the provider bills them although no usage came).
    """

    model: str
    error: str
    status: int | None
    action: str
    elapsed_ms: float
    reason: str = ""
    route_index: int = 0
    delivered_chars: int = 0

    def as_dict(self) -> FailureRecord:
        """A JSON-friendly dict (the `response_metadata` form)."""
        record: FailureRecord = {
            "model": self.model,
            "error": self.error,
            "status": self.status,
            "action": self.action,
            "elapsed_ms": self.elapsed_ms,
            "reason": self.reason,
            "route_index": self.route_index,
        }
        if self.delivered_chars:
            record["delivered_chars"] = self.delivered_chars
        return record


class StreamInterruptedError(ResilienceError):
    """A stream broke after content was delivered and could not be continued.

    The text already yielded is in `partial_text`; nothing is spliced onto it.

    Attributes:
        partial_text: content delivered before the failure.
        model: the model whose stream broke (where the delivered text came from).
        cause: why it broke.
        continuation_errors: `(model, error)` of each route that was asked to
            continue the text and failed or refused.
        failures: every failed attempt of the call.
    """

    def __init__(
        self,
        partial_text: str,
        model: str,
        cause: BaseException | None = None,
        failures: Sequence[RouteFailure] = (),
        continuation_errors: Sequence[tuple[str, BaseException]] = (),
    ) -> None:
        self.partial_text = partial_text
        self.model = model
        self.cause = cause
        self.failures = list(failures)
        self.continuation_errors = list(continuation_errors)
        why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        tried = "".join(
            f" Continuation on {name!r} failed: {type(err).__name__}: {err}."
            for name, err in self.continuation_errors
        )
        super().__init__(
            f"The stream from {model!r} broke after {len(partial_text)} characters "
            f"had been delivered{why}.{tried} The partial text is in "
            "`.partial_text`; no route that supports assistant prefill could "
            "continue it. Retry the call, or use invoke() to get a complete answer "
            "with failover."
        )


class AllRoutesFailedError(ResilienceError):
    """Every route of a call failed or was skipped.

    Attributes:
        failures: one `RouteFailure` per failed attempt or skipped route.
    """

    def __init__(self, failures: Sequence[RouteFailure], detail: str = "") -> None:
        self.failures = list(failures)
        lines = [
            f"  [{f.route_index}] {f.model}: {f.action} - {f.reason or f.error}"
            + (f" (HTTP {f.status})" if f.status else "")
            for f in self.failures
        ]
        head = "All routes failed" + (f" ({detail})" if detail else "") + ":"
        super().__init__(
            "\n".join([head, *lines])
            + "\nCheck the models' status, add fallbacks, or raise the deadline."
        )


class RetriesExhaustedError(ResilienceError):
    """A route kept failing with retryable errors; the router moves on.

    Attributes:
        last_error: the last attempt's exception (also `__cause__`).
        attempts: attempts made on the route.
        reason: why retrying stopped ("3 attempts", "Retry-After too long", ...).
    """

    holysheep_action = "fallback"

    def __init__(self, last_error: BaseException, attempts: int, reason: str):
        self.last_error = last_error
        self.attempts = attempts
        self.reason = reason
        self.holysheep_reason = f"retries exhausted: {reason}"  # type: ignore[misc]
        super().__init__(
            f"Gave up on the route after {attempts} attempt(s) ({reason}); last "
            f"error: {type(last_error).__name__}: {last_error}"
        )
