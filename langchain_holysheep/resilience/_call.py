"""`CallState`: the bookkeeping of one routed call (shared by every driver).

Everything here is synchronous and cheap: route selection, breaker admission,
outcome recording, failure records, pending callback events and the final
metadata. Each failure is classified exactly once, with the call's
`ErrorPolicy`, when its attempt ends (`attempt_failed`) or when a route is
refused before any request (`refused`); the `Decision` is kept on the attempt
and every later step reads it. The loop (`_loop.py`) drives it; the drivers do
the I/O and flush `events` to the run manager.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from langchain_holysheep._contract import (
    ATTEMPT_EVENT,
    CIRCUIT_EVENT,
    FALLBACK_EVENT,
    AttemptEvent,
    CallMetadata,
    CircuitEvent,
    FallbackEvent,
    RouteAttemptEvent,
)
from langchain_holysheep.resilience._attempt import Attempt
from langchain_holysheep.resilience._breaker import BreakerState, CircuitBreaker
from langchain_holysheep.resilience._breakers import BreakerRegistry
from langchain_holysheep.resilience._deadline import Deadline
from langchain_holysheep.resilience._events import Event, retry_event
from langchain_holysheep.resilience._exceptions import (
    AllRoutesFailedError,
    CircuitOpenError,
    DeadlineExceededError,
    RouteFailure,
)
from langchain_holysheep.resilience._policy import Action, Decision, ErrorPolicy
from langchain_holysheep.resilience._ratelimit import RateLimiterRegistry
from langchain_holysheep.resilience._routes import Requirements, Route

__all__ = ["DELIVERED_ATTR", "Attempt", "CallState"]

DELIVERED_ATTR = "holysheep_delivered"
"""Set on a streamed attempt's error: the text delivered before it failed."""


def _delivered_chars(exc: BaseException) -> int:
    """Characters a failed streamed attempt had delivered (0: none)."""
    text = getattr(exc, DELIVERED_ATTR, "")
    return len(text) if isinstance(text, str) else 0


