"""The `Router`'s entry points: each sync/async pair made from one description.

`generate` and `agenerate` take the same arguments, as do `stream` and
`astream`; they differ only in their I/O. So the `Router` describes each call
once (its signature and docstring, as a method returning the `Request` it
received), and `answer` / `aanswer` and `stream` / `astream` below make the
twins: they pick the side (`_drivers.SYNC`, `_drivers.ASYNC`), start the call
(`begin`) and drive its route loop (`_loop.py`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from langchain_holysheep.resilience import _drivers, _loop
from langchain_holysheep.resilience._call import CallState
from langchain_holysheep.resilience._events import pop_stream_scope

if TYPE_CHECKING:
    from langchain_holysheep.resilience._router import Router

__all__ = ["Request", "aanswer", "answer", "astream", "begin", "stream"]

_P = ParamSpec("_P")
_F = TypeVar("_F", bound=Callable[..., Any])


class Request(NamedTuple):
    """One call as an entry point received it (the same sync or async)."""

    messages: list[BaseMessage]
    stop: list[str] | None
    run_manager: Any
    kwargs: dict[str, Any]
    live: bool | None = None


_Describe = Callable[Concatenate["Router", _P], Request]


def _named(entry: _F, describe: Callable[..., Any], name: str, returns: str) -> _F:
    """Give `entry` the name and the signature of the call `describe` describes."""
    signature = inspect.signature(describe)
    entry.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation=returns
    )
    entry.__name__ = name
    entry.__qualname__ = f"Router.{name}"
    entry.__module__ = describe.__module__
    return entry


def begin(
    router: Router, side: _drivers.Side, request: Request, *, streamed: bool = False
) -> tuple[CallState, Any, bool]:
    """Start a call on `side`: its state, its I/O, and whether it streams live.

    It reports to the request's run manager, else to the live-stream scope's; a
    stream is live if the request says so, else if it has that scope. A
    streamed call's attempts get no run manager: their chunks reach the caller.
    """
    messages, stop, run_manager, kwargs, live = request
    scope = pop_stream_scope(kwargs)
    rm = run_manager or (side.scoped(scope) if scope else None)
    call = router.new_call(messages, kwargs, run_id=rm.run_id if rm else None)
    call.reporting = bool(rm is not None and rm.handlers)
    injected = router._asleep if side.is_async else router._sleep
    io = side.io(
        side.transport(stop, None if streamed else rm),
        lambda: side.emit(rm, call.events),
        injected or side.sleep,
    )
    return call, io, scope is not None if live is None else live


def _result(router: Router, found: _loop.Found | None, call: CallState) -> ChatResult:
    """The answer a route gave (annotated), or the error that ends the call."""
    if found is None:
        raise call.final_error()
    return router.annotate(found[2], call, found[0], found[1])


def answer(describe: _Describe[_P]) -> Callable[Concatenate[Router, _P], ChatResult]:
    """`Router.generate`: the call `describe` describes, answered (sync)."""

    def generate(self: Router, *args: _P.args, **kwargs: _P.kwargs) -> ChatResult:
        r = describe(self, *args, **kwargs)
        if self.wants_internal_stream(r.kwargs):
            chunks = self.stream(
                r.messages, r.stop, r.run_manager, live=False, **r.kwargs
            )
            return generate_from_stream(chunks)
        call, io, _ = begin(self, _drivers.SYNC, r)
        loop = _loop.answer_loop(self, call, r.messages, r.kwargs)
        return _result(self, _drivers.run(loop, io), call)

    generate.__doc__ = f"{describe.__doc__}\n\nSync; see also `agenerate`."
    return _named(generate, describe, "generate", "ChatResult")


def aanswer(
    describe: _Describe[_P],
) -> Callable[Concatenate[Router, _P], Coroutine[Any, Any, ChatResult]]:
    """`Router.agenerate`: the call `describe` describes, answered (async)."""

    async def agenerate(
        self: Router, *args: _P.args, **kwargs: _P.kwargs
    ) -> ChatResult:
        r = describe(self, *args, **kwargs)
        if self.wants_internal_stream(r.kwargs):
            chunks = self.astream(
                r.messages, r.stop, r.run_manager, live=False, **r.kwargs
            )
            return generate_from_stream(iter([c async for c in chunks]))
        call, io, _ = begin(self, _drivers.ASYNC, r)
        loop = _loop.answer_loop(self, call, r.messages, r.kwargs)
        return _result(self, await _drivers.arun(loop, io), call)

    agenerate.__doc__ = f"{describe.__doc__}\n\nAsync `generate`."
    return _named(agenerate, describe, "agenerate", "ChatResult")


def stream(
    describe: _Describe[_P],
) -> Callable[Concatenate[Router, _P], Iterator[ChatGenerationChunk]]:
    """`Router.stream`: the call `describe` describes, streamed (sync)."""

    def stream(
        self: Router, *args: _P.args, **kwargs: _P.kwargs
    ) -> Iterator[ChatGenerationChunk]:
        r = describe(self, *args, **kwargs)
        call, io, live = begin(self, _drivers.SYNC, r, streamed=True)
        loop = _loop.stream_loop(self, call, r.messages, r.kwargs, live=live)
        return _drivers.stream(loop, io)

    stream.__doc__ = f"{describe.__doc__}\n\nSync; see also `astream`."
    return _named(stream, describe, "stream", "Iterator[ChatGenerationChunk]")


def astream(
    describe: _Describe[_P],
) -> Callable[Concatenate[Router, _P], AsyncIterator[ChatGenerationChunk]]:
    """`Router.astream`: the call `describe` describes, streamed (async)."""

    async def astream(
        self: Router, *args: _P.args, **kwargs: _P.kwargs
    ) -> AsyncIterator[ChatGenerationChunk]:
        r = describe(self, *args, **kwargs)
        call, io, live = begin(self, _drivers.ASYNC, r, streamed=True)
        loop = _loop.stream_loop(self, call, r.messages, r.kwargs, live=live)
        async for chunk in _drivers.astream(loop, io):
            yield chunk

    astream.__doc__ = f"{describe.__doc__}\n\nAsync `stream`."
    return _named(astream, describe, "astream", "AsyncIterator[ChatGenerationChunk]")
