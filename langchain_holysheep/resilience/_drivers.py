"""Drivers: perform a route loop's operations, sync or async (I/O only).

A driver steps a loop generator (`_loop.py`): it performs each operation with
a transport (`_transports.py`), sends the result back or throws the error in,
flushes the call's pending callback events, and yields delivered chunks. It
closes what the loop left open when the consumer stops early.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, NamedTuple

from langchain_holysheep.resilience._bounded import BoundExceeded, run_bounded
from langchain_holysheep.resilience._events import aemit, emit
from langchain_holysheep.resilience._ops import (
    Acquire,
    Close,
    Deliver,
    Loop,
    Open,
    Read,
    Send,
    Sleep,
)
from langchain_holysheep.resilience._streams import (
    AsyncSource,
    DirectSource,
    PumpSource,
)
from langchain_holysheep.resilience._transports import (
    AsyncModelTransport,
    AsyncTransport,
    ModelTransport,
    Transport,
)
from langchain_holysheep.resilience._watched import WatchedSource, watchable

__all__ = [
    "ASYNC",
    "SYNC",
    "AsyncIO",
    "Side",
    "SyncIO",
    "arun",
    "astream",
    "run",
    "stream",
]

_timeout = getattr(asyncio, "timeout", None)


class SyncIO:
    """Blocking I/O for a loop: a transport, a sleep function, event flushing."""

    def __init__(
        self,
        transport: Transport,
        flush: Callable[[], None],
        sleep: Callable[[float], None],
    ) -> None:
        self.transport = transport
        self.flush = flush
        self.sleep = sleep
        self.sources: list[Any] = []

    def perform(self, op: Any) -> Any:
        """Perform one operation; its result goes back to the loop."""
        kind = type(op)
        if kind is Read:
            return op.source.next(op.timeout)
        if kind is Send:
            if op.timeout is None:
                return self.transport.send(op)
            send_within = getattr(self.transport, "send_within", None)
            try:
                if send_within is not None:
                    return send_within(op, op.timeout)
                return run_bounded(lambda: self.transport.send(op), op.timeout)
            except BoundExceeded:
                raise op.expired() from None
        if kind is Open:
            it = self.transport.stream(op)
            source: Any
            if not op.timed:
                source = DirectSource(lambda: it)
            elif watchable(op.route.model):
                source = WatchedSource(it)
            else:
                source = PumpSource(lambda: it)
            self.sources.append(source)
            return source
        if kind is Close:
            self.sources.remove(op.source)
            op.source.close()
        elif kind is Sleep:
            self.sleep(op.seconds)
        elif kind is Acquire:
            op.limiter.acquire(op.tokens, op.call.deadline)
        return None

    def close(self) -> None:
        """Close what the loop left open."""
        while self.sources:
            self.sources.pop().close()


class _Steps:
    """Steps a loop: sends it each result, or throws each error in."""

    __slots__ = ("error", "loop", "result", "value")

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: Any = None

    def next(self) -> Any:
        """The next operation, or `_DONE` (then the loop's value is `result`)."""
        value, error = self.value, self.error
        self.value = self.error = None
        try:
            if error is None:
                return self.loop.send(value)
            return self.loop.throw(error)
        except StopIteration as stop:
            self.result = stop.value
            return _DONE


_DONE = object()


def stream(loop: Loop, io: SyncIO) -> Iterator[Any]:
    """Drive `loop`, yielding delivered chunks; returns the loop's value."""
    steps = _Steps(loop)
    try:
        while (op := steps.next()) is not _DONE:
            io.flush()
            if type(op) is Deliver:
                yield op.chunk
                continue
            try:
                steps.value = io.perform(op)
            except BaseException as exc:
                steps.error = exc
        return steps.result
    finally:
        io.flush()
        loop.close()
        io.close()


def run(loop: Loop, io: SyncIO) -> Any:
    """Drive a reply loop to its value."""
    try:
        next(stream(loop, io))
    except StopIteration as stop:
        return stop.value
    raise AssertionError("a reply loop delivered a chunk")


class AsyncIO:
    """Async I/O for a loop: a transport, a sleep coroutine, event flushing.

    `pending`: the list `flush` delivers, when there is one; the drivers then
    skip `flush` while it is empty.
    """

    def __init__(
        self,
        transport: AsyncTransport,
        flush: Callable[[], Awaitable[None]],
        sleep: Callable[[float], Awaitable[Any]],
        pending: list[Any] | None = None,
    ) -> None:
        self.transport = transport
        self.flush = flush
        self.sleep = sleep
        self.pending = pending
        self.sources: list[AsyncSource] = []

    @property
    def unflushed(self) -> bool:
        """Whether `flush` may have something to deliver."""
        return self.pending is None or bool(self.pending)

    async def perform(self, op: Any) -> Any:
        """Perform one operation; its result goes back to the loop."""
        kind = type(op)
        if kind is Read:
            return await op.source.next(op.timeout)
        if kind is Send:
            if op.timeout is None:
                return await self.transport.send(op)
            if _timeout is None:  # Python 3.10
                return await _bounded(self.transport.send(op), op)
            cm = _timeout(max(op.timeout, 0.0))
            try:
                async with cm:
                    return await self.transport.send(op)
            except TimeoutError:
                if cm.expired():
                    raise op.expired() from None
                raise
        if kind is Open:
            source = AsyncSource(self.transport.stream(op))
            self.sources.append(source)
            return source
        if kind is Close:
            self.sources.remove(op.source)
            await op.source.close()
        elif kind is Sleep:
            await self.sleep(op.seconds)
        elif kind is Acquire:
            await op.limiter.aacquire(op.tokens, op.call.deadline)
        return None

    async def close(self) -> None:
        """Close what the loop left open."""
        while self.sources:
            await self.sources.pop().close()


async def _bounded(coro: Awaitable[Any], op: Send) -> Any:
    """`coro` within `op.timeout` (Python 3.10, without `asyncio.timeout`)."""
    assert op.timeout is not None
    try:
        return await asyncio.wait_for(coro, max(op.timeout, 0.0))
    except asyncio.TimeoutError:
        raise op.expired() from None


async def astream(
    loop: Loop, io: AsyncIO, out: list[Any] | None = None
) -> AsyncIterator[Any]:
    """Drive `loop`, yielding delivered chunks; its value goes to `out`."""
    steps = _Steps(loop)
    try:
        while (op := steps.next()) is not _DONE:
            if io.unflushed:
                await io.flush()
            if type(op) is Deliver:
                yield op.chunk
                continue
            await _advance(steps, op, io)
        if out is not None:
            out.append(steps.result)
    finally:
        await _end(loop, io)


async def arun(loop: Loop, io: AsyncIO) -> Any:
    """Drive a reply loop to its value (async)."""
    steps = _Steps(loop)
    try:
        while (op := steps.next()) is not _DONE:
            if io.unflushed:
                await io.flush()
            if type(op) is Deliver:
                raise AssertionError("a reply loop delivered a chunk")
            await _advance(steps, op, io)
        return steps.result
    finally:
        await _end(loop, io)


async def _advance(steps: _Steps, op: Any, io: AsyncIO) -> None:
    """Perform `op`; its value, or the error it raised, goes back to the loop."""
    try:
        if type(op) is Read:  # a stream's every chunk: read it here
            steps.value = await op.source.next(op.timeout)
        else:
            steps.value = await io.perform(op)
    except BaseException as exc:
        steps.error = exc


async def _end(loop: Loop, io: AsyncIO) -> None:
    """The last flush, then the loop and its sources closed."""
    if io.unflushed:
        await io.flush()
    loop.close()
    await io.close()


class Side(NamedTuple):
    """The I/O of a chat-model call of one kind, sync (`SYNC`) or async (`ASYNC`)."""

    is_async: bool
    io: Callable[..., Any]
    """`SyncIO` or `AsyncIO`."""
    transport: Callable[..., Any]
    """Attempts as calls of the route's chat model: `(stop, run_manager)`."""
    emit: Callable[[Any, list[Any]], Any]
    """Delivers the call's pending callback events to its run manager."""
    sleep: Callable[[float], Any]
    """The sleep of backoffs unless one is injected."""
    scoped: Callable[[Any], Any]
    """The run manager of this kind in a live-stream scope."""


SYNC = Side(False, SyncIO, ModelTransport, emit, time.sleep, lambda s: s.run_manager)
ASYNC = Side(
    True,
    AsyncIO,
    AsyncModelTransport,
    aemit,
    asyncio.sleep,
    lambda s: s.async_run_manager,
)
