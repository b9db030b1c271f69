"""A network backend for the async connection pool that keeps each socket at hand.

Before it hands out a connection, the HTTP client's pool asks every idle
connection whether its socket is readable (a server that closed it). Each ask
goes through anyio's `extra()`, which builds a dictionary of attribute getters
every time: at 32 concurrent requests that alone is a large part of the
client's CPU per request. The streams of this backend look their socket up
once, when the connection opens, and answer those asks from it; everything
else is the default anyio backend's.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2
from httpcore2._utils import is_socket_readable

__all__ = ["CachedSocketBackend", "install"]


class _Stream(httpcore2.AsyncNetworkStream):
    __slots__ = ("_inner", "_sock")

    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._sock = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        tls = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _Stream(tls)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return is_socket_readable(self._sock)
        if info == "socket":
            return self._sock
        return self._inner.get_extra_info(info)


class CachedSocketBackend(httpcore2.AsyncNetworkBackend):
    """The anyio backend, with streams that look their socket up once."""

    def __init__(self) -> None:
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout, local_address, socket_options
        )
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _Stream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def install(transport: Any) -> Any:
    """Give an `httpx2.AsyncHTTPTransport` (before its first request) this backend.

    A transport whose pool is not the plain connection pool (a proxy) is left
    as it is.
    """
    pool = getattr(transport, "_pool", None)
    if type(pool) is httpcore2.AsyncConnectionPool and hasattr(
        pool, "_network_backend"
    ):
        pool._network_backend = CachedSocketBackend()
    return transport
