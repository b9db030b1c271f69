"""The proxy's upstream HTTP: OpenAI-wire POSTs on aiohttp, one session per loop.

The same contract as `_wire.apost` / `_wire.aopen_stream` (a reply's parsed
body; a stream's events up to `[DONE]`, an error event raised; failures raised
as the OpenAI SDK's exceptions over httpx2's transport errors, so the route
loop classifies them exactly as on `ChatHolySheep`'s path), without httpx2's
client layers on every request: the URL, headers and error-report request of
an endpoint are built once, and a reply is read straight from aiohttp.

aiohttp's failures map to httpx2's as its transport's do: a failure to connect
is `ConnectError` (or `ConnectTimeout`), a read timeout `ReadTimeout`, a
dropped connection or a broken reply `ReadError` (retryable, not an outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import aiohttp
import httpx2

from langchain_holysheep import _wire
from langchain_holysheep._http import _LIMITS
from langchain_holysheep._wire_errors import transport_error

__all__ = ["Reply", "Upstream", "close_sessions"]

_PATH = "/chat/completions"
_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]
_SESSIONS = weakref.WeakKeyDictionary()
_DROPPED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class Reply(NamedTuple):
    """A non-streaming reply, relayed as received (`raw`).

    `body` is its parsed JSON (its text if not JSON).
    """

    body: Any
    status: int
    raw: bytes


def _session() -> aiohttp.ClientSession:
    """The running loop's session (connections pooled per loop, TLS as httpx2's)."""
    loop = asyncio.get_running_loop()
    session = _SESSIONS.get(loop)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(
            limit=_LIMITS.max_connections or 0,
            ssl=httpx2.create_ssl_context(),
            ttl_dns_cache=300,
        )
        # no cookie jar: one upstream session serves every virtual key
        session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        )
        _SESSIONS[loop] = session
    return session


async def close_sessions() -> None:
    """Close the running loop's session (at shutdown)."""
    session = _SESSIONS.pop(asyncio.get_running_loop(), None)
    if session is not None:
        await session.close()


def _mapped(exc: BaseException) -> httpx2.TransportError:
    """httpx2's transport error for an aiohttp failure (see the module doc)."""
    message = str(exc) or type(exc).__name__
    kind: type[httpx2.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx2.ConnectTimeout
    elif isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        kind = httpx2.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx2.ConnectError
    elif isinstance(exc, aiohttp.ClientResponseError):
        kind = httpx2.RemoteProtocolError
    else:
        kind = httpx2.ReadError
    mapped = kind(message)
    mapped.__cause__ = exc
    return mapped


_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError)


@contextlib.contextmanager
def _translated(request: httpx2.Request) -> Iterator[None]:
    """Raise aiohttp's failures as the OpenAI SDK's (over httpx2's)."""
    try:
        yield
    except _FAILURES as exc:
        mapped = _mapped(exc)
        raise transport_error(mapped, request) from mapped


class _Streamed:
    """A streamed reply read straight from aiohttp, for `AsyncEventStream`.

    What the event stream needs of a response (its body's chunks, already
    decoded by aiohttp, failures mapped; `aclose`; status, headers, request),
    without an httpx2 response's layers on every read. Not read once closed:
    aiohttp marks a released body with one shared exception, and raising that
    again and again would chain every reader's frames to its traceback.
    """

    __slots__ = ("_closed", "_response", "request", "status_code")

    def __init__(self, response: aiohttp.ClientResponse, request: httpx2.Request):
        self._response = response
        self.request = request
        self.status_code = response.status
        self._closed = False

    @property
    def headers(self) -> httpx2.Headers:
        """The response headers (as httpx2's)."""
        return _response(self._response, self.request).headers

    def aiter_bytes(self) -> _Streamed:
        """The body's chunks (this object is their iterator)."""
        return self

    def __aiter__(self) -> _Streamed:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        try:
            chunk = await self._response.content.readany()
        except _FAILURES as exc:
            raise _mapped(exc) from exc
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Read to its end: back to the pool; cut short: the connection is closed."""
        self._closed = True
        self._response.release()


def _response(
    response: aiohttp.ClientResponse, request: httpx2.Request, **kw: Any
) -> httpx2.Response:
    headers = [
        (k, v)
        for k, v in response.raw_headers
        if k.decode("latin-1").lower() not in _DROPPED
    ]
    return httpx2.Response(response.status, headers=headers, request=request, **kw)


class Upstream:
    """POSTs to one OpenAI-compatible server's `/chat/completions`.

    Args:
        base_url: the server (ends in `/v1`).
        headers: sent with every request (e.g. `Authorization`).
    """

    __slots__ = ("_json", "_request", "_sse", "url")

    def __init__(self, base_url: str, headers: Mapping[str, str]) -> None:
        self.url = base_url.rstrip("/") + _PATH
        self._json = {**headers, "Content-Type": "application/json"}
        self._sse = {**self._json, "Accept": "text/event-stream"}
        self._json["Accept"] = "application/json"
        # errors carry this request: method and URL only, never a header
        self._request = httpx2.Request("POST", self.url)

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _timeout(seconds: float | None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None, connect=seconds, sock_connect=seconds, sock_read=seconds
        )

    async def post(self, body: Any, timeout: float | None) -> Reply:
        """POST `body` and read its reply.

        Raises:
            openai.APIStatusError: status >= 400 (the subclass of the status).
            openai.APITimeoutError / openai.APIConnectionError: transport failure.
        """
        data = _wire.dumps(body)
        with _translated(self._request):
            async with _session().post(
                self.url, data=data, headers=self._json, timeout=self._timeout(timeout)
            ) as response:
                raw = await response.read()
        if response.status >= 400:
            raise _wire.status_error(_response(response, self._request, content=raw))
        try:
            return Reply(_wire.loads(raw), response.status, raw)
        except ValueError:  # the caller says what is wrong with it
            return Reply(raw.decode("utf-8", "replace"), response.status, raw)

    async def open_stream(
        self, body: Any, timeout: float | None
    ) -> _wire.AsyncEventStream:
        """POST `body` and open its event stream (the status is checked first).

        Raises:
            The errors of `post`, before any event.
        """
        data = _wire.dumps(body)
        with _translated(self._request):
            response = await _session().post(
                self.url, data=data, headers=self._sse, timeout=self._timeout(timeout)
            )
            if response.status >= 400:
                try:
                    raw = await response.read()
                finally:
                    response.release()
                error = _response(response, self._request, content=raw)
                raise _wire.status_error(error)
        return _wire.AsyncEventStream(_Streamed(response, self._request))
