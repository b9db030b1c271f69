"""Delivering a response with its fault, at the ASGI level.

Each route returns a `Delivery`: an ASGI callable that waits, writes, stalls or
cuts as its fault says, and finishes the request's log record *before* writing
the response's last bytes (so the log is never behind what a client has seen).

Two faults need the raw connection: a TCP reset (SO_LINGER 0, then abort) and a
close in mid-body. The outer ASGI wrapper in `app.py` stores uvicorn's
request-response cycle in the scope (`send.__self__`); its `transport` is the
connection.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from langchain_holysheep.simulator import wire
from langchain_holysheep.simulator.faults import Fault
from langchain_holysheep.simulator.log import RequestLog, RequestRecord
from langchain_holysheep.simulator.replies import Completion
from langchain_holysheep.simulator.tokens import split_words

__all__ = [
    "CYCLE_KEY",
    "Delivery",
    "deliver_bad_stream",
    "deliver_completion",
    "deliver_error",
    "deliver_page",
    "deliver_stream",
]

#: Scope key under which the outer wrapper stores uvicorn's request cycle.
CYCLE_KEY = "holysheep.cycle"

_JSON = (b"content-type", b"application/json")
_HTML = (b"content-type", b"text/html; charset=utf-8")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_LINGER_0 = struct.pack("ii", 1, 0)


class Exchange:
    """One request's connection, log record and the server's stop signal."""

    __slots__ = ("log", "receive", "record", "scope", "send", "stopping")

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        log: RequestLog,
        record: RequestRecord,
        stopping: asyncio.Event,
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.log = log
        self.record = record
        self.stopping = stopping

    def finish(self, status: int | str, *, billed: bool = False) -> None:
        """Finish the log record (first call wins)."""
        self.log.finish(self.record, status, billed=billed)

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Send the response status line and headers."""
        rid = f"req_sim_{self.record.seq}".encode()
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"x-request-id", rid)],
            }
        )

    async def body(self, data: bytes, *, more: bool = False) -> None:
        """Send body bytes."""
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def pause(self, seconds: float | None) -> str:
        """Wait `seconds` (`None`: forever) unless the client leaves or we stop.

        Returns:
            "ok" after the full wait, "disconnect" or "stop".
        """
        if self.stopping.is_set():
            return "stop"
        if seconds is not None and seconds <= 0:
            return "ok"
        gone: asyncio.Future[Message] = asyncio.ensure_future(self.receive())
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            done, _ = await asyncio.wait(
                (gone, stop), timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            gone.cancel()
            stop.cancel()
        if not done:
            return "ok"
        return "stop" if stop in done else "disconnect"

    async def drop(self, *, reset: bool = False) -> None:
        """Close the connection (`reset`: with a TCP RST).

        Waits until uvicorn has seen the connection go, so that it neither logs
        nor answers for us.
        """
        cycle = self.scope.get(CYCLE_KEY)
        transport: Any = getattr(cycle, "transport", None)
        if transport is None:
            raise RuntimeError(
                "cutting connections needs the simulator's uvicorn server"
            )
        if not transport.is_closing():
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
                transport.abort()
            else:
                transport.close()
        if getattr(cycle, "disconnected", True):
            return
        try:
            await asyncio.wait_for(self.receive(), 1.0)
        except asyncio.TimeoutError:  # write buffer never drained: force it
            transport.abort()
            await self.receive()

    async def wait_out(self, status_if_left: str) -> None:
        """Hold the connection until the client leaves or the server stops."""
        outcome = await self.pause(None)
        self.finish(status_if_left)
        if outcome == "stop":
            await self.drop()


Handler = Callable[[Exchange], Awaitable[None]]


class Delivery:
    """The ASGI response a route returns: runs `handler` on the exchange."""

    __slots__ = ("handler", "log", "record", "stopping")

    def __init__(
        self,
        handler: Handler,
        *,
        log: RequestLog,
        record: RequestRecord,
        stopping: asyncio.Event,
    ) -> None:
        self.handler = handler
        self.log = log
        self.record = record
        self.stopping = stopping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the delivery (ASGI)."""
        ex = Exchange(
            scope,
            receive,
            send,
            log=self.log,
            record=self.record,
            stopping=self.stopping,
        )
        try:
            await self.handler(ex)
        finally:
            ex.finish("disconnected")  # no-op when the handler finished the record


async def _delay(ex: Exchange, seconds: float) -> bool:
    """Wait before the headers; on a departure or stop, finish and return False."""
    if seconds <= 0:
        return True
    outcome = await ex.pause(seconds)
    if outcome == "ok":
        return True
    if outcome == "stop":
        ex.finish("stopped")
        await ex.drop()
    else:
        ex.finish("disconnected")
    return False


async def _drip(ex: Exchange, data: bytes, interval: float, *, billed: bool) -> None:
    """Send `data` one byte every `interval` seconds.

    The record is finished (200) before the last byte, or "disconnected" /
    "stopped" when the client leaves / the server stops midway.
    """
    for i in range(len(data) - 1):
        await ex.body(data[i : i + 1], more=True)
        if not await _delay(ex, interval):
            await ex.drop()
            return
    ex.finish(200, billed=billed)
    await ex.body(data[-1:])


async def _keep_alive(
    ex: Exchange, beat: bytes, interval: float, seconds: float | None
) -> bool:
    """Send `beat` every `interval` seconds for `seconds` (`None`: no end).

    Returns:
        True once `seconds` have passed; False if the client left ("stall", or
        "disconnected" for a finite wait) or the server stopped ("stopped"); the
        record is finished then.
    """
    loop = asyncio.get_running_loop()
    end = None if seconds is None else loop.time() + seconds
    while True:
        wait = interval if end is None else min(interval, end - loop.time())
        if wait <= 0:
            return True
        outcome = await ex.pause(wait)
        if outcome == "stop":
            ex.finish("stopped")
            await ex.drop()
            return False
        if outcome == "disconnect":
            ex.finish("stall" if seconds is None else "disconnected")
            return False
        if end is not None and loop.time() >= end:
            return True
        await ex.body(beat, more=True)


def deliver_page(
    body: bytes, *, content_type: str = "application/json", delay: float = 0.0
) -> Handler:
    """A complete 200 response that is not a completion (never billed)."""
    header = _HTML if content_type.startswith("text/html") else _JSON

    async def run(ex: Exchange) -> None:
        if not await _delay(ex, delay):
            return
        ex.finish(200)
        await ex.start(200, [header, (b"content-length", str(len(body)).encode())])
        await ex.body(body)

    return run


def deliver_bad_stream(events: list[bytes], *, delay: float = 0.0) -> Handler:
    """A 200 event stream of unusable chunks, then `[DONE]` (never billed)."""

    async def run(ex: Exchange) -> None:
        if not await _delay(ex, delay):
            return
        await ex.start(200, _SSE_HEADERS)
        ex.finish(200)
        await ex.body(b"".join(events) + wire.DONE)

    return run


def deliver_error(
    status: int,
    body: bytes,
    *,
    delay: float = 0.0,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Handler:
    """An error response (after `delay`)."""

    async def run(ex: Exchange) -> None:
        if not await _delay(ex, delay):
            return
        ex.finish(status)
        await ex.start(
            status,
            [_JSON, (b"content-length", str(len(body)).encode()), *(headers or [])],
        )
        await ex.body(body)

    return run


def deliver_silent() -> Handler:
    """Never answer."""

    async def run(ex: Exchange) -> None:
        await ex.wait_out("silent")

    return run


def deliver_reset() -> Handler:
    """TCP reset, no response."""

    async def run(ex: Exchange) -> None:
        ex.finish("reset")
        await ex.drop(reset=True)

    return run


def _garbage(fault: Fault) -> bytes:
    """What `malformed_chunk` writes after half of a JSON body."""
    if fault.payload == "html":
        return wire.HTML_PAGE
    if fault.payload == "binary":
        return wire.MALFORMED_BINARY
    return b""


def deliver_completion(fault: Fault, body: bytes) -> Handler:
    """A non-streaming reply; stream faults applied to the JSON body."""
    extra = (fault.seconds or 0.0) if fault.kind == "slow_first_token" else 0.0
    delay = fault.delay + extra

    async def run(ex: Exchange) -> None:
        if not await _delay(ex, delay):
            return
        kind = fault.kind
        half = len(body) // 2
        if kind == "malformed_chunk":
            broken = body[:half] + _garbage(fault)
            ex.finish(200)
            await ex.start(200, [_JSON, (b"content-length", str(len(broken)).encode())])
            await ex.body(broken)
            return
        if kind == "slow_drip":
            await ex.start(200, [_JSON, (b"content-length", str(len(body)).encode())])
            await _drip(ex, body, fault.interval or 0.1, billed=True)
            return
        if kind == "empty_chunks":
            await ex.start(200, [_JSON])  # chunked: the length is not known yet
            await ex.body(b"", more=True)
            if not await _keep_alive(ex, b" ", fault.interval or 0.1, fault.seconds):
                return
            ex.finish(200, billed=True)
            await ex.body(body)
            return
        if kind in ("stream_cut", "stream_stall"):
            await ex.start(200, [_JSON, (b"content-length", str(len(body)).encode())])
            await ex.body(body[:half], more=True)
            if kind == "stream_cut":
                ex.finish("cut")
                await ex.drop()
                return
            if fault.seconds is None:
                await ex.wait_out("stall")
                return
            if not await _delay(ex, fault.seconds):
                await ex.drop()
                return
            ex.finish(200, billed=True)
            await ex.body(body[half:])
            return
        ex.finish(200, billed=True)
        await ex.start(200, [_JSON, (b"content-length", str(len(body)).encode())])
        await ex.body(body)

    return run


def deliver_stream(
    fault: Fault,
    completion: Completion,
    writer: wire.ChunkWriter,
    *,
    include_usage: bool,
    error: bytes = b"",
) -> Handler:
    """A streamed reply with the fault's timing and breakage.

    `error` is the error event of an `error_reply` fault.
    """

    async def run(ex: Exchange) -> None:
        if not await _delay(ex, fault.delay):
            return
        kind = fault.kind
        pieces = split_words(completion.content or "")
        content = list(writer.content_events(completion, pieces))
        end = [writer.finish(completion.finish_reason)]
        if include_usage:
            end.append(writer.usage(completion))
        await ex.start(200, _SSE_HEADERS)
        head = writer.role(bool(completion.tool_calls))
        if kind == "slow_first_token":
            await ex.body(head, more=True)
            if not await _delay(ex, fault.seconds or 0.0):
                await ex.drop()
                return
            head = b""
        if kind == "slow_drip":
            tail = b"".join([head, *content, *end]) + wire.DONE
            await _drip(ex, tail, fault.interval or 0.1, billed=include_usage)
            return
        n = min(fault.after_chunks, len(content))
        if kind in (
            "stream_cut",
            "stream_stall",
            "malformed_chunk",
            "error_reply",
            "empty_chunks",
        ):
            await ex.body(head + b"".join(content[:n]), more=True)
            head, content = b"", content[n:]
            if kind == "stream_cut":
                ex.finish("cut")
                await ex.drop()
                return
            if kind == "malformed_chunk":
                ex.finish(200)
                await ex.body(_malformed_event(fault))
                return
            if kind == "error_reply":
                ex.finish(200)
                await ex.body(error)
                return
            if kind == "empty_chunks":
                beat = writer.empty()
                if not await _keep_alive(
                    ex, beat, fault.interval or 0.1, fault.seconds
                ):
                    return
            elif fault.seconds is None:
                await ex.wait_out("stall")
                return
            elif not await _delay(ex, fault.seconds):
                await ex.drop()
                return
        ex.finish(200, billed=include_usage)
        tail = b"".join([head, *content, *end])
        if kind == "no_done":
            await ex.body(tail, more=fault.hang)
            if fault.hang:
                await ex.wait_out("disconnected")
            return
        await ex.body(tail + wire.DONE)

    return run


def _malformed_event(fault: Fault) -> bytes:
    """What `malformed_chunk` sends in place of the next stream event."""
    if fault.payload == "html":
        return wire.HTML_PAGE
    if fault.payload == "binary":
        return wire.MALFORMED_BINARY
    return wire.MALFORMED