def _short(exc: BaseException) -> str:
    text = str(exc).split("\n", 1)[0]
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CallState:
    """The state of one call across its routes, attempts and retries."""

    def __init__(
        self,
        plan: Iterable[tuple[int, Route]],
        *,
        requirements: Requirements,
        deadline: Deadline,
        error_policy: ErrorPolicy,
        breakers: BreakerRegistry,
        rate_limits: RateLimiterRegistry,
        requested_model: str,
        gateway_enabled: bool = True,
    ) -> None:
        self.queue: deque[tuple[int, Route]] = deque(plan)
        self.planned = len(self.queue)
        self.req = requirements
        self.deadline = deadline
        self.policy = error_policy
        self.breakers = breakers
        self.rate_limits = rate_limits
        self.requested_model = requested_model
        self.gateway_enabled = gateway_enabled
        self.failures: list[RouteFailure] = []
        self.events: list[Event] = []
        self.attempts = 0
        self.retries = 0
        self.fallbacks = 0
        self.last_error: BaseException | None = None
        self.continued_from: list[str] = []
        self.reporting = True  # build callback events (off: nobody listens)
        self._clock = deadline.clock
        self._route_started = 0.0
        self._route_attempts = 0

    # -- route selection ------------------------------------------------------------
    def next_route(self, *, need_prefill: bool = False) -> tuple[int, Route] | None:
        """The next route able to serve the request (others are recorded as skipped)."""
        while self.queue:
            idx, route = self.queue.popleft()
            why = None
            if route.is_gateway and not self.gateway_enabled:
                why = "gateway disabled (HOLYSHEEP_ENABLED=false)"
            elif need_prefill and not route.supports_prefill:
                why = "cannot continue a stream (no assistant prefill)"
            else:
                why = route.cannot_serve(self.req) or self._circuit_open(route)
            if why is None:
                self._route_started = self._clock()
                self._route_attempts = 0
                return idx, route
            self._skip(idx, route, why)
        return None

    def _circuit_open(self, route: Route) -> str | None:
        """Skip a route whose breaker (or the gateway's) is open: no request."""
        if route.is_gateway and self.breakers.gateway(route.base_url).rejects():
            return "circuit open"
        if self.breakers.get(route.key).rejects():
            return "circuit open"
        return None

    def _skip(self, idx: int, route: Route, why: str) -> None:
        self.failures.append(
            RouteFailure(route.name, f"skipped: {why}", None, "fallback", 0.0, why, idx)
        )
        self.fallbacks += 1
        self._fallback_event(idx, route, why, None, None, 0.0)

    # -- attempts -------------------------------------------------------------------
    def admit(self, idx: int, route: Route) -> Attempt:
        """Claim the breakers for one attempt (no network call if one is open).

        Raises:
            DeadlineExceededError: no time left.
            CircuitOpenError: the gateway or the model breaker is open.
        """
        if self.deadline.expired:
            raise DeadlineExceededError(self.deadline.seconds)
        gw = None
        probes: list[CircuitBreaker] = []
        if route.is_gateway:
            gw = self.breakers.gateway(route.base_url)
            if not self._allow(gw, route, probes):
                raise CircuitOpenError(gw.key, gw.retry_in())
        mb = self.breakers.get(route.key)
        if not self._allow(mb, route, probes):
            for breaker in probes:
                breaker.release()
            raise CircuitOpenError(mb.key, mb.retry_in())
        return Attempt(idx, route, 0, 0.0, mb, gw, probes=tuple(probes))

    def begin(self, attempt: Attempt) -> Attempt:
        """The request is about to be sent."""
        self.attempts += 1
        self._route_attempts += 1
        attempt.number = self._route_attempts
        attempt.started = self._clock()
        return attempt

    def attempt_ok(self, attempt: Attempt) -> None:
        """The attempt produced a complete answer."""
        if attempt.ended:
            return
        attempt.ended = True
        route = attempt.route
        self._watch(
            attempt,
            lambda: self.breakers.record_success(route.key, gateway=route.is_gateway),
        )
        self._attempt_event(attempt, None, None, "success")

    def attempt_failed(self, attempt: Attempt, exc: BaseException) -> Decision | None:
        """Record a failed attempt; returns the policy's decision."""
        if attempt.ended:
            return None
        if not isinstance(exc, Exception):  # cancelled: no verdict
            attempt.release()
            return None
        attempt.ended = True
        route = attempt.route
        decision = self.policy.classify(exc, gateway=route.is_gateway)
        attempt.decision = decision
        if decision.breaker_failure:
            self._watch(
                attempt,
                lambda: self.breakers.record_failure(
                    route.key,
                    decision.reason,
                    gateway=route.is_gateway,
                    connection_level=decision.connection_level,
                ),
            )
        else:
            attempt.give_back()
        if decision.retry_after_s:
            self.rate_limits.penalize(route.key, decision.retry_after_s)
        self._record(route, exc, decision, attempt.started, attempt.index)
        self._attempt_event(attempt, exc, decision, decision.action.value)
        self.last_error = exc
        return decision

    def refused(self, idx: int, route: Route, exc: BaseException) -> Decision:
        """Classify an error raised before any request (open circuit, rate limit).

        Records the failure; the route is then left with `route_failed`.
        """
        decision = self.policy.classify(exc, gateway=route.is_gateway)
        self._record(route, exc, decision, self._route_started, idx)
        if not isinstance(exc, CircuitOpenError) or self.last_error is None:
            self.last_error = exc
        return decision

    def _record(
        self,
        route: Route,
        exc: BaseException,
        decision: Decision,
        started: float,
        idx: int,
    ) -> None:
        elapsed = (self._clock() - started) * 1000
        self.failures.append(
            RouteFailure(
                route.name,
                _short(exc),
                decision.status,
                decision.action.value,
                round(elapsed, 1),
                decision.reason,
                idx,
                _delivered_chars(exc),
            )
        )

    def on_retry(self, retry_state: Any) -> None:
        """Tenacity `before_sleep`: a retry on the same route is coming."""
        self.retries += 1
        if self.reporting:
            self.events.append(retry_event(retry_state))

    # -- routes ---------------------------------------------------------------------
    def route_failed(
        self,
        idx: int,
        route: Route,
        exc: BaseException,
        decision: Decision,
        *,
        exhausted: str | None = None,
    ) -> None:
        """Leave a route after `decision` (already recorded; never reclassified).

        `exhausted`: why retrying stopped, when the last decision was RETRY.
        """
        elapsed = (self._clock() - self._route_started) * 1000
        if exhausted is not None and self.failures:
            last = self.failures[-1]
            self.failures[-1] = replace(
                last, action="fallback", reason=f"{last.reason}; {exhausted}"
            )
        if decision.prefer_larger_context and route.context_window:
            floor = route.context_window + 1
            old = self.req.min_context or 0
            self.req = replace(self.req, min_context=max(old, floor))
        stops = decision.action is Action.STOP and exhausted is None
        if not stops:
            self.fallbacks += 1
            reason = decision.reason if exhausted is None else exhausted
            self._fallback_event(idx, route, reason, exc, decision.status, elapsed)

    def final_error(self) -> BaseException:
        """What to raise when no route is left.

        A single-route call (no fallbacks) raises its own last error, so that
        `except openai.RateLimitError` keeps working; otherwise
        `AllRoutesFailedError` (with the last error as `__cause__`).
        """
        last = self.last_error
        single = self.planned == 1 and not (
            self.deadline.bounded and self.deadline.expired
        )
        if single and last is not None and not isinstance(last, CircuitOpenError):
            return last
        err = self.all_failed()
        err.__cause__ = last
        return err

    def all_failed(self, detail: str = "") -> AllRoutesFailedError:
        """The error to raise when no route is left."""
        if not detail and self.deadline.expired and self.deadline.bounded:
            detail = f"deadline of {self.deadline.seconds:g} s exceeded"
        return AllRoutesFailedError(self.failures, detail)

    def metadata(self, idx: int | None, route: Route | None) -> CallMetadata:
        """`response_metadata["holysheep"]` of the answer (`None`: no answer)."""
        meta: CallMetadata = {
            "requested_model": self.requested_model,
            "served_model": None if route is None else route.name,
            "attempts": self.attempts,
            "retries": self.retries,
            "fallbacks": self.fallbacks,
            "failures": [f.as_dict() for f in self.failures],
        }
        if idx is not None:
            meta["route_index"] = idx
        if self.continued_from:
            meta["continued_from"] = list(self.continued_from)
        return meta

    # -- events ---------------------------------------------------------------------
    def _allow(
        self, breaker: CircuitBreaker, route: Route, probes: list[CircuitBreaker]
    ) -> bool:
        before = breaker.state
        ok = breaker.allow()
        if breaker.state is not before:
            self._circuit_event(breaker, before, route)
        if ok and breaker.state is BreakerState.HALF_OPEN:
            probes.append(breaker)  # this attempt is the half-open probe
        return ok

    def _watch(self, attempt: Attempt, action: Any) -> None:
        """Run `action`; report the attempt's breakers that changed state."""
        mb, gw = attempt.model_breaker, attempt.gateway_breaker
        mb_old = mb.state
        gw_old = None if gw is None else gw.state
        action()
        if mb.state is not mb_old:
            self._circuit_event(mb, mb_old, attempt.route)
        if gw is not None and gw_old is not None and gw.state is not gw_old:
            self._circuit_event(gw, gw_old, attempt.route)

    def _circuit_event(
        self, breaker: CircuitBreaker, old: BreakerState, route: Route
    ) -> None:
        if self.reporting:
            snap = breaker.snapshot()
            opened = snap.state is BreakerState.OPEN
            payload: CircuitEvent = {
                "model": breaker.key[1],
                "base_url": breaker.key[0],
                "old": old.value,
                "new": snap.state.value,
                "reason": snap.last_failure if opened else "",
                "route_model": route.name,
            }
            self.events.append(Event(CIRCUIT_EVENT, payload))

    def _attempt_event(
        self,
        attempt: Attempt,
        exc: BaseException | None,
        decision: Decision | None,
        action: str,
    ) -> None:
        if self.reporting:
            status = None if decision is None else decision.status
            ms = (self._clock() - attempt.started) * 1000
            where = self._on_route(attempt.route, attempt.index, status, action, ms)
            error = None if exc is None else _short(exc)
            payload: AttemptEvent = {**where, "error": error}
            delivered = 0 if exc is None else _delivered_chars(exc)
            if delivered:
                payload["delivered_chars"] = delivered
            self.events.append(Event(ATTEMPT_EVENT, payload))

    def _fallback_event(
        self,
        idx: int,
        route: Route,
        reason: str,
        exc: BaseException | None,
        status: int | None,
        elapsed_ms: float,
    ) -> None:
        if self.reporting:
            payload: FallbackEvent = {
                **self._on_route(route, idx, status, "fallback", elapsed_ms),
                "next_model": self.queue[0][1].name if self.queue else None,
                "error": reason if exc is None else _short(exc),
                "reason": reason,
            }
            self.events.append(Event(FALLBACK_EVENT, payload))

    def _on_route(
        self, route: Route, idx: int, status: int | None, action: str, elapsed_ms: float
    ) -> RouteAttemptEvent:
        """What every event of an attempt on `route` (at `idx`) carries."""
        return {
            "model": route.name,
            "route_index": idx,
            "attempt": self.attempts,
            "status": status,
            "action": action,
            "elapsed_ms": round(elapsed_ms, 1),
        }
