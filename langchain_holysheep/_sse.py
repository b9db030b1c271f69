"""Server-sent event streams of OpenAI-wire replies, read to their end.

`EventStream` / `AsyncEventStream` decode the body into events, stop at
`data: [DONE]` (an error event raises the SDK's error), and read the rest of the
body (the chunked-encoding terminator) so the connection goes back to the
pool instead of being dropped. A stream closed before its end is dropped at
once (`close()`), after a short bounded attempt to finish reading when the
answer is already complete.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx2

from langchain_holysheep import _watchdog
from langchain_holysheep._json import loads
from langchain_holysheep._wire_errors import stream_error, transport_error

__all__ = [
    "DRAIN_SECONDS",
    "AsyncEventStream",
    "Event",
    "EventStream",
    "StreamedResponse",
]

DRAIN_SECONDS = 0.25
"""How long closing a complete stream may wait for the rest of its body."""

_DONE = b"[DONE]"
_NEXT_DATA = b"\n\ndata: "
_timeout = getattr(asyncio, "timeout", None)  # Python >= 3.11


class Event:
    """One server-sent event: its `data` bytes (and `event` name, if any)."""

    __slots__ = ("data", "event")

    def __init__(self, data: bytes, event: str | None = None) -> None:
        self.data = data
        self.event = event

    def json(self) -> Any:
        """The data parsed as JSON (raises `ValueError` when it is not JSON)."""
        return loads(self.data)

    def __repr__(self) -> str:
        return f"Event({self.data[:60]!r})"


class StreamedResponse(Protocol):
    """What an async event stream reads besides an httpx2 response."""

    status_code: int
    request: httpx2.Request

    @property
    def headers(self) -> httpx2.Headers:
        """The response headers."""

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's chunks."""

    async def aclose(self) -> None:
        """Release the response (its connection, if not read to its end)."""


