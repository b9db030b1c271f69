"""Requests of the package's shared async client, sent straight to its pool.

`httpx2.AsyncClient` runs every request through layers the lean path does not
need on the client this package builds for itself (`_http.shared_async_client`):
URL and header merging into a new `Request`, cookies, an auth flow, redirect
and event-hook loops, and a `Response` around the body. Here a request goes
to the running loop's connection pool (the client's own transport, so its
TLS settings, limits and pooled connections) with the URL and default headers
the client would add, built once per endpoint; the headers, the body's length
and the timeouts are those httpx2 would send.

Whatever those layers would do still happens: a client changed after it was
built (auth, event hooks, cookies, query parameters, mounts) and a request
with a query string take the client's own path; a reply that is an error, a
redirect, compressed or sets a cookie becomes the client's `httpx2.Response`
(followed, decoded or stored as the client does); transport failures are
httpx2's exceptions. A plain 2xx reply is a `PoolReply`: what `_sse` and
`_wire` read of a response (status, headers, request, body), nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpcore2
import httpx2

from langchain_holysheep._http import LoopLocalTransport
from langchain_holysheep._lean_pool import StackPool

__all__ = ["PoolReply", "error_request", "pool_of", "send"]

try:  # what httpx2's transport wraps around httpcore2 (its exceptions, its body)
    from httpx2._transports.default import (
        AsyncResponseStream,
        map_httpcore_exceptions,
    )
except ImportError:  # pragma: no cover - a layout of httpx2 this does not know
    AsyncResponseStream = map_httpcore_exceptions = None  # type: ignore[assignment,misc]

_LOG = logging.getLogger("httpx2")  # the client's own request log line
_HANDLED = frozenset({b"content-encoding", b"set-cookie", b"set-cookie2"})
_MAX_ENDPOINTS = 64


def pool_of(client: Any) -> StackPool | None:
    """The running loop's pool of `client`, when a request may go straight to it."""
    transport = getattr(client, "_transport", None)
    if type(transport) is not LoopLocalTransport or map_httpcore_exceptions is None:
        return None
    hooks = client.event_hooks
    if (
        client.auth is not None
        or hooks["request"]
        or hooks["response"]
        or client.params
        or len(client.cookies.jar)
        or client._mounts
        or client.is_closed
    ):
        return None
    pool = getattr(transport.current(), "_pool", None)
    return pool if type(pool) is StackPool else None


class _Endpoint:
    """A path of one client: its URL as the client merges it, and its Host."""

    __slots__ = ("base", "host", "text", "url")

    def __init__(self, client: Any, path: str) -> None:
        self.base = client.base_url  # kept: the cache key is its id
        url = client.build_request("POST", path).url
        self.text = str(url)
        self.host = url.netloc
        self.url = httpcore2.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        )


_ENDPOINTS: dict[tuple[int, str], _Endpoint] = {}


def _endpoint(client: Any, path: str) -> _Endpoint:
    base = client.base_url
    found = _ENDPOINTS.get((id(base), path))
    if found is None or found.base is not base:
        if len(_ENDPOINTS) >= _MAX_ENDPOINTS:
            _ENDPOINTS.clear()
        found = _ENDPOINTS[(id(base), path)] = _Endpoint(client, path)
    return found


def error_request(client: Any, path: str) -> httpx2.Request:
    """The request a transport failure reports (method and URL, never a header)."""
    return httpx2.Request("POST", _endpoint(client, path).text)


def _encode(value: str | bytes) -> bytes:
    """A header name or value as httpx2 encodes it."""
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"Header value must be str or bytes, not {type(value)}")
    return value.encode("ascii")


def _headers(
    client: Any, endpoint: _Endpoint, headers: Mapping[str, str], length: int
) -> list[tuple[bytes, bytes]]:
    """Host, the client's headers overridden by `headers`, then Content-Length."""
    own = [(_encode(k), _encode(v)) for k, v in headers.items()]
    names = {k.lower() for k, _ in own}
    out = [(b"Host", endpoint.host)]
    out += [(k, v) for k, v in client.headers.raw if k.lower() not in names]
    out += own
    if b"content-length" not in names and b"transfer-encoding" not in names:
        out.append((b"Content-Length", str(length).encode()))
    return out


