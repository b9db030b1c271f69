"""An async HTTP/1.1 connection pool whose bookkeeping does not grow with its size.

httpcore's pool re-examines every connection it holds twice per request (when
a request arrives and when a response closes), and asks each idle one whether
its socket is readable (a system call each): with 32 requests in flight that
bookkeeping is a large part of the client's CPU per request. `StackPool` keeps
the idle connections of each origin in a stack: a request takes the most
recently used one and probes only that one, and a closed response puts its
connection back on top. The connections themselves (connect, TLS, HTTP/1.1,
keep-alive expiry) are httpcore's, built by the pool it replaces, within the
same limits: at most `max_connections` open (a request waits up to the pool
timeout for one, then fails with `PoolTimeout`), at most
`max_keepalive_connections` idle; idle connections past their keep-alive
expiry are closed as requests come and go.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import httpcore2

try:  # httpcore2's own shield from cancellation (anyio's, or trio's)
    from httpcore2._synchronization import AsyncShieldCancellation
except ImportError:  # pragma: no cover - a layout of httpcore2 this does not know
    AsyncShieldCancellation = None  # type: ignore[assignment,misc]

__all__ = ["StackPool"]

_KNOWN = (
    "_max_connections",
    "_max_keepalive_connections",
    "_http2",
    "create_connection",
)

_SCHEMES = frozenset({b"http", b"https", b"ws", b"wss"})
_PRUNE_EVERY = 1.0
"""Seconds between sweeps for idle connections past their keep-alive expiry."""

Key = tuple[bytes, bytes, int]


class StackPool:
    """A drop-in for an HTTP/1.1 `httpcore2.AsyncConnectionPool` (one event loop).

    Args:
        pool: the pool it replaces; it builds the connections (its TLS,
            network backend and socket settings) and gives the limits.
    """

    @staticmethod
    def fits(pool: Any) -> bool:
        """Whether `pool` is an HTTP/1.1 pool of a layout this class knows."""
        known = AsyncShieldCancellation is not None and all(
            hasattr(pool, name) for name in _KNOWN
        )
        return known and not pool._http2

    def __init__(self, pool: httpcore2.AsyncConnectionPool) -> None:
        self._factory = pool
        self._max = pool._max_connections
        self._max_idle = pool._max_keepalive_connections
        self._idle: dict[Key, list[Any]] = {}  # most recently used last
        self._idle_count = 0
        self._all: set[Any] = set()  # every connection counted against `_max`
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._next_prune = 0.0

    @property
    def connections(self) -> list[Any]:
        """The connections open or opening."""
        return list(self._all)

    async def handle_async_request(
        self, request: httpcore2.Request
    ) -> httpcore2.Response:
        """Send `request` on a pooled connection; the body releases it when closed."""
        url = request.url
        if url.scheme not in _SCHEMES:
            scheme = url.scheme.decode()
            if not scheme:
                raise httpcore2.UnsupportedProtocol(
                    "Request URL is missing an 'http://' or 'https://' protocol."
                )
            raise httpcore2.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme}://'."
            )
        origin = url.origin
        key = (origin.scheme, origin.host, origin.port)
        timeout = request.extensions.get("timeout", {}).get("pool")
        while True:
            connection = await self._acquire(key, origin, timeout)
            try:
                response = await connection.handle_async_request(request)
            except httpcore2.ConnectionNotAvailable:
                await self._release(connection, key)
                continue
            except BaseException:
                await self._release(connection, key)
                raise
            return httpcore2.Response(
                status=response.status,
                headers=response.headers,
                content=_PooledBody(response.stream, self, connection, key),
                extensions=response.extensions,
            )

    async def _acquire(self, key: Key, origin: Any, timeout: float | None) -> Any:
        while True:
            stack = self._idle.get(key)
            while stack:
                connection = stack.pop()
                self._idle_count -= 1
                if not connection.has_expired():
                    return connection
                await self._close(connection)
            if len(self._all) < self._max:
                return self._open(origin)
            if self._idle_count:  # full: an idle connection elsewhere makes room
                await self._close(self._idle_elsewhere())
                return self._open(origin)
            await self._wait(timeout)

    def _open(self, origin: Any) -> Any:
        connection = self._factory.create_connection(origin)
        self._all.add(connection)
        return connection

    def _idle_elsewhere(self) -> Any:
        """The longest idle connection of another origin (this one has none)."""
        stack = next(s for s in self._idle.values() if s)
        self._idle_count -= 1
        return stack.pop(0)

    async def _release(self, connection: Any, key: Key) -> None:
        """A response is closed (or failed): keep its connection or drop it."""
        reusable = connection.is_idle() and not connection.is_closed()
        if not reusable or self._idle_count >= self._max_idle:
            await self._close(connection)
        else:
            self._idle.setdefault(key, []).append(connection)
            self._idle_count += 1
            self._wake()
        now = time.monotonic()
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY
            await self._prune()

    async def _prune(self) -> None:
        """Close idle connections past their keep-alive expiry (oldest first)."""
        for stack in list(self._idle.values()):  # closing awaits: others may add
            while stack and stack[0].has_expired():
                self._idle_count -= 1
                await self._close(stack.pop(0))

    async def _close(self, connection: Any) -> None:
        self._all.discard(connection)
        self._wake()
        with AsyncShieldCancellation():
            await connection.aclose()

    def _wake(self) -> None:
        """Let the longest-waiting request look for a connection again."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _wait(self, timeout: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            raise httpcore2.PoolTimeout("Timed out waiting for a connection") from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # woken, but leaving: pass the turn on
            raise

    async def aclose(self) -> None:
        """Close every connection (active ones too), as httpcore's pool does."""
        closing, self._all = list(self._all), set()
        self._idle.clear()
        self._idle_count = 0
        with AsyncShieldCancellation():
            for connection in closing:
                await connection.aclose()

    async def __aenter__(self) -> StackPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        busy = len(self._all) - self._idle_count
        return f"<StackPool [{busy} active, {self._idle_count} idle]>"


class _PooledBody:
    """A response body that gives its connection back to the pool when closed."""

    __slots__ = ("_closed", "_connection", "_key", "_pool", "_stream")

    def __init__(self, stream: Any, pool: StackPool, connection: Any, key: Key) -> None:
        self._stream = stream
        self._pool = pool
        self._connection = connection
        self._key = key
        self._closed = False

    def __aiter__(self) -> Any:
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with AsyncShieldCancellation():
            await self._stream.aclose()
        await self._pool._release(self._connection, self._key)
