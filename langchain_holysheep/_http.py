"""Shared HTTP clients that are safe across event loops.

langchain-openai caches one async HTTP client per process. Its pooled connections
belong to the event loop that opened them, so a second `asyncio.run()` (or a test
runner that opens a loop per test) reuses a connection of a closed loop and fails
with "Event loop is closed". `LoopLocalTransport` keeps one real transport per
running loop instead, closed when that loop shuts down its async generators
(`asyncio.run` does), and the clients built on it are shared by every model
instance with the same settings, so creating a model stays cheap. The default
transport's pool is a `StackPool` on the `_pool_backend` network backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from functools import lru_cache
from typing import Any, Literal

import httpx2

AsyncTransportKind = Literal["httpx", "aiohttp"]

_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
# `timeout=None` means this; the cache keys on None (an httpx2.Timeout is
# unhashable, and a fresh client per call would open a fresh pool per call)
_DEFAULT_TIMEOUT = httpx2.Timeout(600.0, connect=10.0)


def aiohttp_available() -> bool:
    """True when the optional aiohttp transport can be used."""
    try:
        import aiohttp  # noqa: F401
        from openai._vendor.httpx_aiohttp import AiohttpTransport  # noqa: F401
    except ImportError:
        return False
    return True


class LoopLocalTransport(httpx2.AsyncBaseTransport):
    """An async transport that delegates to one transport per running event loop.

    Args:
        factory: builds a fresh transport; called once per event loop.
    """

    def __init__(
        self,
        factory: Callable[[], httpx2.AsyncBaseTransport],
        close_with_loop: bool = False,
    ) -> None:
        self._factory = factory
        self._close_with_loop = close_with_loop
        self._lock = threading.Lock()
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx2.AsyncBaseTransport
        ] = weakref.WeakKeyDictionary()
        self._closers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncGenerator[None, None]
        ] = weakref.WeakKeyDictionary()

    def current(self) -> httpx2.AsyncBaseTransport:
        """The running loop's transport (built on first use)."""
        loop = asyncio.get_running_loop()
        transport = self._by_loop.get(loop)
        if transport is None:
            with self._lock:
                transport = self._by_loop.get(loop)
                if transport is None:
                    transport = self._factory()
                    self._by_loop[loop] = transport
                    if self._close_with_loop:
                        self._closers[loop] = self._closer(loop, transport)
        return transport

    def _closer(
        self, loop: asyncio.AbstractEventLoop, transport: httpx2.AsyncBaseTransport
    ) -> AsyncGenerator[None, None]:
        """An async generator the loop closes at its end (`asyncio.run` does).

        Started here, it is registered with the running loop like any async
        generator; `loop.shutdown_asyncgens()` then closes it, and closing it
        closes the loop's transport (an aiohttp session otherwise reports
        itself unclosed when the program ends).
        """

        async def close_at_shutdown() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                with self._lock:
                    if self._by_loop.get(loop) is transport:
                        del self._by_loop[loop]
                with contextlib.suppress(Exception):
                    await transport.aclose()

        gen = close_at_shutdown()
        with contextlib.suppress(StopIteration):
            gen.__anext__().send(None)  # runs to its `yield` at once
        return gen

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send the request on the current loop's transport."""
        return await self.current().handle_async_request(request)

    async def aclose(self) -> None:
        """Close the current loop's transport (others close with their loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            transport = self._by_loop.pop(loop, None)
        if transport is not None:
            await transport.aclose()


def _remap(exc: httpx2.ConnectTimeout) -> BaseException:
    """Tell a dropped connection from a failure to connect.

    The vendored aiohttp transport reports every dropped connection (a reset, a
    server disconnect, even mid-body) as `ConnectTimeout`. Only a failure to
    connect is one; the rest is a read error (retryable, not a gateway outage).
    """
    import aiohttp

    cause = exc.__cause__
    if isinstance(cause, (aiohttp.ClientConnectorError, asyncio.TimeoutError)):
        return exc
    if isinstance(cause, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        err = httpx2.ReadError(str(exc))
        err.__cause__ = cause
        return err
    return exc


class _RemappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aiter__(self) -> Any:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx2.ConnectTimeout as exc:
            raise _remap(exc) from exc.__cause__

    async def aclose(self) -> None:
        await self._inner.aclose()


def _aiohttp_transport() -> httpx2.AsyncBaseTransport:
    from openai._vendor.httpx_aiohttp import AiohttpTransport

    class _Transport(AiohttpTransport):  # type: ignore[misc]
        async def handle_async_request(
            self, request: httpx2.Request
        ) -> httpx2.Response:
            try:
                response = await super().handle_async_request(request)
            except httpx2.ConnectTimeout as exc:
                raise _remap(exc) from exc.__cause__
            response.stream = _RemappedStream(response.stream)
            return response

    return _Transport(limits=_LIMITS)


def _transport_factory(kind: AsyncTransportKind) -> Callable[[], Any]:
    if kind == "aiohttp":
        return _aiohttp_transport
    from langchain_holysheep._pool_backend import install

    return lambda: install(httpx2.AsyncHTTPTransport(limits=_LIMITS))


@lru_cache(maxsize=64)
def _cached_async_client(
    base_url: str, timeout: Any, kind: AsyncTransportKind
) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        base_url=base_url,
        timeout=_DEFAULT_TIMEOUT if timeout is None else timeout,
        follow_redirects=True,
        transport=LoopLocalTransport(_transport_factory(kind), close_with_loop=True),
    )


def shared_async_client(
    base_url: str, timeout: Any, kind: AsyncTransportKind = "httpx"
) -> httpx2.AsyncClient:
    """An async client safe across event loops, shared per (url, timeout, kind)."""
    try:
        hash(timeout)
    except TypeError:
        return _cached_async_client.__wrapped__(base_url, timeout, kind)
    return _cached_async_client(base_url, timeout, kind)


@lru_cache(maxsize=64)
def _cached_sync_client(base_url: str, timeout: Any) -> httpx2.Client:
    import openai

    from langchain_holysheep._watchdog import RESPONSE_HOOKS

    return openai.DefaultHttpxClient(
        base_url=base_url,
        timeout=_DEFAULT_TIMEOUT if timeout is None else timeout,
        event_hooks=RESPONSE_HOOKS,
    )


def shared_sync_client(base_url: str, timeout: Any) -> httpx2.Client:
    """A sync client whose requests `_watchdog.within` can bound (wall-clock).

    Shared per (url, timeout), like langchain-openai's default client.
    """
    try:
        hash(timeout)
    except TypeError:
        return _cached_sync_client.__wrapped__(base_url, timeout)
    return _cached_sync_client(base_url, timeout)
