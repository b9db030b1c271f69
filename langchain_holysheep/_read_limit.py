"""`ReadLimit`: reads of one stream, each bounded by its own timeout, one timer.

A read that waits past its timeout raises `ReadTimeout`; any other
cancellation of the reading task goes through unchanged. The semantics are
those of `asyncio.timeout` around each read, with one timer per stream
instead of one per read: a read only moves the stream's limit; the timer,
when it fires, cancels a read that is past its limit, or waits again until
the limit the current read set (between reads it just stops).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["ReadLimit", "ReadTimeout"]

_LEGACY = not hasattr(asyncio, "timeout")  # Python 3.10: no Task.uncancel
_T = TypeVar("_T")


class ReadTimeout(Exception):
    """A read timed out (internal)."""


class ReadLimit:
    """The read limits of one stream: one timer, moved lazily."""

    __slots__ = ("_fired", "_loop", "_reader", "_timer", "_timer_at", "_until")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: asyncio.Task[Any] | None = None  # the task reading now
        self._until = math.inf  # the current read's limit (loop time)
        self._timer: asyncio.Handle | None = None
        self._timer_at = math.inf
        self._fired = False  # the timer cancelled the current read

    async def read(self, awaitable: Awaitable[_T], timeout: float | None) -> _T:
        """Await one read; raises `ReadTimeout` if it takes over `timeout` s."""
        if timeout is None:
            return await awaitable
        if _LEGACY:
            try:
                return await asyncio.wait_for(awaitable, timeout)
            except asyncio.TimeoutError:
                raise ReadTimeout from None
        task = self._arm(timeout)
        cancelling = task.cancelling()  # type: ignore[attr-defined]
        try:
            return await awaitable
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

    def _arm(self, timeout: float) -> asyncio.Task[Any]:
        """Set the limit of a read starting now; the reading task."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a limited read must be awaited in a task")
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

    def close(self) -> None:
        """Stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf
