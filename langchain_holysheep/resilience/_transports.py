"""Transports: how an attempt reaches a route. The route loop never knows which.

A transport performs the two operations that touch a route: `send` (one
reply) and `stream` (a lazy iterator of chunks; a sync driver may pull it in a
pump thread). `ModelTransport` / `AsyncModelTransport` call any LangChain
`BaseChatModel` (`_generate`, `_stream`, and their async twins); the agent
middleware plugs in its model-call handler; a wire transport (raw
OpenAI-format HTTP, e.g. for a proxy) implements the same two methods.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from langchain_holysheep.resilience._bounded import BoundExceeded, run_bounded
from langchain_holysheep.resilience._ops import Open, Send

T = TypeVar("T")
_M = TypeVar("_M", CallbackManagerForLLMRun, AsyncCallbackManagerForLLMRun)

__all__ = [
    "call_within",
    "AsyncModelTransport",
    "AsyncTransport",
    "ModelTransport",
    "Transport",
    "astreams",
    "result_to_chunk",
    "streams",
]


class Transport(Protocol):
    """Blocking I/O of attempts."""

    def send(self, op: Send) -> Any:
        """One reply (whatever the loop's caller expects, e.g. a `ChatResult`)."""

    def stream(self, op: Open) -> Iterator[ChatGenerationChunk]:
        """A lazy iterator of chunks (nothing is sent before the first `next`)."""


class AsyncTransport(Protocol):
    """Async I/O of attempts."""

    async def send(self, op: Send) -> Any:
        """One reply."""

    def stream(self, op: Open) -> AsyncIterator[ChatGenerationChunk]:
        """An async iterator of chunks."""


_ACCEPTS_RUN_MANAGER: dict[Any, bool] = {}


def _accepts_run_manager(fn: Callable[..., Any]) -> bool:
    key = getattr(fn, "__func__", fn)
    known = _ACCEPTS_RUN_MANAGER.get(key)
    if known is None:
        known = "run_manager" in inspect.signature(fn).parameters
        _ACCEPTS_RUN_MANAGER[key] = known
    return known


def streams(model: BaseChatModel) -> bool:
    """Whether the model implements `_stream`."""
    return type(model)._stream is not BaseChatModel._stream


def astreams(model: BaseChatModel) -> bool:
    """Whether the model can stream asynchronously (natively or via `_stream`)."""
    return type(model)._astream is not BaseChatModel._astream or streams(model)


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


def call_within(model: Any, fn: Callable[[], T], seconds: float) -> T:
    """`fn()`, bounded to `seconds` wall-clock.

    A model that can bound its own requests (`model.within(seconds)`, e.g.
    `HolySheepGateway` on its shared client) is cut at the socket, in the
    caller's thread; any other model runs in a reusable worker thread that is
    abandoned at the bound.

    Raises:
        BoundExceeded: the bound passed.
    """
    scope = getattr(model, "within", None)
    guard = scope(seconds) if scope is not None else None
    if guard is None:
        return run_bounded(fn, seconds)
    with guard as g:
        try:
            return fn()
        except Exception as exc:
            if g.fired:
                raise BoundExceeded from exc
            raise


class _ModelCalls(Generic[_M]):
    """Attempts as calls of the route's `BaseChatModel`: what sync and async share.

    Args:
        stop: the call's stop sequences.
        run_manager: the LLM run's manager, passed to non-streaming attempts
            (so token callbacks of the chat model's run fire).
    """

    __slots__ = ("run_manager", "stop")

    def __init__(
        self, stop: list[str] | None = None, run_manager: _M | None = None
    ) -> None:
        self.stop = stop
        self.run_manager: _M | None = run_manager

    def _answer(self, op: Send, generate: str) -> Callable[[], Any]:
        """The call of `op`: the model's `generate` method, e.g. `"_generate"`.

        Under stream limits, a model's limited twin (`_generate_limited` of a
        `HolySheepGateway`) reads the answer as a stream under them instead.
        """
        model, stop, rm = op.route.model, self.stop, self.run_manager
        if op.limits != (None, None):
            limited = getattr(model, f"{generate}_limited", None)
            if limited is not None:
                return partial(limited, op.messages, stop, op.limits, **op.kwargs)
        gen = getattr(model, generate)
        if rm is not None and _accepts_run_manager(gen):
            return partial(gen, op.messages, stop=stop, run_manager=rm, **op.kwargs)
        return partial(gen, op.messages, stop=stop, **op.kwargs)


class ModelTransport(_ModelCalls[CallbackManagerForLLMRun]):
    """Attempts as calls of the route's `BaseChatModel` (sync)."""

    __slots__ = ()

    def send(self, op: Send) -> ChatResult:
        """`model._generate(...)` (under stream limits where the model can)."""
        return self._answer(op, "_generate")()  # type: ignore[no-any-return]

    def send_within(self, op: Send, seconds: float) -> ChatResult:
        """`send`, bounded to `seconds` wall-clock; see `call_within`."""
        return call_within(op.route.model, lambda: self.send(op), seconds)

    def stream(self, op: Open) -> Iterator[ChatGenerationChunk]:
        """`model._stream(...)`, or one chunk of `_generate` for models without."""
        model = op.route.model
        if streams(model):
            return model._stream(op.messages, stop=self.stop, **op.kwargs)
        return self._one_shot(model, op)

    def _one_shot(
        self, model: BaseChatModel, op: Open
    ) -> Iterator[ChatGenerationChunk]:
        yield result_to_chunk(model._generate(op.messages, stop=self.stop, **op.kwargs))


class AsyncModelTransport(_ModelCalls[AsyncCallbackManagerForLLMRun]):
    """Attempts as calls of the route's `BaseChatModel` (async)."""

    __slots__ = ()

    async def send(self, op: Send) -> ChatResult:
        """`await model._agenerate(...)` (under stream limits where the model can)."""
        return await self._answer(op, "_agenerate")()  # type: ignore[no-any-return]

    def stream(self, op: Open) -> AsyncIterator[ChatGenerationChunk]:
        """`model._astream(...)`, or one chunk of `_agenerate`."""
        model = op.route.model
        if astreams(model):
            return model._astream(op.messages, stop=self.stop, **op.kwargs)
        return self._one_shot(model, op)

    async def _one_shot(
        self, model: BaseChatModel, op: Open
    ) -> AsyncIterator[ChatGenerationChunk]:
        result = await model._agenerate(op.messages, stop=self.stop, **op.kwargs)
        yield result_to_chunk(result)
