"""OpenAI-wire HTTP: post a JSON body, read a JSON reply or a server-sent stream.

The lean request path of gateway routes and the proxy server's upstream calls
both go through here. A request is the payload LangChain (or a client) already
built, serialised once; a reply is a plain dict; a stream yields its events'
raw `data` bytes. Failures are the OpenAI SDK's exception classes with the same
fields (`status_code`, `body`, `response`), so every caller classifies and
translates them exactly as it does on the SDK's path.

Streams are read to their end: after `data: [DONE]` the rest of the body (the
chunked-encoding terminator) is consumed, so the connection goes back to the
pool instead of being dropped. A stream closed before its end is dropped at
once (`close()`), after a short bounded attempt to finish reading when the
answer is already complete.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, TypedDict

import httpx2
import openai
from pydantic import SecretStr
from typing_extensions import Unpack

from langchain_holysheep import _watchdog

__all__ = [
    "AsyncEventStream",
    "Event",
    "EventStream",
    "Options",
    "WireReply",
    "aopen_stream",
    "apost",
    "bearer",
    "dumps",
    "loads",
    "open_stream",
    "post",
    "split_options",
    "status_class",
    "status_error",
]


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


loads: Callable[[bytes | str], Any] = json.loads
_fast_dumps: Callable[[Any], bytes] | None = None
try:  # orjson comes with LangChain (through langsmith); the standard library serves
    import orjson

    loads = orjson.loads
    _fast_dumps = orjson.dumps
except ImportError:  # pragma: no cover - exercised where orjson is absent
    pass


def dumps(obj: Any) -> bytes:
    """Serialise a request body (compact JSON, UTF-8)."""
    if _fast_dumps is not None:
        try:
            return _fast_dumps(obj)
        except TypeError:  # e.g. keys that are not strings: the slow path knows them
            pass
    return _std_dumps(obj)


DRAIN_SECONDS = 0.25
"""How long closing a complete stream may wait for the rest of its body."""

_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_SSE = {"Content-Type": "application/json", "Accept": "text/event-stream"}
_DONE = b"[DONE]"
_BODY_TIMEOUT = "holysheep.body_timeout"

_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}

# Request options LangChain puts in a payload that are not body fields.
_OPTION_KEYS = ("extra_headers", "extra_query", "extra_body", "timeout")


class WireReply(NamedTuple):
    """A non-streaming reply: the parsed body, the headers and the status."""

    body: Any
    headers: httpx2.Headers
    status: int


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


def bearer(api_key: SecretStr | None) -> dict[str, str]:
    """The `Authorization` header for `api_key` (none without a key)."""
    if api_key is None:
        return {}
    return {"Authorization": f"Bearer {api_key.get_secret_value()}"}


def split_options(
    payload: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any], Any]:
    """Split a LangChain payload into body, extra headers, query and timeout.

    `extra_body` is merged into the body, as the OpenAI SDK does.
    """
    body = dict(payload)
    headers = body.pop("extra_headers", None) or {}
    query = body.pop("extra_query", None) or {}
    extra = body.pop("extra_body", None)
    timeout = body.pop("timeout", None)
    if extra:
        body.update(extra)
    return body, dict(headers), dict(query), timeout


def status_error(response: httpx2.Response) -> openai.APIStatusError:
    """The OpenAI SDK's error for a reply with status >= 400 (body already read)."""
    message = f"Error code: {response.status_code}"
    text = response.text.strip()
    body: Any = text
    try:
        body = loads(text)
    except ValueError:
        pass
    else:  # only the designated message field goes into the text, as the SDK does
        error = body.get("error", body) if isinstance(body, Mapping) else None
        detail = error.get("message") if isinstance(error, Mapping) else None
        if isinstance(detail, str) and detail:
            message += f" - {detail}"
    data = body.get("error", body) if isinstance(body, Mapping) else body
    return status_class(response.status_code)(message, response=response, body=data)


def status_class(status: int) -> type[openai.APIStatusError]:
    """The OpenAI SDK's exception class for an HTTP status >= 400."""
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = openai.InternalServerError if status >= 500 else openai.APIStatusError
    return cls


def _transport_error(exc: Exception, request: httpx2.Request) -> openai.APIError:
    if isinstance(exc, httpx2.TimeoutException):
        return openai.APITimeoutError(request=request)
    return openai.APIConnectionError(request=request)


def _stream_error(data: Any, request: httpx2.Request) -> openai.APIError | None:
    """An error event inside a stream, as the SDK raises it."""
    if not isinstance(data, Mapping) or not data.get("error"):
        return None
    error = data["error"]
    message = error.get("message") if isinstance(error, Mapping) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    return openai.APIError(message, request, body=error)


def _request(
    client: httpx2.Client | httpx2.AsyncClient,
    path: str,
    body: Any,
    stream: bool,
    options: Options,
) -> httpx2.Request:
    headers = options.get("headers")
    query = options.get("query")
    timeout = options.get("timeout")
    merged = dict(_SSE if stream else _JSON)
    if headers:
        merged.update(headers)
    content = body if isinstance(body, bytes) else dumps(body)
    extra: dict[str, Any] = {}
    if query:
        extra["params"] = query
    left = _watchdog.remaining()
    if left is None:
        if timeout is not None:
            extra["timeout"] = timeout
        return client.build_request(
            "POST", path, content=content, headers=merged, **extra
        )
    # A guard bounds this request: until the response headers arrive (and the
    # guard knows the socket) the HTTP client's own timeout must not exceed it;
    # reads of the body get the full timeout back (`_body_timeout`).
    full = client.timeout if timeout is None else httpx2.Timeout(timeout)
    request = client.build_request(
        "POST",
        path,
        content=content,
        headers=merged,
        timeout=_shorter(full, left),
        **extra,
    )
    request.extensions[_BODY_TIMEOUT] = full.as_dict()
    return request


