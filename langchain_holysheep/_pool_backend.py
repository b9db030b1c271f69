"""The async pool's network backend: sockets at hand, one send per request.

Before it hands out a connection, the pool asks the idle connection whether
its socket is readable (a server that closed it). Each ask goes through
anyio's `extra()`, which builds a dictionary of attribute getters every time;
the streams of this backend look their socket up once, when the connection
opens, and answer those asks from it. They also hold small writes until the
next read, so a request's head and body leave in one system call instead of
two. Everything else is the default anyio backend's. `install` puts this
backend and a `StackPool` (`_lean_pool`) into the shared client's transport.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2
from httpcore2._utils import is_socket_readable

from langchain_holysheep._lean_pool import StackPool

__all__ = ["CachedSocketBackend", "install"]

_HOLD_LIMIT = 64 * 1024
"""Writes below this size wait for the next read (see `_Stream.write`)."""


class _Stream(httpcore2.AsyncNetworkStream):
    __slots__ = ("_held", "_held_timeout", "_inner", "_sock")

    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._sock = inner.get_extra_info("socket")
        self._held: list[bytes] = []
        self._held_timeout: float | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:  # a failed write is skipped, as httpcore's connection does:
            with contextlib.suppress(httpcore2.WriteError):  # read the answer
                await self._send_held()
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Hold small writes until the next read (or a large write).

        A request's head and body are written separately; held, they leave
        in one send (one system call, one packet) when the response is read.
        """
        if not buffer:
            return
        if len(buffer) < _HOLD_LIMIT:
            self._held.append(buffer)
            self._held_timeout = timeout
            return
        if self._held:
            await self._send_held()
        await self._inner.write(buffer, timeout)

    async def _send_held(self) -> None:
        data = b"".join(self._held)
        self._held.clear()
        await self._inner.write(data, self._held_timeout)

    async def aclose(self) -> None:
        self._held.clear()
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
    """Give an `httpx2.AsyncHTTPTransport` this backend and a `StackPool`.

    Call it before the transport's first request. A transport whose pool is
    not the plain HTTP/1.1 connection pool (a proxy, HTTP/2) is left as it is.
    """
    pool = getattr(transport, "_pool", None)
    if type(pool) is httpcore2.AsyncConnectionPool and hasattr(
        pool, "_network_backend"
    ):
        pool._network_backend = CachedSocketBackend()
        if StackPool.fits(pool):
            transport._pool = StackPool(pool)
    return transport
