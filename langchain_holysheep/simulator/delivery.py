"""Delivering a response with its fault, at the ASGI level.

Each route returns a `Delivery` (see `exchange.py`) whose handler, built here,
waits, writes, stalls or cuts as its fault says, and finishes the request's log
record *before* writing the response's last bytes (so the log is never behind
what a client has seen).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_holysheep.simulator import wire
from langchain_holysheep.simulator.exchange import Exchange, Handler
from langchain_holysheep.simulator.faults import Fault
from langchain_holysheep.simulator.replies import Completion
from langchain_holysheep.simulator.streaming import deliver_bad_stream, deliver_stream
from langchain_holysheep.simulator.tokens import split_words

__all__ = [
    "deliver_completion",
    "deliver_error",
    "deliver_page",
    "deliver_reply",
    "deliver_reset",
    "deliver_silent",
]

_JSON = (b"content-type", b"application/json")
_HTML = (b"content-type", b"text/html; charset=utf-8")


def _headers(
    body: bytes, content_type: tuple[bytes, bytes] = _JSON
) -> list[tuple[bytes, bytes]]:
    """The headers of a complete body: its content type and length."""
    return [content_type, (b"content-length", str(len(body)).encode())]


def deliver_page(
    body: bytes, *, content_type: str = "application/json", delay: float = 0.0
) -> Handler:
    """A complete 200 response that is not a completion (never billed)."""
    header = _HTML if content_type.startswith("text/html") else _JSON

    async def run(ex: Exchange) -> None:
        if not await ex.delay(delay):
            return
        ex.finish(200)
        await ex.start(200, _headers(body, header))
        await ex.body(body)

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
        if not await ex.delay(delay):
            return
        ex.finish(status)
        await ex.start(status, [*_headers(body), *(headers or [])])
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


#: A body fault's delivery, after the wait before the headers.
_BodyFault = Callable[[Exchange, Fault, bytes], Awaitable[None]]


async def _whole_body(ex: Exchange, fault: Fault, body: bytes) -> None:
    """The complete body (billed)."""
    ex.finish(200, billed=True)
    await ex.start(200, _headers(body))
    await ex.body(body)


async def _malformed_body(ex: Exchange, fault: Fault, body: bytes) -> None:
    """Half the body, then the unreadable payload."""
    broken = body[: len(body) // 2] + wire.malformed(fault.payload, b"")
    ex.finish(200)
    await ex.start(200, _headers(broken))
    await ex.body(broken)


async def _drip_body(ex: Exchange, fault: Fault, body: bytes) -> None:
    """The body, one byte every `interval` seconds."""
    await ex.start(200, _headers(body))
    await ex.drip(body, fault.interval or 0.1, billed=True)


async def _spaced_body(ex: Exchange, fault: Fault, body: bytes) -> None:
    """Spaces every `interval` seconds for `seconds`, then the body."""
    await ex.start(200, [_JSON])  # chunked: the length is not known yet
    await ex.body(b"", more=True)
    if not await ex.keep_alive(b" ", fault.interval or 0.1, fault.seconds):
        return
    ex.finish(200, billed=True)
    await ex.body(body)


async def _cut_body(ex: Exchange, fault: Fault, body: bytes) -> None:
    """Half the body, then the connection closes."""
    await ex.start(200, _headers(body))
    await ex.body(body[: len(body) // 2], more=True)
    ex.finish("cut")
    await ex.drop()


async def _stalled_body(ex: Exchange, fault: Fault, body: bytes) -> None:
    """Half the body, a stall (`None`: until the end), then the rest."""
    half = len(body) // 2
    await ex.start(200, _headers(body))
    await ex.body(body[:half], more=True)
    if fault.seconds is None:
        await ex.wait_out("stall")
        return
    if not await ex.delay(fault.seconds):
        await ex.drop()
        return
    ex.finish(200, billed=True)
    await ex.body(body[half:])


_BODY_FAULTS: dict[str, _BodyFault] = {
    "malformed_chunk": _malformed_body,
    "slow_drip": _drip_body,
    "empty_chunks": _spaced_body,
    "stream_cut": _cut_body,
    "stream_stall": _stalled_body,
}


def deliver_completion(fault: Fault, body: bytes) -> Handler:
    """A non-streaming reply; stream faults applied to the JSON body."""
    extra = (fault.seconds or 0.0) if fault.kind == "slow_first_token" else 0.0
    delay = fault.delay + extra
    send = _BODY_FAULTS.get(fault.kind, _whole_body)

    async def run(ex: Exchange) -> None:
        if await ex.delay(delay):
            await send(ex, fault, body)

    return run


@dataclass(slots=True)
class _Reply:
    """A composed reply on its way out: the fault, the completion, its ids."""

    fault: Fault
    completion: Completion
    rid: str
    model: str
    created: int = field(default_factory=lambda: int(time.time()))

    def error(self) -> dict[str, Any] | None:
        """The error object of an `error_reply` fault (`None` for other faults)."""
        fault = self.fault
        if fault.kind != "error_reply":
            return None
        return wire.error_object(
            fault.http_status or 500,
            message=fault.message,
            code=fault.error_code,
            type_=fault.error_type,
        )


def _stream_reply(reply: _Reply, body: Mapping[str, Any]) -> Handler:
    """The event stream of a streaming request, as the fault says."""
    fault, completion = reply.fault, reply.completion
    error = reply.error()
    options = body.get("stream_options")
    include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
    writer = wire.ChunkWriter(
        rid=reply.rid,
        model=reply.model,
        created=reply.created,
        include_usage=include_usage,
    )
    if fault.kind == "bad_reply":
        events = len(split_words(completion.content or "")) + 2
        bad = [writer.bad(fault.shape or "no_choices")] * events
        return deliver_bad_stream(bad, delay=fault.delay)
    return deliver_stream(
        fault,
        completion,
        writer,
        include_usage=include_usage,
        error=b"" if error is None else writer.error(error),
    )


def _body_reply(reply: _Reply) -> Handler:
    """The JSON body of a non-streaming request, as the fault says."""
    fault = reply.fault
    error = reply.error()
    if fault.kind == "bad_reply":
        page = wire.bad_completion_body(
            fault.shape or "no_choices",
            rid=reply.rid,
            model=reply.model,
            created=reply.created,
        )
        return deliver_page(page, delay=fault.delay)
    if error is not None:
        return deliver_page(wire.dumps({"error": error}), delay=fault.delay)
    payload = wire.completion_body(
        reply.completion, rid=reply.rid, model=reply.model, created=reply.created
    )
    return deliver_completion(fault, payload)


def deliver_reply(
    fault: Fault,
    completion: Completion,
    rid: str,
    model: str,
    stream_body: Mapping[str, Any] | None,
) -> Handler:
    """A composed reply, as its fault says.

    Args:
        fault: the request's fault (not an HTTP error, `silent` or `reset`).
        completion: the reply.
        rid: the completion id.
        model: the requested model.
        stream_body: the request body of a stream request (`None`: no stream).
    """
    if fault.kind == "bad_reply" and fault.shape == "html":
        return deliver_page(wire.HTML_PAGE, content_type="text/html", delay=fault.delay)
    reply = _Reply(fault, completion, rid, model)
    if stream_body is not None:
        return _stream_reply(reply, stream_body)
    return _body_reply(reply)