def _body_timeout(request: httpx2.Request) -> None:
    """The headers are in: later reads of the body get the request's own timeout."""
    full = request.extensions.pop(_BODY_TIMEOUT, None)
    if full is not None:
        request.extensions["timeout"] = full


def _shorter(base: httpx2.Timeout, seconds: float) -> httpx2.Timeout:
    seconds = max(seconds, 0.001)
    return httpx2.Timeout(
        connect=_min(base.connect, seconds),
        read=_min(base.read, seconds),
        write=_min(base.write, seconds),
        pool=_min(base.pool, seconds),
    )


def _min(value: float | None, seconds: float) -> float:
    return seconds if value is None else min(value, seconds)


def _reply(response: httpx2.Response) -> WireReply:
    if response.status_code >= 400:
        raise status_error(response)
    try:
        body = loads(response.content)
    except ValueError:  # the caller says what is wrong with it (as the SDK's path)
        body = response.text
    return WireReply(body, response.headers, response.status_code)


class Options(TypedDict, total=False):
    """Per-request options of `post` / `open_stream` and their async twins."""

    headers: Mapping[str, str] | None
    query: Mapping[str, Any] | None
    timeout: Any


@contextlib.contextmanager
def _translated(request: httpx2.Request) -> Iterator[None]:
    """Transport failures as the OpenAI SDK's connection / timeout errors."""
    try:
        yield
    except httpx2.TransportError as exc:
        raise _transport_error(exc, request) from exc


def post(
    client: httpx2.Client, path: str, body: Any, **options: Unpack[Options]
) -> WireReply:
    """POST `body` as JSON and read the JSON reply.

    Raises:
        openai.APIStatusError: status >= 400 (the subclass of the status).
        openai.APITimeoutError / openai.APIConnectionError: transport failure.

    A 2xx body that is not JSON is returned as its text (the caller's reply
    check says what is wrong with it).
    """
    request = _request(client, path, body, False, options)
    with _translated(request):
        response = client.send(request)
    return _reply(response)


async def apost(
    client: httpx2.AsyncClient, path: str, body: Any, **options: Unpack[Options]
) -> WireReply:
    """Async twin of `post`."""
    request = _request(client, path, body, False, options)
    with _translated(request):
        response = await client.send(request)
    return _reply(response)


class _Decoder:
    """Incremental server-sent-events decoder over raw body bytes."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk if self._buf else chunk
        lines = buf.split(b"\n")
        self._buf = lines.pop()
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
        return events

    def end(self) -> list[Event]:
        """Events left when the body ends without a final blank line."""
        return self.feed(b"\n\n") if self._buf or self._data else []


class _StreamBase:
    """What the sync and async event streams share: decoding, `[DONE]`, errors."""

    __slots__ = ("_decoder", "_done", "_ended", "_pending", "_raw", "response")

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
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
        request = self.response.request
        for event in events:
            if event.data.startswith(_DONE):
                self._done = True
                return
            if event.data[:1] == b"{" and b'"error"' in event.data:
                error = _stream_error(event.json(), request)
                if error is not None:
                    self._pending.append(error)
                    self._done = True
                    return
            self._pending.append(event)

    def _pop(self) -> Event | None:
        """The next queued event (raises a queued error), `None` if none is queued."""
        if not self._pending:
            return None
        item = self._pending.popleft()
        if isinstance(item, BaseException):
            raise item
        return item

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
            event = self._pop()
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
                raise _transport_error(exc, self.response.request) from exc
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
            event = self._pop()
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
                raise _transport_error(exc, self.response.request) from exc
            if chunk is None:
                self._eof()
            else:
                self._take(self._decoder.feed(chunk))

    async def aclose(self, complete: bool = False) -> None:
        """Async twin of `EventStream.close`."""
        if complete and self._raw is not None and not self._ended:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain(), DRAIN_SECONDS)
        await self.response.aclose()

    async def _drain(self) -> None:
        async for _ in self._raw:
            pass
        self._ended = True


def open_stream(
    client: httpx2.Client, path: str, body: Any, **options: Unpack[Options]
) -> EventStream:
    """POST `body` and open its event stream (the status is checked first).

    Raises:
        The errors of `post`, before any event.
    """
    request = _request(client, path, body, True, options)
    with _translated(request):
        response = client.send(request, stream=True)
        _body_timeout(request)
        if response.status_code < 400:
            return EventStream(response)
        try:
            response.read()
        finally:
            response.close()
    raise status_error(response)


async def aopen_stream(
    client: httpx2.AsyncClient, path: str, body: Any, **options: Unpack[Options]
) -> AsyncEventStream:
    """Async twin of `open_stream`."""
    request = _request(client, path, body, True, options)
    with _translated(request):
        response = await client.send(request, stream=True)
        _body_timeout(request)
        if response.status_code < 400:
            return AsyncEventStream(response)
        try:
            await response.aread()
        finally:
            await response.aclose()
    raise status_error(response)
