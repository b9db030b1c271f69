"""OpenAI-wire HTTP: post a JSON body, read a JSON reply or a server-sent stream.

The lean request path of gateway routes and the proxy server's upstream calls
both go through here. A request is the payload LangChain (or a client) already
built, serialised once; a reply is a plain dict; a stream yields its events'
raw `data` bytes. Failures are the OpenAI SDK's exception classes with the same
fields (`status_code`, `body`, `response`), so every caller classifies and
translates them exactly as it does on the SDK's path.

Streams are `_sse` event streams, read to their end so their connection is
reused; failures are built in `_wire_errors`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, TypedDict

import httpx2
from pydantic import SecretStr
from typing_extensions import Unpack

from langchain_holysheep import _direct, _watchdog
from langchain_holysheep._json import dumps, loads
from langchain_holysheep._sse import AsyncEventStream, Event, EventStream
from langchain_holysheep._wire_errors import (
    status_class,
    status_error,
    transport_error,
)

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


_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_SSE = {"Content-Type": "application/json", "Accept": "text/event-stream"}
_BODY_TIMEOUT = "holysheep.body_timeout"

# Request options LangChain puts in a payload that are not body fields.
_OPTION_KEYS = ("extra_headers", "extra_query", "extra_body", "timeout")


class WireReply(NamedTuple):
    """A non-streaming reply: the parsed body, the headers and the status."""

    body: Any
    headers: httpx2.Headers
    status: int


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


def _request(
    client: httpx2.Client | httpx2.AsyncClient,
    path: str,
    body: Any,
    stream: bool,
    options: Options,
) -> httpx2.Request:
    headers = options.get("headers")
    query = options.get("query")
    merged = dict(_SSE if stream else _JSON)
    if headers:
        merged.update(headers)
    content = body if isinstance(body, bytes) else dumps(body)
    extra: dict[str, Any] = {}
    if query:
        extra["params"] = query
    timeout, body_timeout = _timeouts(client.timeout, options.get("timeout"))
    request = client.build_request(
        "POST", path, content=content, headers=merged, **extra
    )
    request.extensions["timeout"] = timeout
    if body_timeout is not None:
        request.extensions[_BODY_TIMEOUT] = body_timeout
    return request


def _timeouts(
    default: httpx2.Timeout, timeout: Any
) -> tuple[dict[str, float | None], dict[str, float | None] | None]:
    """The request's timeouts, and the body's own when a guard bounds the request.

    A guard bounds this request: until the response headers arrive (and the
    guard knows the socket) the HTTP client's own timeout must not exceed it;
    reads of the body get the full timeout back (`_body_timeout`).
    """
    full = default if timeout is None else httpx2.Timeout(timeout)
    left = _watchdog.remaining()
    if left is None:
        return full.as_dict(), None
    return _shorter(full, left).as_dict(), full.as_dict()


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
def _translated(
    request: httpx2.Request | Callable[[], httpx2.Request],
) -> Iterator[None]:
    """Transport failures as the OpenAI SDK's connection / timeout errors."""
    try:
        yield
    except httpx2.TransportError as exc:
        sent = request() if callable(request) else request
        raise transport_error(exc, sent) from exc


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
    response = await _aopen(client, path, body, False, options)
    try:
        with _translated(response.request):
            await response.aread()
    except BaseException:
        await response.aclose()
        raise
    return _reply(response)


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
    response = await _aopen(client, path, body, True, options)
    if response.status_code < 400:
        return AsyncEventStream(response)
    with _translated(response.request):
        try:
            await response.aread()
        finally:
            await response.aclose()
    raise status_error(response)


async def _aopen(
    client: httpx2.AsyncClient, path: str, body: Any, stream: bool, options: Options
) -> Any:
    """POST `body`: the response, its body unread.

    An `httpx2.Response`, or a `_direct.PoolReply` when the client's pool can
    take the request straight.
    """
    content = body if isinstance(body, bytes) else dumps(body)
    pool = None if options.get("query") else _direct.pool_of(client)
    if pool is None:
        request = _request(client, path, content, stream, options)
        with _translated(request):
            response = await client.send(request, stream=True)
        _body_timeout(request)
        return response
    headers = dict(_SSE if stream else _JSON)
    headers.update(options.get("headers") or {})
    timeout, body_timeout = _timeouts(client.timeout, options.get("timeout"))
    with _translated(lambda: _direct.error_request(client, path)):
        return await _direct.send(
            client, pool, path, content, headers, timeout, body_timeout
        )
