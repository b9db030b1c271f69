"""`AsyncSource`: an async chunk iterator, each read bounded by its own timeout.

A read that waits past its timeout raises `ReadTimeout`; any other
cancellation of the reading task goes through unchanged. The semantics are
those of `asyncio.timeout` around each read, with one timer per source
instead of one per read: a read only moves the source's limit; the timer,
when it fires, cancels a read that is past its limit, or waits again until
the limit the current read set (between reads it just stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["AsyncSource", "ReadTimeout"]

_LEGACY = not hasattr(asyncio, "timeout")  # Python 3.10: no Task.uncancel


class ReadTimeout(Exception):
    """A source read timed out (internal)."""


class AsyncSource:
    """Read an async chunk iterator with per-read timeouts."""

    __slots__ = ("_fired", "_it", "_loop", "_reader", "_timer", "_timer_at", "_until")

    def __init__(self, it: AsyncIterator[Any]) -> None:
        self._it = it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: asyncio.Task[Any] | None = None  # the task reading now
        self._until = math.inf  # the current read's limit (loop time)
        self._timer: asyncio.Handle | None = None
        self._timer_at = math.inf
        self._fired = False  # the timer cancelled the current read

    async def next(self, timeout: float | None) -> Any:
        """The next chunk, `None` at the end; raises `ReadTimeout` on timeout."""
        try:
            if timeout is None:
                return await self._it.__anext__()
            if _LEGACY:
                try:
                    return await asyncio.wait_for(self._it.__anext__(), timeout)
                except asyncio.TimeoutError:
                    raise ReadTimeout from None
            task = self._arm(timeout)
            cancelling = task.cancelling()  # type: ignore[attr-defined]
            try:
                return await self._it.__anext__()
            except asyncio.CancelledError:
                if self._fired:
                    self._fired = False
                    if task.uncancel() <= cancelling:  # type: ignore[attr-defined]
                        raise ReadTimeout from None
                raise
            finally:
                self._reader = None
                if self._fired:  # expired, but the read ended on its own
                    self._fired = False
                    task.uncancel()  # type: ignore[attr-defined]
        except StopAsyncIteration:
            return None

    def _arm(self, timeout: float) -> asyncio.Task[Any]:
        """Set the limit of a read starting now; the reading task."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("AsyncSource.next() must be awaited in a task")
        until = loop.time() + timeout
        self._until = until
        if until < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = (
                loop.call_soon(self._expire)  # as `asyncio.timeout` past its time
                if timeout <= 0
                else loop.call_at(until, self._expire)
            )
            self._timer_at = until
        self._reader = task
        return task

    def _expire(self) -> None:
        """The timer: cancel a read past its limit, or wait for the current one."""
        at, self._timer, self._timer_at = self._timer_at, None, math.inf
        reader, loop = self._reader, self._loop
        if reader is None or loop is None or self._fired:
            return
        # set for this read's limit: expired (as `asyncio.timeout`'s own timer)
        if at >= self._until or loop.time() >= self._until:
            self._fired = True
            reader.cancel()
        else:
            self._timer = loop.call_at(self._until, self._expire)
            self._timer_at = self._until

    async def close(self) -> None:
        """Close the underlying generator (closes the HTTP response)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf
        aclose = getattr(self._it, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
