"""One proxied chat completion: the route loop over wire routes, relayed.

`relay_call` runs the group's router with the wire transport: a reply is sent
as the upstream's JSON, a stream as the upstream's SSE bytes, event by event,
behind the same limits, retries, failover and stream rescue as
`ChatHolySheep`. Response headers name the route that served and the
attempts made so far. A stream that breaks after its headers ends with an
OpenAI error event and without `[DONE]`, so no client takes it for complete.
A client that disconnects cancels the upstream request. A stream renews its
reservation's lease as it delivers. Every attempt is recorded and the
reservation settled when the call ends, however it ends: right after the
response's last byte went out, so no client waits for the bookkeeping (the
reservation holds the call's worst case until then, so a budget's cap holds).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from langchain_holysheep.resilience import _drivers, _loop
from langchain_holysheep.resilience._call import CallState
from langchain_holysheep.resilience._routes import Requirements, Route
from langchain_holysheep.serve._asgi import Receive, Send, respond, respond_error
from langchain_holysheep.serve._errors import ProxyError, upstream_error
from langchain_holysheep.serve._groups import Group
from langchain_holysheep.serve._relay import StreamEnd, WireChunk, WireTransport
from langchain_holysheep.serve._spend import CallSpend, LeaseRenewal, Spend
from langchain_holysheep.spend.budgets._reservation import Reservation

__all__ = ["CLIENT_CLOSED", "relay_call"]

CLIENT_CLOSED = 499
_NOT_PARAMS = frozenset({"model", "messages", "stream", "preferred_model"})
_SSE = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_DONE = b"data: [DONE]\n\n"


class _Client:
    """Watches for the client leaving; cancels the call's task when it does.

    One pending `receive()` at a time, its outcome read by a done-callback
    (no watcher coroutine): a disconnect cancels the call, anything else
    waits for the next message.
    """

    __slots__ = ("_receive", "_task", "_watch", "done", "left")

    def __init__(self, receive: Receive) -> None:
        self.left = False
        self.done = False
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._receive = receive
        self._watch = self._arm()

    def _arm(self) -> asyncio.Future[dict[str, Any]]:
        watch = asyncio.ensure_future(self._receive())
        watch.add_done_callback(self._seen)
        return watch

    def _seen(self, watch: asyncio.Future[dict[str, Any]]) -> None:
        if self.done or watch.cancelled() or watch.exception() is not None:
            return
        if watch.result()["type"] == "http.disconnect":
            self.left = True
            self._task.cancel()
        else:
            self._watch = self._arm()

    def stop(self) -> None:
        self.done = True
        self._watch.cancel()


def _headers(call: CallState, route: Route) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-holysheep-route", route.name.encode()),
        (b"x-holysheep-attempts", str(call.attempts).encode()),
        (b"x-holysheep-fallbacks", str(call.fallbacks).encode()),
    ]


async def _answer(
    send: Send,
    group: Group,
    call: CallState,
    io: _drivers.AsyncIO,
    body: Mapping,
    kwargs: dict[str, Any],
) -> int:
    loop = _loop.answer_loop(group.router, call, body["messages"], kwargs)
    try:
        found = await _drivers.arun(loop, io)
        if found is None:
            raise call.final_error()
    except Exception as exc:
        return await _refuse(send, upstream_error(exc))
    _, route, reply = found
    await respond(send, 200, reply.raw, _headers(call, route))
    return 200


async def _refuse(send: Send, err: ProxyError) -> int:
    await respond_error(send, err)
    return err.status


async def _stream(
    send: Send,
    group: Group,
    call: CallState,
    io: _drivers.AsyncIO,
    body: Mapping,
    kwargs: dict[str, Any],
    renew: Callable[[], None],
) -> int:
    messages = body["messages"]
    options = body.get("stream_options") or {}
    usage = bool(options.get("include_usage"))
    loop = _loop.stream_loop(group.router, call, messages, kwargs, live=True)
    out = _Frames(send)
    try:
        async for item in _drivers.astream(loop, io):
            if not out.started:
                route = (
                    item.route if type(item) is WireChunk else group.router.routes[0]
                )
                await out.start(_headers(call, route))
            renew()
            if type(item) is StreamEnd:
                continue
            # without choices: the usage event, sent if the client asked for it
            if usage or item.obj.get("choices"):
                out.add(item.data)
            if not item.more or out.first_content(item):
                await out.flush()
    except Exception as exc:
        err = upstream_error(exc)
        if not out.started:
            return await _refuse(send, err)
        await out.end(err.event())
        return err.status
    await out.end(_DONE)
    return 200


class _Frames:
    """A stream's SSE frames, written together when they were read together.

    Events that arrive in one network read go out in one write (one body
    message, one system call); the first content goes out at once, with
    what came before it.
    """

    __slots__ = ("eager", "parts", "send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.parts: list[bytes] = []
        self.started = False
        self.eager = True  # until the first content has gone out

    async def start(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        await self.send(
            {"type": "http.response.start", "status": 200, "headers": [*_SSE, *headers]}
        )

    def add(self, data: bytes) -> None:
        self.parts += (b"data: ", data, b"\n\n")

    def first_content(self, item: WireChunk) -> bool:
        """Whether `item` is the stream's first content (then: write it now)."""
        if self.eager and _has_content(item.obj):
            self.eager = False
            return True
        return False

    async def flush(self) -> None:
        if self.parts:
            body = b"".join(self.parts)
            self.parts.clear()
            await self.send(
                {"type": "http.response.body", "body": body, "more_body": True}
            )

    async def end(self, last: bytes) -> None:
        self.parts.append(last)
        await self.send({"type": "http.response.body", "body": b"".join(self.parts)})


def _has_content(obj: Mapping[str, Any]) -> bool:
    choices = obj.get("choices")
    if not choices:
        return False
    delta = choices[0].get("delta") or {}
    return bool(delta.get("content") or delta.get("tool_calls"))


def _params(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _NOT_PARAMS}


async def relay_call(
    send: Send,
    receive: Receive,
    group: Group,
    body: dict[str, Any],
    spend: Spend,
    who: CallSpend,
    reservation: Reservation | None,
    requirements: Requirements | None = None,
) -> int:
    """Serve one chat completion on `group`; returns the HTTP status sent.

    `requirements`: the request's, when the caller has read them already.
    """
    transport = WireTransport()
    kwargs = _params(body)
    call = group.router.new_call(body["messages"], kwargs, requirements=requirements)

    async def flush() -> None:
        if call.events:
            who.take(call.events)

    io = _drivers.AsyncIO(
        transport,  # type: ignore[arg-type]
        flush,
        asyncio.sleep,
        call.events,
    )
    client = _Client(receive)
    try:
        if body.get("stream"):
            renew = LeaseRenewal(reservation).tick
            return await _stream(send, group, call, io, body, kwargs, renew)
        return await _answer(send, group, call, io, body, kwargs)
    except asyncio.CancelledError:
        if not client.left:
            raise
        current = asyncio.current_task()
        if current is not None and hasattr(current, "uncancel"):
            current.uncancel()
        return CLIENT_CLOSED
    finally:
        # after the response went out: no client waits for the bookkeeping
        client.stop()
        with contextlib.suppress(Exception):
            await flush()
        spend.finish(who, transport.attempts, reservation)