class PoolReply:
    """A 2xx reply read straight from the pool (no compression, no cookie)."""

    __slots__ = (
        "_body",
        "_headers",
        "_raw",
        "_request",
        "_url",
        "content",
        "status_code",
    )

    def __init__(self, response: httpcore2.Response, url: str) -> None:
        self.status_code = response.status
        self._raw = response.headers
        self._body: Any = response.stream
        self._url = url
        self._headers: httpx2.Headers | None = None
        self._request: httpx2.Request | None = None
        self.content = b""
        """The body, once `aread`."""

    @property
    def headers(self) -> httpx2.Headers:
        """The reply's headers."""
        if self._headers is None:
            self._headers = httpx2.Headers(self._raw)
        return self._headers

    @property
    def request(self) -> httpx2.Request:
        """The request (method and URL only: errors carry it, never a header)."""
        if self._request is None:
            self._request = httpx2.Request("POST", self._url)
        return self._request

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (failures as httpx2's).

        Read to its end, the reply is closed (its connection goes back to the
        pool at once), as httpx2's responses are.
        """
        with map_httpcore_exceptions():
            async for chunk in self._body:
                yield chunk
        await self.aclose()

    @property
    def text(self) -> str:
        """The body read, as text (decoded as httpx2 decodes it)."""
        return httpx2.Response(200, headers=self._raw, content=self.content).text

    async def aread(self) -> bytes:
        """The whole body (then the connection goes back to the pool)."""
        try:
            self.content = b"".join([chunk async for chunk in self.aiter_bytes()])
        except BaseException:
            await self.aclose()
            raise
        return self.content

    async def aclose(self) -> None:
        """Release the connection (read to its end: kept; else dropped)."""
        await self._body.aclose()


async def send(
    client: Any,
    pool: StackPool,
    path: str,
    content: bytes,
    headers: Mapping[str, str],
    timeout: dict[str, Any],
    body_timeout: dict[str, Any] | None = None,
) -> PoolReply | httpx2.Response:
    """POST `content` to `path` on `pool`; the reply with its body unread.

    `timeout` holds until the response headers arrive, `body_timeout` (if
    given) from then on.

    Raises:
        httpx2.TransportError: as the client's request would.
    """
    endpoint = _endpoint(client, path)
    request = httpcore2.Request(
        b"POST",
        endpoint.url,
        headers=_headers(client, endpoint, headers, len(content)),
        content=content,
        extensions={"timeout": timeout},
    )
    with map_httpcore_exceptions():
        response = await pool.handle_async_request(request)
    if body_timeout is not None:
        request.extensions["timeout"] = body_timeout
    if _LOG.isEnabledFor(logging.INFO):
        _log(endpoint, response)
    status = response.status
    if 200 <= status < 300 and not any(
        k.lower() in _HANDLED for k, _ in response.headers
    ):
        return PoolReply(response, endpoint.text)
    return await _as_client(client, endpoint, response, request, headers, content)


def _log(endpoint: _Endpoint, response: httpcore2.Response) -> None:
    ext = response.extensions
    _LOG.info(
        'HTTP Request: %s %s "%s %d %s"',
        "POST",
        endpoint.text,
        ext.get("http_version", b"HTTP/1.1").decode("ascii", "replace"),
        response.status,
        ext.get("reason_phrase", b"").decode("ascii", "replace"),
    )


async def _as_client(
    client: Any,
    endpoint: _Endpoint,
    response: httpcore2.Response,
    sent: httpcore2.Request,
    headers: Mapping[str, str],
    content: bytes,
) -> httpx2.Response:
    """The reply as the client's `Response`: cookies stored, redirects followed."""
    request = httpx2.Request(
        "POST",
        endpoint.text,
        headers=sent.headers,
        content=content,
        extensions=sent.extensions,
    )
    reply = httpx2.Response(
        response.status,
        headers=response.headers,
        stream=AsyncResponseStream(response.stream),  # type: ignore[arg-type]
        request=request,
        extensions=response.extensions,
    )
    client.cookies.extract_cookies(reply)
    if not (reply.has_redirect_location and client.follow_redirects):
        return reply
    try:
        await reply.aread()
    finally:
        await reply.aclose()
    next_request = client._build_redirect_request(request, reply)
    # the client's own redirect loop, with this reply in its history: the
    # client's `max_redirects` counts it
    followed = await client._send_handling_redirects(
        next_request, follow_redirects=True, history=[reply]
    )
    return followed  # type: ignore[no-any-return]
