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
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain.agents.middleware.types import AgentState
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langgraph.errors import GraphBubbleUp

from langchain_holysheep._contract import METADATA_KEY
from langchain_holysheep.middleware._routes import RouterCache
from langchain_holysheep.middleware._runconfig import (
    NOSTREAM_TAG,
    aemit_events,
    emit_events,
    scoped_config,
)
from langchain_holysheep.middleware._validate import check_resilience_args
from langchain_holysheep.resilience import (
    Action,
    AllRoutesFailedError,
    BreakerRegistry,
    ErrorPolicy,
    RateLimiterRegistry,
    RetryPolicy,
    Router,
    StateArg,
    StreamInterruptedError,
    default_policy,
    rate_limiters_for,
    registry_for,
)
from langchain_holysheep.resilience._call import CallState
from langchain_holysheep.resilience._drivers import AsyncIO, SyncIO, arun, run
from langchain_holysheep.resilience._loop import Found, answer_loop
from langchain_holysheep.resilience._ops import Send
from langchain_holysheep.resilience._policy import Rule
from langchain_holysheep.resilience._routes import Route
from langchain_holysheep.resilience._transports import call_within
from langchain_holysheep.spend.budgets import BudgetError

__all__ = ["OVER_BUDGET", "OnFailure", "ResilienceMiddleware", "StreamingMode"]