class _Decoder:
    """Incremental server-sent-events decoder over raw body bytes."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """The events completed by `chunk` (the rest waits for more bytes).

        Events of one `data:` line each (what OpenAI-wire servers send) are cut
        out whole; anything else goes line by line.
        """
        buf = self._buf + chunk if self._buf else chunk
        if self._data or self._event is not None or b"\r" in buf:
            events, self._buf = self._lines(buf)
            return events
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._buf = buf
            return []
        head, self._buf = buf[:end], buf[end + 2 :]
        # the usual body: only `data: X` events, one line each (a JSON text
        # holds no raw line break): cut apart in one pass
        if head.startswith(b"data: ") and head.count(b"\n") == 2 * head.count(
            _NEXT_DATA
        ):
            return [Event(data) for data in head[6:].split(_NEXT_DATA)]
        blocks = head.split(b"\n\n")
        events = []
        for block in blocks:
            if block.startswith(b"data:") and b"\n" not in block:
                value = block[5:]
                events.append(Event(value[1:] if value.startswith(b" ") else value))
            elif block:
                events += self._lines(block + b"\n\n")[0]
        return events

    def _lines(self, buf: bytes) -> tuple[list[Event], bytes]:
        """Decode line by line: the events, and the bytes of an unfinished line."""
        lines = buf.split(b"\n")
        rest = lines.pop()
        events: list[Event] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append(Event(b"\n".join(self._data), self._event))
                self._data = []
                self._event = None
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self._event = line[6:].strip().decode("utf-8", "replace")
            # comments (":") and other fields (id, retry) carry nothing we use
        return events, rest

    def end(self) -> list[Event]:
        """Events left when the body ends without a final blank line."""
        return self.feed(b"\n\n") if self._buf or self._data else []


class _StreamBase:
    """What the sync and async event streams share: decoding, `[DONE]`, errors."""

    __slots__ = ("_decoder", "_done", "_ended", "_pending", "_raw", "response")

    def __init__(self, response: httpx2.Response | StreamedResponse) -> None:
        self.response: Any = response
        self._raw: Any = None  # the body's byte iterator
        self._decoder = _Decoder()
        self._pending: collections.deque[Event | BaseException] = collections.deque()
        self._done = False  # saw [DONE]
        self._ended = False  # body read to its end

    @property
    def headers(self) -> httpx2.Headers:
        """The response headers."""
        return self.response.headers

    @property
    def status(self) -> int:
        """The response status."""
        return self.response.status_code

    @property
    def buffered(self) -> bool:
        """Whether the next event is already read (no wait on the network)."""
        return bool(self._pending)

    def _take(self, events: list[Event]) -> None:
        """Queue decoded events up to `[DONE]`; an error event queues its error."""
        if self._done:
            return
        for event in events:
            if event.data.startswith(_DONE):
                self._done = True
                return
            if event.data[:1] == b"{" and b'"error"' in event.data:
                error = stream_error(event.json(), self.response.request)
                if error is not None:
                    self._pending.append(error)
                    self._done = True
                    return
            self._pending.append(event)

    def take(self) -> Event | None:
        """The next event already read (raises a queued error), else `None`.

        Never waits on the network: `None` says nothing about the stream's end.
        """
        if not self._pending:
            return None
        item = self._pending.popleft()
        if isinstance(item, BaseException):
            raise item
        return item

    def take_all(self) -> list[Event]:
        """The events already read, up to a queued error (left for `take`).

        Never waits on the network: `[]` says nothing about the stream's end.
        """
        pending = self._pending
        events: list[Event] = []
        while pending and type(pending[0]) is Event:
            events.append(pending.popleft())  # type: ignore[arg-type]
        return events

    def _eof(self) -> None:
        self._take(self._decoder.end())
        self._ended = True


class EventStream(_StreamBase):
    """The events of a streamed reply (sync). Always `close()` it after use."""

    __slots__ = ()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        while True:
            event = self.take()
            if event is not None:
                return event
            if self._done or self._ended:
                self.close(complete=True)
                raise StopIteration
            if self._raw is None:
                self._raw = self.response.iter_bytes()
            try:
                chunk = next(self._raw, None)
            except httpx2.TransportError as exc:
                self.response.close()
                raise transport_error(exc, self.response.request) from exc
            if chunk is None:
                self._eof()
            else:
                self._take(self._decoder.feed(chunk))

    def close(self, complete: bool = False) -> None:
        """Close the response; when `complete`, first finish reading it, briefly.

        A body read to its end returns its connection to the pool; any other
        close drops the connection at once.
        """
        if complete and self._raw is not None and not self._ended:
            bound = _watchdog.bounded_read(self.response, DRAIN_SECONDS)
            with contextlib.suppress(Exception), bound:
                for _ in self._raw:
                    pass
                self._ended = True
        self.response.close()


class AsyncEventStream(_StreamBase):
    """The events of a streamed reply (async). Always `aclose()` it after use."""

    __slots__ = ()

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        while True:
            event = self.take()
            if event is not None:
                return event
            if self._done or self._ended:
                await self.aclose(complete=True)
                raise StopAsyncIteration
            if self._raw is None:
                self._raw = self.response.aiter_bytes()
            try:
                chunk = await anext(self._raw, None)
            except httpx2.TransportError as exc:
                await self.response.aclose()
                raise transport_error(exc, self.response.request) from exc
            if chunk is None:
                self._eof()
            else:
                self._take(self._decoder.feed(chunk))

    async def aclose(self, complete: bool = False) -> None:
        """Async twin of `EventStream.close`."""
        if complete and self._raw is not None and not self._ended:
            with contextlib.suppress(Exception):
                if _timeout is None:  # Python 3.10
                    await asyncio.wait_for(self._drain(), DRAIN_SECONDS)
                else:  # no task of its own
                    async with _timeout(DRAIN_SECONDS):
                        await self._drain()
        await self.response.aclose()

    async def _drain(self) -> None:
        async for _ in self._raw:
            pass
        self._ended = True
