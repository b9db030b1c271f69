"""`ScriptedHTTP`: a small HTTP/1.1 server whose replies a test scripts per path.

For replies the gateway simulator never sends (redirects, cookies, compressed
bodies). It runs in a thread with its own event loop, keeps connections alive,
and records every request it reads (method, path, headers, body).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from langchain_holysheep.simulator.background import Background

__all__ = ["Received", "ScriptedHTTP", "reply"]


@dataclass
class Received:
    """One request as the server read it (header names in lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def reply(
    status: int,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A whole HTTP/1.1 response with a Content-Length."""
    head = [f"HTTP/1.1 {status} Scripted", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class ScriptedHTTP(Background):
    """Answers each path with its scripted responses in turn (the last repeats).

    Args:
        script: per request path (e.g. `/v1/chat/completions`), whole responses.
    """

    def __init__(self, script: Mapping[str, Sequence[bytes]]) -> None:
        self.script = script
        self.received: list[Received] = []
        self.connections = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._served: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        """The server's URL with the `/v1` prefix the clients expect."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> ScriptedHTTP:
        """Bind a free port and serve in a thread."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        async def handlers_ended() -> None:
            rest = asyncio.all_tasks() - {asyncio.current_task()}
            await asyncio.gather(*rest, return_exceptions=True)

        def run() -> None:
            loop = self._loop
            assert loop is not None
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(serve())  # until `stop` cancels it
            loop.run_until_complete(handlers_ended())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the scripted server did not start")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (open connections are dropped)."""
        if self._loop is None or self._thread is None:
            return
        loop = self._loop

        def cancel_all() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()

        loop.call_soon_threadsafe(cancel_all)
        self._thread.join(timeout)

    def _next(self, path: str) -> bytes:
        replies = self.script.get(path) or [reply(404)]
        index = self._served.get(path, 0)
        self._served[path] = index + 1
        return replies[min(index, len(replies) - 1)]

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                self.received.append(Received(method, path, headers, body))
                writer.write(self._next(path))
                await writer.drain()
        finally:
            writer.close()
