"""One request's connection: the ASGI exchange a delivery writes to.

An `Exchange` sends headers and body bytes, waits (until the client leaves or
the server stops), and closes or resets the connection. A TCP reset (SO_LINGER
0, then abort) and a close in mid-body need the raw connection: the outer ASGI
wrapper in `app.py` stores uvicorn's request-response cycle in the scope
(`send.__self__`); its `transport` is the connection.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from langchain_holysheep.simulator.log import RequestLog, RequestRecord

__all__ = ["CYCLE_KEY", "Delivery", "Exchange", "Handler"]

#: Scope key under which the outer wrapper stores uvicorn's request cycle.
CYCLE_KEY = "holysheep.cycle"

_LINGER_0 = struct.pack("ii", 1, 0)


@dataclass(slots=True)
class Exchange:
    """One request's connection, log record and the server's stop signal."""

    scope: Scope
    receive: Receive
    send: Send
    _: KW_ONLY
    log: RequestLog
    record: RequestRecord
    stopping: asyncio.Event

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

    async def delay(self, seconds: float) -> bool:
        """Wait before the headers; on a departure or stop, finish and return False."""
        if seconds <= 0:
            return True
        outcome = await self.pause(seconds)
        if outcome == "ok":
            return True
        if outcome == "stop":
            self.finish("stopped")
            await self.drop()
        else:
            self.finish("disconnected")
        return False

    async def drip(self, data: bytes, interval: float, *, billed: bool) -> None:
        """Send `data` one byte every `interval` seconds.

        The record is finished (200) before the last byte, or "disconnected" /
        "stopped" when the client leaves / the server stops midway.
        """
        for i in range(len(data) - 1):
            await self.body(data[i : i + 1], more=True)
            if not await self.delay(interval):
                await self.drop()
                return
        self.finish(200, billed=billed)
        await self.body(data[-1:])

    async def keep_alive(
        self, beat: bytes, interval: float, seconds: float | None
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
            outcome = await self.pause(wait)
            if outcome == "stop":
                self.finish("stopped")
                await self.drop()
                return False
            if outcome == "disconnect":
                self.finish("stall" if seconds is None else "disconnected")
                return False
            if end is not None and loop.time() >= end:
                return True
            await self.body(beat, more=True)


Handler = Callable[[Exchange], Awaitable[None]]


@dataclass(slots=True)
class Delivery:
    """The ASGI response a route returns: runs `handler` on the exchange."""

    handler: Handler
    _: KW_ONLY
    log: RequestLog
    record: RequestRecord
    stopping: asyncio.Event

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
