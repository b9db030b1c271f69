"""Delivering a streamed reply (server-sent events) with its fault.

A stream fault is a step in a table: it sends what comes before the fault
strikes, then says whether the rest of the stream follows. The log record is
finished before the stream's last bytes are written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from langchain_holysheep.simulator import wire
from langchain_holysheep.simulator.exchange import Exchange, Handler
from langchain_holysheep.simulator.faults import Fault
from langchain_holysheep.simulator.replies import Completion
from langchain_holysheep.simulator.tokens import split_words

__all__ = ["deliver_bad_stream", "deliver_stream"]

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


def deliver_bad_stream(events: list[bytes], *, delay: float = 0.0) -> Handler:
    """A 200 event stream of unusable chunks, then `[DONE]` (never billed)."""

    async def run(ex: Exchange) -> None:
        if not await ex.delay(delay):
            return
        await ex.start(200, _SSE_HEADERS)
        ex.finish(200)
        await ex.body(b"".join(events) + wire.DONE)

    return run


@dataclass(slots=True)
class _Stream:
    """An event stream being written: what is still to send, and how."""

    ex: Exchange
    fault: Fault
    head: bytes
    content: list[bytes]
    end: list[bytes]
    include_usage: bool
    error: bytes
    empty: bytes

    async def send_first_chunks(self) -> None:
        """Send the role chunk and the fault's `after_chunks` content chunks."""
        n = min(self.fault.after_chunks, len(self.content))
        await self.ex.body(self.head + b"".join(self.content[:n]), more=True)
        self.head, self.content = b"", self.content[n:]


#: A stream fault's part: True when the rest of the stream follows.
_StreamStep = Callable[[_Stream], Awaitable[bool]]


async def _late_first_token(s: _Stream) -> bool:
    """The role chunk at once, the content after `seconds`."""
    await s.ex.body(s.head, more=True)
    if not await s.ex.delay(s.fault.seconds or 0.0):
        await s.ex.drop()
        return False
    s.head = b""
    return True


async def _drip_stream(s: _Stream) -> bool:
    """The whole stream, one byte every `interval` seconds."""
    tail = b"".join([s.head, *s.content, *s.end]) + wire.DONE
    await s.ex.drip(tail, s.fault.interval or 0.1, billed=s.include_usage)
    return False


async def _cut_stream(s: _Stream) -> bool:
    """The first chunks, then the connection closes."""
    await s.send_first_chunks()
    s.ex.finish("cut")
    await s.ex.drop()
    return False


async def _end_with(s: _Stream, event: bytes) -> bool:
    """The first chunks, then `event` ends the body (no `[DONE]`)."""
    await s.send_first_chunks()
    s.ex.finish(200)
    await s.ex.body(event)
    return False


async def _malformed_stream(s: _Stream) -> bool:
    """The first chunks, then the unreadable payload."""
    return await _end_with(s, wire.malformed(s.fault.payload, wire.MALFORMED))


async def _error_event(s: _Stream) -> bool:
    """The first chunks, then the error event."""
    return await _end_with(s, s.error)


async def _empty_stream(s: _Stream) -> bool:
    """The first chunks, then empty chunks for `seconds`."""
    await s.send_first_chunks()
    return await s.ex.keep_alive(s.empty, s.fault.interval or 0.1, s.fault.seconds)


async def _stall_stream(s: _Stream) -> bool:
    """The first chunks, then silence for `seconds` (`None`: until the end)."""
    await s.send_first_chunks()
    if s.fault.seconds is None:
        await s.ex.wait_out("stall")
        return False
    if not await s.ex.delay(s.fault.seconds):
        await s.ex.drop()
        return False
    return True


_STREAM_STEPS: dict[str, _StreamStep] = {
    "slow_first_token": _late_first_token,
    "slow_drip": _drip_stream,
    "stream_cut": _cut_stream,
    "stream_stall": _stall_stream,
    "malformed_chunk": _malformed_stream,
    "error_reply": _error_event,
    "empty_chunks": _empty_stream,
}


async def _send_rest(s: _Stream) -> None:
    """Finish the record and send the rest of the stream (`no_done`: no `[DONE]`)."""
    s.ex.finish(200, billed=s.include_usage)
    tail = b"".join([s.head, *s.content, *s.end])
    if s.fault.kind == "no_done":
        await s.ex.body(tail, more=s.fault.hang)
        if s.fault.hang:
            await s.ex.wait_out("disconnected")
        return
    await s.ex.body(tail + wire.DONE)


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
    step = _STREAM_STEPS.get(fault.kind)

    async def run(ex: Exchange) -> None:
        if not await ex.delay(fault.delay):
            return
        pieces = split_words(completion.content or "")
        end = [writer.finish(completion.finish_reason)]
        if include_usage:
            end.append(writer.usage(completion))
        stream = _Stream(
            ex,
            fault,
            head=writer.role(bool(completion.tool_calls)),
            content=list(writer.content_events(completion, pieces)),
            end=end,
            include_usage=include_usage,
            error=error,
            empty=writer.empty() if fault.kind == "empty_chunks" else b"",
        )
        await ex.start(200, _SSE_HEADERS)
        if step is None or await step(stream):
            await _send_rest(stream)

    return run
