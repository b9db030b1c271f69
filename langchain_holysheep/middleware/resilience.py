"""`ResilienceMiddleware`: retry, circuit breakers, deadlines and fallbacks for agents.

The same policy objects as `ChatHolySheep`'s router (`ErrorPolicy`,
`RetryPolicy`, `BreakerRegistry`, `Deadline`), applied around the agent's model
call, so they work with any chat model (`ChatOpenAI`, `ChatAnthropic`, a local
vLLM, `ChatHolySheep`). Each attempt goes through the rest of the middleware
stack and the agent's own model binding (tools, structured output).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain.agents.middleware.types import AgentState
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langgraph.errors import GraphBubbleUp

from langchain_holysheep.middleware._routes import RouteCache
from langchain_holysheep.middleware._runconfig import (
    NOSTREAM_TAG,
    aemit_events,
    emit_events,
    scoped_config,
)
from langchain_holysheep.resilience import (
    Action,
    BreakerRegistry,
    Deadline,
    DeadlineExceededError,
    ErrorPolicy,
    RateLimiterRegistry,
    RetryPolicy,
    StreamInterruptedError,
    default_policy,
)
from langchain_holysheep.resilience.call import CallState
from langchain_holysheep.resilience.routes import Requirements, Route

__all__ = ["OnFailure", "ResilienceMiddleware", "StreamingMode"]

OnFailure = Literal["error", "continue"] | Callable[[Exception], str]
"""What to do when every route failed: raise, or answer with the error text."""

StreamingMode = Literal["buffer", "live"]
"""How attempts show in `stream_mode="messages"` (see `ResilienceMiddleware`)."""


class _TokenWatch(BaseCallbackHandler):
    """Collects the content an attempt has streamed (live mode)."""

    run_inline = True

    def __init__(self) -> None:
        self.text: list[str] = []

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        if isinstance(token, str) and token:
            self.text.append(token)


class ResilienceMiddleware(AgentMiddleware[AgentState[Any], Any]):
    """Retry, circuit breakers, deadlines and fallbacks for an agent's model calls.

    Follows LangChain's conventions: the model given to `create_agent` is the
    primary and the fallbacks are listed here, in order, as chat-model instances
    or strings (`ModelFallbackMiddleware`); retries are per model with
    exponential backoff (`ModelRetryMiddleware`: `max_retries`, `on_failure`).
    On top of that, each failure is classified once by an `ErrorPolicy`: retry
    the same model (429, 5xx, timeouts, connection errors; `Retry-After` is
    honoured), fall back at once (model not found, context too long, retries
    exhausted, open circuit), or stop (bad key, invalid request, budget
    exceeded, LangGraph interrupts). Circuit breakers skip a model that keeps
    failing; `deadline` bounds the whole model call, retries and fallbacks
    included; `timeout` bounds one attempt. Every route makes one request per
    attempt: the OpenAI SDK's own retries are turned off, and a `ChatHolySheep`
    runs as a single-attempt copy (the middleware's retries and fallbacks
    replace its own), so attempts never multiply.

    Every answer carries `response_metadata["holysheep"]` (`requested_model`,
    `served_model`, `attempts`, `retries`, `fallbacks`, `failures`), as
    `ChatHolySheep` answers do. Attempts, retries, fallbacks and circuit changes
    are also sent as custom callback events (`holysheep_attempt`,
    `holysheep_retry`, `holysheep_fallback`, `holysheep_circuit`).

    Streaming (`agent.stream(..., stream_mode="messages")`):
        `streaming="buffer"` (default): attempts run hidden from the message
        stream (LangGraph's `nostream` tag); the answer that succeeded is
        emitted whole when the model step ends. A failed attempt's partial
        tokens are never shown. `streaming="live"`: tokens stream as they come;
        an attempt may fail over only before its first token, and a failure
        after it raises `StreamInterruptedError` (with `.partial_text`) instead
        of splicing another model's answer onto it.

    Args:
        *fallbacks: fallback models, in order: chat-model instances, strings
            with a provider prefix for `init_chat_model` (`"openai:gpt-4.1"`), or
            bare HolySheep model ids (`"deepseek-v3.2"`; a copy of the primary
            when it is a `ChatHolySheep`, else a new `ChatHolySheep`).
        max_retries: retries per model after its first attempt (default 2).
        retry: a full `RetryPolicy` (overrides `max_retries`).
        error_policy: the classification table (default: the built-in one).
        deadline: seconds for one model call, all attempts included.
        timeout: seconds per attempt (passed to OpenAI-compatible clients; an
            async attempt of any model is cancelled at the limit).
        breakers: the circuit-breaker registry (default: process-wide).
        rate_limits: client-side rate limiters (default: process-wide).
        on_failure: `"error"` raises `AllRoutesFailedError`; `"continue"`
            returns an `AIMessage` with the error text (the agent ends); a
            callable turns the exception into that text.
        streaming: `"buffer"` or `"live"`, see above.
        sleep / asleep: injectable sleep functions (tests).

    Example:
        ```python
        from langchain.agents import create_agent
        from langchain_holysheep import ChatHolySheep
        from langchain_holysheep.middleware import ResilienceMiddleware

        agent = create_agent(
            ChatHolySheep(model="gpt-4.1"),
            tools=[get_weather],
            middleware=[
                ResilienceMiddleware("gemini-2.5-flash", "deepseek-v3.2", deadline=60)
            ],
        )
        ```
    """

    def __init__(
        self,
        *fallbacks: BaseChatModel | str,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        error_policy: ErrorPolicy | None = None,
        deadline: float | None = None,
        timeout: float | None = None,
        breakers: BreakerRegistry | None = None,
        rate_limits: RateLimiterRegistry | None = None,
        on_failure: OnFailure = "error",
        streaming: StreamingMode = "buffer",
        sleep: Callable[[float], None] | None = None,
        asleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__()
        from langchain_holysheep.middleware._validate import check_resilience_args

        check_resilience_args(
            fallbacks,
            max_retries=max_retries,
            retry=retry,
            error_policy=error_policy,
            deadline=deadline,
            timeout=timeout,
            breakers=breakers,
            rate_limits=rate_limits,
            on_failure=on_failure,
            streaming=streaming,
            sleep=sleep,
            asleep=asleep,
        )
        self.fallbacks = fallbacks
        self.retry = retry or RetryPolicy(max_attempts=max_retries + 1)
        self.error_policy = (error_policy or default_policy()).with_overrides(
            {GraphBubbleUp: Action.STOP, asyncio.CancelledError: Action.STOP}
        )
        self.deadline = deadline
        self.timeout = timeout
        self._breakers = breakers
        self._rate_limits = rate_limits
        self.on_failure = on_failure
        self.streaming: StreamingMode = streaming
        self._sleep = sleep
        self._asleep = asleep
        self._routes = RouteCache()

    # -- routes -----------------------------------------------------------------
    @property
    def breakers(self) -> BreakerRegistry:
        """The breaker registry in use."""
        from langchain_holysheep.resilience import default_registry

        return self._breakers or default_registry()

    @property
    def rate_limits(self) -> RateLimiterRegistry:
        """The rate-limiter registry in use."""
        from langchain_holysheep.resilience import default_rate_limiters

        return self._rate_limits or default_rate_limiters()

    def _new_call(self, request: ModelRequest[Any]) -> CallState:
        routes = self._routes.get(request.model, self.fallbacks, self.timeout)
        kwargs = {"tools": request.tools} if request.tools else {}
        return CallState(
            list(enumerate(routes)),
            requirements=Requirements.of(request.messages, kwargs),
            deadline=Deadline(self.deadline),
            error_policy=self.error_policy,
            breakers=self.breakers,
            rate_limits=self.rate_limits,
            requested_model=routes[0].name,
        )

    def _request_for(
        self, route: Route, call: CallState, request: ModelRequest[Any]
    ) -> ModelRequest[Any]:
        settings = request.model_settings
        if route.passes_timeout:
            cap = call.deadline.cap(route.timeout)
            if cap is not None and not math.isinf(cap):
                settings = {**settings, "timeout": max(cap, 0.001)}
        return request.override(model=route.model, model_settings=settings)

    def _tags(self) -> tuple[str, ...]:
        return (NOSTREAM_TAG,) if self.streaming == "buffer" else ()

    # -- results ----------------------------------------------------------------
    def _annotate(self, response: Any, call: CallState, idx: int, route: Route) -> Any:
        meta = call.metadata(idx, route)
        messages = [response] if isinstance(response, AIMessage) else response.result
        for message in messages:
            if isinstance(message, AIMessage):
                message.response_metadata["holysheep"] = meta
        return response

    def _failed(self, exc: Exception, call: CallState) -> ModelResponse[Any]:
        if self.on_failure == "error":
            raise exc
        if callable(self.on_failure):
            text = self.on_failure(exc)
        else:
            word = "attempt" if call.attempts == 1 else "attempts"
            text = (
                f"Model call failed after {call.attempts} {word} with "
                f"{type(exc).__name__}: {exc}"
            )
        message = AIMessage(content=text)
        message.response_metadata["holysheep"] = {
            "requested_model": call.requested_model,
            "served_model": None,
            "attempts": call.attempts,
            "retries": call.retries,
            "fallbacks": call.fallbacks,
            "failures": [f.as_dict() for f in call.failures],
        }
        return ModelResponse(result=[message])

    def _give_up(self, exc: Exception, idx: int, route: Route, call: CallState) -> bool:
        """Record a failed route; `True` when the call must end now."""
        if isinstance(exc, StreamInterruptedError):
            return True
        decision = call.route_failed(idx, route, exc)
        return decision.action is Action.STOP

    # -- sync -------------------------------------------------------------------
    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        """Run the model call over the primary and the fallbacks."""
        call = self._new_call(request)

        def before_sleep(retry_state: Any) -> None:
            call.on_retry(retry_state)
            emit_events(call.events)

        try:
            while (nxt := call.next_route()) is not None:
                idx, route = nxt
                retrying = self.retry.retrying(
                    error_policy=self.error_policy,
                    deadline=call.deadline,
                    sleep=self._sleep,
                    before_sleep=before_sleep,
                    gateway=route.is_gateway,
                )
                try:
                    response = retrying(
                        self._attempt, call, idx, route, request, handler
                    )
                except Exception as exc:
                    if self._give_up(exc, idx, route, call):
                        if isinstance(exc, DeadlineExceededError):
                            return self._failed(call.all_failed(), call)
                        raise  # stop errors propagate, as in ModelRetryMiddleware
                    continue
                finally:
                    emit_events(call.events)
                return self._annotate(response, call, idx, route)
            return self._failed(call.all_failed(), call)
        finally:
            emit_events(call.events)

    def _attempt(
        self,
        call: CallState,
        idx: int,
        route: Route,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        attempt = call.admit(idx, route)
        try:
            limiter = call.rate_limits.get(route.key)
            if limiter is not None:
                limiter.acquire(call.req.rate_tokens, call.deadline)
        except BaseException:
            attempt.release()
            raise
        call.begin(attempt)
        watch = _TokenWatch() if self.streaming == "live" else None
        try:
            with scoped_config(tags=self._tags(), handlers=[watch] if watch else ()):
                response = handler(self._request_for(route, call, request))
        except BaseException as exc:
            call.attempt_failed(attempt, exc)
            if watch is not None and watch.text and isinstance(exc, Exception):
                raise StreamInterruptedError(
                    "".join(watch.text), route.name, exc, call.failures
                ) from exc
            raise
        call.attempt_ok(attempt)
        return response

    # -- async ------------------------------------------------------------------
    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        """Async version of `wrap_model_call`."""
        call = self._new_call(request)

        async def before_sleep(retry_state: Any) -> None:
            call.on_retry(retry_state)
            await aemit_events(call.events)

        try:
            while (nxt := call.next_route()) is not None:
                idx, route = nxt
                retrying = self.retry.aretrying(
                    error_policy=self.error_policy,
                    deadline=call.deadline,
                    sleep=self._asleep,
                    before_sleep=before_sleep,
                    gateway=route.is_gateway,
                )
                try:
                    response: ModelResponse[Any] = await retrying(
                        self._aattempt, call, idx, route, request, handler
                    )
                except Exception as exc:
                    if self._give_up(exc, idx, route, call):
                        if isinstance(exc, DeadlineExceededError):
                            return self._failed(call.all_failed(), call)
                        raise  # stop errors propagate, as in ModelRetryMiddleware
                    continue
                finally:
                    await aemit_events(call.events)
                return self._annotate(response, call, idx, route)
            return self._failed(call.all_failed(), call)
        finally:
            await aemit_events(call.events)

    async def _aattempt(
        self,
        call: CallState,
        idx: int,
        route: Route,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        attempt = call.admit(idx, route)
        try:
            limiter = call.rate_limits.get(route.key)
            if limiter is not None:
                await limiter.aacquire(call.req.rate_tokens, call.deadline)
        except BaseException:
            attempt.release()
            raise
        call.begin(attempt)
        watch = _TokenWatch() if self.streaming == "live" else None
        limit = None if route.passes_timeout else call.deadline.cap(route.timeout)
        try:
            with scoped_config(tags=self._tags(), handlers=[watch] if watch else ()):
                coro = handler(self._request_for(route, call, request))
                response: ModelResponse[Any]
                if limit is None or math.isinf(limit):
                    response = await coro
                else:
                    response = await asyncio.wait_for(coro, max(limit, 0.001))
        except BaseException as exc:
            call.attempt_failed(attempt, exc)
            if watch is not None and watch.text and isinstance(exc, Exception):
                raise StreamInterruptedError(
                    "".join(watch.text), route.name, exc, call.failures
                ) from exc
            raise
        call.attempt_ok(attempt)
        return response
