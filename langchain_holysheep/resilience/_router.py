"""`Router`: run one chat-model call over `[primary, *fallbacks]`.

For each route in order: skip it if it cannot serve the request (tools,
structured output, vision, context window), if its circuit (or the gateway's)
is open, or if its rate limit cannot grant a slot before the deadline; otherwise
attempt it, retrying per the route's `RetryPolicy` (tenacity) while the
`ErrorPolicy` says RETRY, and move on when it says FALLBACK. STOP errors (bad
key, invalid request, content policy, budget) propagate at once. When every
route failed, `AllRoutesFailedError` lists them all.

The decisions live once, in the route loop (`_loop.py`) over a `CallState`;
`generate`, `agenerate`, `stream` and `astream` only pick the loop, the
transport and the driver. Each sync/async pair is made from one description of
its call (`_answer_request`, `_stream_request`) by `_entry.py`.

Streams come in two modes:

- **live** (`stream()` / `astream()`): chunks before the first content chunk
  are held back, so retries and failover stay invisible. Once content has been
  delivered, a failure either continues on a later route that supports
  assistant prefill (plain text only, never after tool-call chunks: the
  delivered text is sent as a trailing assistant message) or raises
  `StreamInterruptedError` carrying the partial text.
- **buffered** (`invoke` streaming internally): a route's stream is read to its
  end before anything is returned, so a failure anywhere restarts on the next
  route and the answer is never truncated.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from langchain_holysheep._contract import METADATA_KEY
from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.resilience import _entry
from langchain_holysheep.resilience._breakers import (
    BreakerRegistry,
    default_registry,
    registry_for,
)
from langchain_holysheep.resilience._call import CallState
from langchain_holysheep.resilience._chunks import (
    ChunkReader,
    MessageChunks,
    continue_with_prefill,
)
from langchain_holysheep.resilience._deadline import Clock, Deadline
from langchain_holysheep.resilience._events import AnyRunManager
from langchain_holysheep.resilience._policy import ErrorPolicy, default_policy
from langchain_holysheep.resilience._ratelimit import (
    RateLimiterRegistry,
    default_rate_limiters,
    rate_limiters_for,
)
from langchain_holysheep.resilience._retry import RetryPolicy
from langchain_holysheep.resilience._routes import Requirements, Route, sdk_retries
from langchain_holysheep.resilience._state import StateArg
from langchain_holysheep.resilience._streams import StreamWatch

__all__ = ["Router", "continue_with_prefill"]


class Router:
    """Runs one chat-model call over a chain of routes, with retries and failover.

    Args:
        routes: the primary first, then the fallbacks (`Route`s or chat models).
        error_policy: the classification table (default: built-in).
        retry: default retry policy of routes without their own.
        breakers: circuit-breaker registry (default: the process-wide one).
        rate_limits: rate-limiter registry (default: the process-wide one).
        state: a `StateStore` or URL for breakers and limits without a registry
            (shared by every process using it; default `HOLYSHEEP_STATE_URL`).
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
        continuation: `(messages, text) -> messages` asking a route to
            continue a broken stream's text (default: a trailing AI message).
        chunks: reads the routes' stream chunks (default: LangChain
            `ChatGenerationChunk`s with `continuation`); another reader lets
            the same loop stream other chunks, e.g. raw OpenAI-wire events.
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
        state: StateArg = None,
        deadline: float | None = None,
        timeout: float | None = None,
        first_token_timeout: float | None = None,
        stall_timeout: float | None = None,
        tail_timeout: float = 0.5,
        gateway_enabled: bool | Callable[[], bool] = True,
        route_factory: Callable[[str], Route | None] | None = None,
        route_filter: Callable[[Any], Collection[str] | None] | None = None,
        stream_internally: bool = False,
        continuation: Callable[[Any, str], Any] = continue_with_prefill,
        chunks: ChunkReader | None = None,
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
        if state is not None:  # resolved once: a store opens once per process
            breakers = breakers or registry_for(state)
            rate_limits = rate_limits or rate_limiters_for(state)
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
        self.continuation = continuation
        self.chunks: ChunkReader = chunks or MessageChunks(continuation)
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
        requirements: Requirements | None = None,
    ) -> CallState:
        """The bookkeeping object of one call (pops our kwargs).

        `route_filter(run_id)` may restrict the routes of this run (a budget that
        downgraded it to its cheaper routes); `None` means no restriction.
        `requirements`: the request's (`Requirements.of(messages, kwargs)`), when
        the caller has read them already.
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
            requirements=(
                Requirements.of(messages, kwargs)
                if requirements is None
                else requirements
            ),
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

    def watch(self, route: Route, call: CallState, kwargs: dict) -> StreamWatch:
        """The clocks of one streamed attempt on `route`."""
        timeout, first, stall = self.limits(route)
        return StreamWatch(
            route.name,
            call.deadline,
            first_token=first,
            stall=stall,
            tail=self.tail_timeout,
            early_finish="response_format" not in kwargs,
            require_finish=route.passes_timeout,
            timeout=timeout,
            reader=self.chunks,
        )

    def annotate(
        self, result: ChatResult, call: CallState, idx: int, route: Route
    ) -> ChatResult:
        """Attach `response_metadata["holysheep"]` (and `llm_output`)."""
        meta = call.metadata(idx, route)
        for gen in result.generations:
            gen.message.response_metadata[METADATA_KEY] = meta
        result.llm_output = {**(result.llm_output or {}), METADATA_KEY: meta}
        return result

    # -- entry points: each sync/async pair made from one description (`_entry`) -----
    def _answer_request(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AnyRunManager | None = None,
        **kwargs: Any,
    ) -> _entry.Request:
        """One call, failing over across the routes."""
        return _entry.Request(messages, stop, run_manager, kwargs)

    def _stream_request(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AnyRunManager | None = None,
        *,
        live: bool | None = None,
        **kwargs: Any,
    ) -> _entry.Request:
        """One streamed call with failover; see the module docstring."""
        return _entry.Request(messages, stop, run_manager, kwargs, live)

    generate = _entry.answer(_answer_request)
    agenerate = _entry.aanswer(_answer_request)
    stream = _entry.stream(_stream_request)
    astream = _entry.astream(_stream_request)
