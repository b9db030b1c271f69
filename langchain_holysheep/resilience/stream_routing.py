"""`StreamRouting`: the router's `stream` / `astream` (mixed into `Router`).

Two modes:

- **live** (`stream()` / `astream()`): chunks before the first content chunk
  are held back, so retries and failover stay invisible. Once content has been
  delivered, a failure either continues on a later route that supports
  assistant prefill (plain text only, never after tool-call chunks: the
  delivered text is sent as a trailing assistant message) or raises
  `StreamInterruptedError` carrying the partial text.
- **buffered** (`invoke` streaming internally): a route's stream is read to its
  end before anything is returned, so a failure anywhere restarts on the next
  route and the answer is never truncated.

The last chunk carries `response_metadata["holysheep"]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import (
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from langchain_holysheep.resilience.call import Attempt, CallState
from langchain_holysheep.resilience.errors import Action
from langchain_holysheep.resilience.events import emit, pop_stream_scope
from langchain_holysheep.resilience.exceptions import (
    DeadlineExceededError,
    StreamInterruptedError,
)
from langchain_holysheep.resilience.routes import Route
from langchain_holysheep.resilience.streams import (
    DirectSource,
    PumpSource,
    ReadTimeout,
    StreamWatch,
    final_chunk,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_holysheep.resilience.errors import ErrorPolicy
    from langchain_holysheep.resilience.retry import RetryPolicy

__all__ = [
    "Opened",
    "StreamRouting",
    "StreamRoutingBase",
    "astreams",
    "result_to_chunk",
    "streams",
]


@dataclass
class Opened:
    """A streamed attempt: the chunks read so far, and the rest if live."""

    attempt: Attempt
    watch: StreamWatch
    prelude: list[ChatGenerationChunk]
    source: Any = None  # a live source still to drain, or None when complete


def result_to_chunk(result: ChatResult) -> ChatGenerationChunk:
    """A whole `ChatResult` as one chunk (for routes that cannot stream)."""
    gen = result.generations[0]
    msg = gen.message
    calls = getattr(msg, "tool_calls", None) or []
    chunk_msg = AIMessageChunk(
        content=msg.content,
        additional_kwargs=dict(msg.additional_kwargs),
        response_metadata=dict(msg.response_metadata),
        usage_metadata=getattr(msg, "usage_metadata", None),
        id=msg.id,
        tool_call_chunks=[
            tool_call_chunk(
                name=c["name"], args=json.dumps(c["args"]), id=c.get("id"), index=i
            )
            for i, c in enumerate(calls)
        ],
    )
    info = dict(gen.generation_info or {})
    info.setdefault("finish_reason", msg.response_metadata.get("finish_reason", "stop"))
    return ChatGenerationChunk(message=chunk_msg, generation_info=info)


def streams(model: BaseChatModel) -> bool:
    """Whether the model implements `_stream`."""
    return type(model)._stream is not BaseChatModel._stream


def astreams(model: BaseChatModel) -> bool:
    """Whether the model can stream asynchronously (natively or via `_stream`)."""
    return type(model)._astream is not BaseChatModel._astream or streams(model)


class StreamRoutingBase:
    """What the stream mixins share (and need from `Router`)."""

    if TYPE_CHECKING:  # provided by Router
        error_policy: ErrorPolicy
        tail_timeout: float
        _sleep: Callable[[float], None] | None
        _asleep: Callable[[float], Any] | None

        def limits(self, route: Route) -> tuple[Any, Any, Any]: ...  # noqa: D102
        def retry_policy(self, route: Route) -> RetryPolicy: ...  # noqa: D102
        def new_call(  # noqa: D102
            self,
            messages: Any,
            kwargs: dict[str, Any],
            preferred: Any = None,
            *,
            run_id: Any = None,
        ) -> CallState: ...
        def route_kwargs(  # noqa: D102
            self, route: Route, call: CallState, kwargs: dict[str, Any], *, stream: bool
        ) -> dict[str, Any]: ...
        def acquire(self, route: Route, call: CallState) -> None: ...  # noqa: D102
        async def aacquire(self, route: Route, call: CallState) -> None: ...  # noqa: D102

    def _watch(self, route: Route, call: CallState, kwargs: dict) -> StreamWatch:
        _, first, stall = self.limits(route)
        return StreamWatch(
            route.name,
            call.deadline,
            first_token=first,
            stall=stall,
            tail=self.tail_timeout,
            early_finish="response_format" not in kwargs,
            require_finish=route.passes_timeout,
        )

    @staticmethod
    def _continuation(messages: list[BaseMessage], text: str) -> list[BaseMessage]:
        return [*messages, AIMessage(content=text)]


class StreamRouting(StreamRoutingBase):
    """The sync streaming half of `Router` (a mixin; see `routing.Router`)."""

    # -- sync --------------------------------------------------------------------------
    def _read(self, source: Any, watch: StreamWatch) -> ChatGenerationChunk | None:
        timeout, kind = watch.next_timeout()
        try:
            chunk = source.next(timeout)
        except ReadTimeout:
            err = watch.expired(kind)
            if err is None:
                return None
            raise err from None
        if chunk is None:
            return None
        watch.saw(chunk)
        late = watch.late()
        if late is not None:
            raise late
        return chunk

    def _open(
        self,
        call: CallState,
        idx: int,
        route: Route,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        live: bool,
    ) -> Opened:
        attempt = call.admit(idx, route)
        try:
            self.acquire(route, call)
        except BaseException:
            attempt.release()
            raise
        call.begin(attempt)
        watch = self._watch(route, call, kwargs)
        kw = self.route_kwargs(route, call, kwargs, stream=True)
        model = route.model

        def factory() -> Iterator[ChatGenerationChunk]:
            if not streams(model):
                return iter(
                    [result_to_chunk(model._generate(messages, stop=stop, **kw))]
                )
            return model._stream(messages, stop=stop, run_manager=None, **kw)

        source: Any = None
        prelude: list[ChatGenerationChunk] = []
        try:
            source = PumpSource(factory) if watch.needs_timer else DirectSource(factory)
            while not watch.complete:
                chunk = self._read(source, watch)
                if chunk is None:
                    break
                prelude.append(chunk)
                if live and watch.content:
                    return Opened(attempt, watch, prelude, source)
            err = watch.incomplete()
            if err is not None:
                raise err
        except BaseException as exc:
            if source is not None:
                source.close()
            wrapped = watch.wrap(exc)
            call.attempt_failed(attempt, wrapped)
            if wrapped is exc:
                raise
            raise wrapped from exc
        source.close()
        call.attempt_ok(attempt)
        return Opened(attempt, watch, prelude)

    def stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        live: bool | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """One streamed call with failover (sync); see the module docstring."""
        scope = pop_stream_scope(kwargs)
        rm = run_manager or (scope.run_manager if scope else None)
        live = scope is not None if live is None else live
        call = self.new_call(messages, kwargs, run_id=rm.run_id if rm else None)
        call.reporting = bool(rm is not None and rm.handlers)
        delivered: list[str] = []
        tool_calls = False
        broken: BaseException | None = None
        broken_model = ""
        opened: Opened | None = None
        last: ChatGenerationChunk | None = None

        def before_sleep(rs: Any) -> None:
            call.on_retry(rs)
            emit(rm, call.events)

        try:
            while True:
                nxt = call.next_route(need_prefill=bool(delivered))
                emit(rm, call.events)
                if nxt is None:
                    if broken is not None:
                        raise StreamInterruptedError(
                            "".join(delivered), broken_model, broken, call.failures
                        ) from broken
                    raise call.final_error()
                idx, route = nxt
                msgs = (
                    self._continuation(messages, "".join(delivered))
                    if delivered
                    else messages
                )
                retrying = self.retry_policy(route).retrying(
                    error_policy=self.error_policy,
                    deadline=call.deadline,
                    sleep=self._sleep,
                    before_sleep=before_sleep,
                    gateway=route.is_gateway,
                )
                try:
                    current: Opened = retrying(
                        self._open, call, idx, route, msgs, stop, kwargs, live
                    )
                    opened = current
                except Exception as exc:
                    decision = call.route_failed(idx, route, exc)
                    emit(rm, call.events)
                    if decision.action is Action.STOP:
                        if broken is not None:
                            raise StreamInterruptedError(
                                "".join(delivered), route.name, exc, call.failures
                            ) from exc
                        if isinstance(exc, DeadlineExceededError):
                            raise call.all_failed() from exc
                        raise
                    continue
                emit(rm, call.events)
                base = len(delivered)
                for chunk in current.prelude:
                    last = chunk
                    yield chunk
                watch = current.watch
                if current.source is not None:
                    source = current.source
                    try:
                        while not watch.complete:
                            nxt_chunk = self._read(source, watch)
                            if nxt_chunk is None:
                                break
                            last = nxt_chunk
                            yield nxt_chunk
                        err = watch.incomplete()
                        if err is not None:
                            raise err
                    except Exception as exc:
                        source.close()
                        wrapped = watch.wrap(exc)
                        call.attempt_failed(current.attempt, wrapped)
                        opened = None
                        delivered[base:] = watch.text
                        tool_calls = tool_calls or watch.tool_calls
                        broken, broken_model = wrapped, route.name
                        decision = call.route_failed(idx, route, wrapped)
                        emit(rm, call.events)
                        if decision.action is Action.STOP or tool_calls:
                            raise StreamInterruptedError(
                                "".join(delivered), route.name, wrapped, call.failures
                            ) from exc
                        call.continued_from.append(route.name)
                        continue
                    source.close()
                    call.attempt_ok(current.attempt)
                opened = None
                emit(rm, call.events)
                yield final_chunk(last, call.metadata(idx, route))
                return
        finally:
            if opened is not None and opened.source is not None:
                opened.source.close()
                opened.attempt.release()
            emit(rm, call.events)
