"""`Router`: run one chat-model call over `[primary, *fallbacks]`.

For each route in order: skip it if it cannot serve the request (tools,
structured output, vision, context window), if its circuit (or the gateway's)
is open, or if its rate limit cannot grant a slot before the deadline; otherwise
attempt it, retrying per the route's `RetryPolicy` (tenacity) while the
`ErrorPolicy` says RETRY, and move on when it says FALLBACK. STOP errors (bad
key, invalid request, content policy, budget) propagate at once. When every
route failed, `AllRoutesFailedError` lists them all.

`generate` / `agenerate` are here; `stream` / `astream` come from
`StreamRouting` (`stream_routing.py`) and `AsyncStreamRouting`.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Collection, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.resilience.astream_routing import AsyncStreamRouting
from langchain_holysheep.resilience.breaker_registry import (
    BreakerRegistry,
    default_registry,
)
from langchain_holysheep.resilience.call import Attempt, CallState
from langchain_holysheep.resilience.deadline import Clock, Deadline
from langchain_holysheep.resilience.errors import Action, ErrorPolicy, default_policy
from langchain_holysheep.resilience.events import aemit, emit, pop_stream_scope
from langchain_holysheep.resilience.exceptions import DeadlineExceededError
from langchain_holysheep.resilience.ratelimit import (
    RateLimiterRegistry,
    default_rate_limiters,
)
from langchain_holysheep.resilience.retry import RetryPolicy
from langchain_holysheep.resilience.routes import Requirements, Route, sdk_retries
from langchain_holysheep.resilience.stream_routing import StreamRouting

__all__ = ["Router"]

_ACCEPTS_RUN_MANAGER: dict[Any, bool] = {}


def _accepts_run_manager(fn: Callable[..., Any]) -> bool:
    key = getattr(fn, "__func__", fn)
    known = _ACCEPTS_RUN_MANAGER.get(key)
    if known is None:
        known = "run_manager" in inspect.signature(fn).parameters
        _ACCEPTS_RUN_MANAGER[key] = known
    return known


class Router(StreamRouting, AsyncStreamRouting):
    """Runs one chat-model call over a chain of routes, with retries and failover.

    Args:
        routes: the primary first, then the fallbacks (`Route`s or chat models).
        error_policy: the classification table (default: built-in).
        retry: default retry policy of routes without their own.
        breakers: circuit-breaker registry (default: the process-wide one).
        rate_limits: rate-limiter registry (default: the process-wide one).
        deadline: overall seconds for a call, all retries and fallbacks included.
        timeout: default per-attempt request timeout, seconds.
        first_token_timeout: default time-to-first-content limit for streams.
        stall_timeout: default inter-chunk limit for streams.
        tail_timeout: wait after the finish reason for usage / `[DONE]`.
        gateway_enabled: `False` (or a callable returning it, read per call)
            skips every gateway route (the rollback switch).
        route_factory: builds a route for a `preferred` model id not in the chain.
        stream_internally: `generate` streams (buffered) so that the stream
            limits apply to it too (a chat model with `streaming=True` gets
            the same through LangChain, which then calls `stream`).
        clock / sleep / asleep: injectable time (tests).

    Example:
        ```python
        router = Router([Route.of(primary, is_gateway=True), Route.of(local)],
                        retry=RetryPolicy(max_attempts=3), deadline=60)
        result = router.generate(messages)
        result.generations[0].message.response_metadata["holysheep"]
        ```
    """

    def __init__(
        self,
        routes: Sequence[Route | BaseChatModel],
        *,
        error_policy: ErrorPolicy | None = None,
        retry: RetryPolicy | None = None,
        breakers: BreakerRegistry | None = None,
        rate_limits: RateLimiterRegistry | None = None,
        deadline: float | None = None,
        timeout: float | None = None,
        first_token_timeout: float | None = None,
        stall_timeout: float | None = None,
        tail_timeout: float = 0.5,
        gateway_enabled: bool | Callable[[], bool] = True,
        route_factory: Callable[[str], Route | None] | None = None,
        route_filter: Callable[[Any], Collection[str] | None] | None = None,
        stream_internally: bool = False,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
        asleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.routes: tuple[Route, ...] = tuple(
            r if isinstance(r, Route) else Route.of(r) for r in routes
        )
        if not self.routes:
            raise ConfigurationError("A router needs at least one route.")
        self.route_names: tuple[str, ...] = tuple(r.name for r in self.routes)
        self.error_policy = error_policy or default_policy()
        self.retry = retry or RetryPolicy()
        self._breakers = breakers
        self._rate_limits = rate_limits
        self.deadline = deadline
        self.timeout = timeout
        self.first_token_timeout = first_token_timeout
        self.stall_timeout = stall_timeout
        self.tail_timeout = tail_timeout
        self.gateway_enabled = gateway_enabled
        self.route_factory = route_factory
        self.route_filter = route_filter
        self.stream_internally = stream_internally
        self._clock = clock
        self._sleep = sleep
        self._asleep = asleep

    # -- configuration -----------------------------------------------------------
    @property
    def breakers(self) -> BreakerRegistry:
        """The breaker registry in use."""
        return self._breakers or default_registry()

    @property
    def rate_limits(self) -> RateLimiterRegistry:
        """The rate-limiter registry in use."""
        return self._rate_limits or default_rate_limiters()

    def retry_policy(self, route: Route) -> RetryPolicy:
        """The retry policy of `route`."""
        return route.retry or self.retry

    def limits(self, route: Route) -> tuple[float | None, float | None, float | None]:
        """`(timeout, first_token_timeout, stall_timeout)` of `route`."""
        return (
            route.timeout if route.timeout is not None else self.timeout,
            route.first_token_timeout
            if route.first_token_timeout is not None
            else self.first_token_timeout,
            route.stall_timeout
            if route.stall_timeout is not None
            else self.stall_timeout,
        )

    def max_upstream_attempts(self) -> int:
        """The most HTTP requests one call can make (every retry of every route).

        Per route: our attempts times the attempts of its own client (1 when the
        SDK's retries are off, as `Route.of` makes them).
        """
        return sum(
            self.retry_policy(r).max_attempts * (1 + sdk_retries(r.model))
            for r in self.routes
        )

    def plan(self, preferred: str | None = None) -> list[tuple[int, Route]]:
        """The routes of a call in order (`preferred` moved to the front)."""
        plan = list(enumerate(self.routes))
        if not preferred:
            return plan
        for pos, (_, route) in enumerate(plan):
            if route.name == preferred:
                plan.insert(0, plan.pop(pos))
                return plan
        extra = self.route_factory(preferred) if self.route_factory else None
        if extra is None:
            names = ", ".join(r.name for r in self.routes)
            raise ConfigurationError(
                f"Preferred model {preferred!r} is not in this model's routes "
                f"({names}) and cannot be added. Add it to `fallbacks=`."
            )
        return [(-1, extra), *plan]

    def new_call(
        self,
        messages: Sequence[BaseMessage],
        kwargs: dict[str, Any],
        preferred: str | None = None,
        *,
        run_id: Any = None,
    ) -> CallState:
        """The bookkeeping object of one call (pops our kwargs).

        `route_filter(run_id)` may restrict the routes of this run (a budget that
        downgraded it to its cheaper routes); `None` means no restriction.
        """
        preferred = preferred or kwargs.pop("preferred_model", None)
        plan = self.plan(preferred)
        if run_id is not None and self.route_filter is not None:
            allowed = self.route_filter(run_id)
            if allowed is not None:
                plan = [(i, r) for i, r in plan if r.name in allowed]
        enabled = self.gateway_enabled
        return CallState(
            plan,
            requirements=Requirements.of(messages, kwargs),
            deadline=Deadline(self.deadline, clock=self._clock),
            error_policy=self.error_policy,
            breakers=self.breakers,
            rate_limits=self.rate_limits,
            requested_model=preferred or self.routes[0].name,
            gateway_enabled=enabled() if callable(enabled) else enabled,
        )

    def wants_internal_stream(self, kwargs: dict[str, Any]) -> bool:
        """Whether `generate` should stream internally (so stream limits apply)."""
        return bool(self.stream_internally or kwargs.get("stream"))

    def route_kwargs(
        self, route: Route, call: CallState, kwargs: dict[str, Any], *, stream: bool
    ) -> dict[str, Any]:
        """The kwargs of one attempt (a capped `timeout=` for OpenAI clients)."""
        if not route.passes_timeout:
            return kwargs
        timeout, first, stall = self.limits(route)
        cap = call.deadline.cap(timeout)
        user = kwargs.get("timeout")
        if isinstance(user, (int, float)):
            cap = user if cap is None else min(cap, user)
        kw = dict(kwargs)
        if stream:
            kw.setdefault("stream_usage", True)
            backstop = max((x for x in (first, stall) if x), default=None)
            if backstop is not None:
                read = backstop + 1.0
                cap = read if cap is None else min(cap, read)
        if cap is not None:
            kw["timeout"] = max(cap, 0.001)
        return kw

    # -- sync ------------------------------------------------------------------------
    def acquire(self, route: Route, call: CallState) -> None:
        """Wait for the route's rate-limit slot (sync)."""
        limiter = self.rate_limits.get(route.key)
        if limiter is not None:
            limiter.acquire(call.req.rate_tokens, call.deadline)

    def generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """One call, failing over across the routes (sync)."""
        scope = pop_stream_scope(kwargs)
        rm = run_manager or (scope.run_manager if scope else None)
        if self.wants_internal_stream(kwargs):
            chunks = self.stream(messages, stop, rm, live=False, **kwargs)
            return generate_from_stream(chunks)
        call = self.new_call(messages, kwargs, run_id=rm.run_id if rm else None)
        call.reporting = bool(rm is not None and rm.handlers)

        def before_sleep(rs: Any) -> None:
            call.on_retry(rs)
            emit(rm, call.events)

        try:
            while (nxt := call.next_route()) is not None:
                idx, route = nxt
                retrying = self.retry_policy(route).retrying(
                    error_policy=self.error_policy,
                    deadline=call.deadline,
                    sleep=self._sleep,
                    before_sleep=before_sleep,
                    gateway=route.is_gateway,
                )
                try:
                    result = retrying(
                        self._attempt, call, idx, route, messages, stop, rm, kwargs
                    )
                except Exception as exc:
                    decision = call.route_failed(idx, route, exc)
                    if decision.action is Action.STOP:
                        if isinstance(exc, DeadlineExceededError):
                            raise call.all_failed() from exc
                        raise
                    continue
                finally:
                    emit(rm, call.events)
                return self.annotate(result, call, idx, route)
            raise call.final_error()
        finally:
            emit(rm, call.events)

    def _attempt(
        self,
        call: CallState,
        idx: int,
        route: Route,
        messages: list[BaseMessage],
        stop: list[str] | None,
        rm: CallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> ChatResult:
        attempt = call.admit(idx, route)
        try:
            self.acquire(route, call)
        except BaseException:
            attempt.release()
            raise
        call.begin(attempt)
        kw = self.route_kwargs(route, call, kwargs, stream=False)
        gen = route.model._generate
        try:
            if rm is not None and _accepts_run_manager(gen):
                result = gen(messages, stop=stop, run_manager=rm, **kw)
            else:
                result = gen(messages, stop=stop, **kw)
        except BaseException as exc:
            call.attempt_failed(attempt, exc)
            raise
        call.attempt_ok(attempt)
        return result

    def annotate(
        self, result: ChatResult, call: CallState, idx: int, route: Route
    ) -> ChatResult:
        """Attach `response_metadata["holysheep"]` (and `llm_output`)."""
        meta = call.metadata(idx, route)
        for gen in result.generations:
            gen.message.response_metadata["holysheep"] = meta
        result.llm_output = {**(result.llm_output or {}), "holysheep": meta}
        return result

    # -- async -------------------------------------------------------------------------
    async def aacquire(self, route: Route, call: CallState) -> None:
        """Wait for the route's rate-limit slot (async)."""
        limiter = self.rate_limits.get(route.key)
        if limiter is not None:
            await limiter.aacquire(call.req.rate_tokens, call.deadline)

    async def agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """One call, failing over across the routes (async)."""
        scope = pop_stream_scope(kwargs)
        rm = run_manager or (scope.async_run_manager if scope else None)
        if self.wants_internal_stream(kwargs):
            chunks = [
                c async for c in self.astream(messages, stop, rm, live=False, **kwargs)
            ]
            return generate_from_stream(iter(chunks))
        call = self.new_call(messages, kwargs, run_id=rm.run_id if rm else None)
        call.reporting = bool(rm is not None and rm.handlers)

        async def before_sleep(rs: Any) -> None:
            call.on_retry(rs)
            await aemit(rm, call.events)

        try:
            while (nxt := call.next_route()) is not None:
                idx, route = nxt
                retrying = self.retry_policy(route).aretrying(
                    error_policy=self.error_policy,
                    deadline=call.deadline,
                    sleep=self._asleep,
                    before_sleep=before_sleep,
                    gateway=route.is_gateway,
                )
                try:
                    result: ChatResult = await retrying(
                        self._aattempt, call, idx, route, messages, stop, rm, kwargs
                    )
                except Exception as exc:
                    decision = call.route_failed(idx, route, exc)
                    if decision.action is Action.STOP:
                        if isinstance(exc, DeadlineExceededError):
                            raise call.all_failed() from exc
                        raise
                    continue
                finally:
                    await aemit(rm, call.events)
                return self.annotate(result, call, idx, route)
            raise call.final_error()
        finally:
            await aemit(rm, call.events)

    async def _aattempt(
        self,
        call: CallState,
        idx: int,
        route: Route,
        messages: list[BaseMessage],
        stop: list[str] | None,
        rm: AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> ChatResult:
        attempt: Attempt = call.admit(idx, route)
        try:
            await self.aacquire(route, call)
        except BaseException:
            attempt.release()
            raise
        call.begin(attempt)
        kw = self.route_kwargs(route, call, kwargs, stream=False)
        gen = route.model._agenerate
        if rm is not None and _accepts_run_manager(gen):
            coro = gen(messages, stop=stop, run_manager=rm, **kw)
        else:
            coro = gen(messages, stop=stop, **kw)
        limit = (
            None if route.passes_timeout else call.deadline.cap(self.limits(route)[0])
        )
        result: ChatResult
        try:
            if limit is None or math.isinf(limit):
                result = await coro
            else:
                result = await asyncio.wait_for(coro, limit)
        except BaseException as exc:
            call.attempt_failed(attempt, exc)
            raise
        call.attempt_ok(attempt)
        return result