OVER_BUDGET = Rule(
    "budget refusal of one route (a spend limit around the agent): a cheaper "
    "route may fit",
    Action.FALLBACK,
    "over budget",
    lambda info: info.any_instance(BudgetError),
    breaker_failure=False,
)
"""Fall over, without counting against the route's breaker: the refusal says
this route's worst case does not fit what is left, not that it is unhealthy."""

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
        state: where breakers and rate limits live when no registry is given:
            a `StateStore` or a URL (`redis://host:6379/0`) shared by every
            process (default: `HOLYSHEEP_STATE_URL`, else this process).
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
        state: StateArg = None,
        on_failure: OnFailure = "error",
        streaming: StreamingMode = "buffer",
        sleep: Callable[[float], None] | None = None,
        asleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__()
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
            [
                (GraphBubbleUp, Action.STOP),
                (asyncio.CancelledError, Action.STOP),
                OVER_BUDGET,
            ]
        )
        self.deadline = deadline
        self.timeout = timeout
        if state is not None:  # a bad store or URL fails here, not at a call
            breakers = breakers or registry_for(state)
            rate_limits = rate_limits or rate_limiters_for(state)
        self._breakers = breakers
        self._rate_limits = rate_limits
        self.on_failure = on_failure
        self.streaming: StreamingMode = streaming
        self._sleep = sleep
        self._asleep = asleep
        self._routers = RouterCache()

    # -- routes -----------------------------------------------------------------
    def _router(self, request: ModelRequest[Any]) -> Router:
        return self._routers.get(request.model, self.fallbacks, self._new_router)

    def _new_router(self, routes: list[Route]) -> Router:
        return Router(
            routes,
            error_policy=self.error_policy,
            retry=self.retry,
            breakers=self._breakers,
            rate_limits=self._rate_limits,
            deadline=self.deadline,
            timeout=self.timeout,
            sleep=self._sleep,
            asleep=self._asleep,
        )

    def _start(self, request: ModelRequest[Any]) -> tuple[Router, CallState, dict]:
        router = self._router(request)
        kwargs: dict[str, Any] = {"tools": request.tools} if request.tools else {}
        call = router.new_call(request.messages, dict(kwargs))
        return router, call, kwargs

    def request_for(self, op: Send, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """The agent's request, sent to the route of `op` (with its timeout)."""
        settings = request.model_settings
        timeout = op.kwargs.get("timeout")
        if timeout is not None and not math.isinf(timeout):
            settings = {**settings, "timeout": timeout}
        return request.override(model=op.route.model, model_settings=settings)

    def attempt_scope(self) -> tuple[Any, _TokenWatch | None]:
        """The config scope of one attempt, and its token watch in live mode."""
        watch = _TokenWatch() if self.streaming == "live" else None
        tags = (NOSTREAM_TAG,) if self.streaming == "buffer" else ()
        return scoped_config(tags=tags, handlers=[watch] if watch else ()), watch

    # -- results ----------------------------------------------------------------
    def _annotate(self, found: Found, call: CallState) -> Any:
        idx, route, response = found
        meta = call.metadata(idx, route)
        messages = [response] if isinstance(response, AIMessage) else response.result
        for message in messages:
            if isinstance(message, AIMessage):
                message.response_metadata[METADATA_KEY] = meta
        return response

    @staticmethod
    def _no_route(call: CallState) -> Exception:
        """What ends a call that no route answered.

        When the last route was refused by a spend limit, the refusal itself
        (so the spend middleware around can end the run with its message).
        """
        last = call.last_error
        if isinstance(last, BudgetError):
            return last
        return call.all_failed()

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
        message.response_metadata[METADATA_KEY] = call.metadata(None, None)
        return ModelResponse(result=[message])

    # -- drivers (I/O only) ------------------------------------------------------
    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        """Run the model call over the primary and the fallbacks."""
        router, call, kwargs = self._start(request)
        io = SyncIO(
            _Handler(self, request, handler),
            lambda: emit_events(call.events),
            self._sleep or time.sleep,
        )
        try:
            found = run(answer_loop(router, call, request.messages, kwargs), io)
        except AllRoutesFailedError as exc:  # the deadline ended the call
            return self._failed(exc, call)
        if found is None:
            return self._failed(self._no_route(call), call)
        return self._annotate(found, call)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        """Async version of `wrap_model_call`."""
        router, call, kwargs = self._start(request)
        io = AsyncIO(
            _AsyncHandler(self, request, handler),
            lambda: aemit_events(call.events),
            self._asleep or asyncio.sleep,
        )
        try:
            found = await arun(answer_loop(router, call, request.messages, kwargs), io)
        except AllRoutesFailedError as exc:  # the deadline ended the call
            return self._failed(exc, call)
        if found is None:
            return self._failed(self._no_route(call), call)
        return self._annotate(found, call)


def _interrupted(watch: _TokenWatch | None, op: Send, exc: Exception) -> None:
    """In live mode, a failure after streamed tokens cannot be hidden: raise."""
    if watch is not None and watch.text:
        raise StreamInterruptedError("".join(watch.text), op.route.name, exc) from exc


class _Handler:
    """Attempts as calls of the agent's model-call handler (sync transport)."""

    def __init__(
        self,
        mw: ResilienceMiddleware,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> None:
        self.mw, self.request, self.handler = mw, request, handler

    def send(self, op: Send) -> ModelResponse[Any]:
        scope, watch = self.mw.attempt_scope()
        try:
            with scope:
                return self.handler(self.mw.request_for(op, self.request))
        except Exception as exc:
            _interrupted(watch, op, exc)
            raise

    def send_within(self, op: Send, seconds: float) -> ModelResponse[Any]:
        return call_within(op.route.model, lambda: self.send(op), seconds)

    def stream(self, op: Any) -> Any:
        raise NotImplementedError("agent model calls are not streamed by the loop")


class _AsyncHandler:
    """Attempts as calls of the agent's model-call handler (async transport)."""

    def __init__(
        self,
        mw: ResilienceMiddleware,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> None:
        self.mw, self.request, self.handler = mw, request, handler

    async def send(self, op: Send) -> ModelResponse[Any]:
        scope, watch = self.mw.attempt_scope()
        try:
            with scope:
                return await self.handler(self.mw.request_for(op, self.request))
        except Exception as exc:
            _interrupted(watch, op, exc)
            raise

    def stream(self, op: Any) -> Any:
        raise NotImplementedError("agent model calls are not streamed by the loop")
