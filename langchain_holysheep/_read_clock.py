"""The read limit of one async stream: a single timer, moved lazily."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["ReadClock"]

_UNCANCEL = hasattr(asyncio.Task, "uncancel")


class ReadClock:
    """The read limit of one async stream: a single timer, moved lazily.

    Moving the deadline later (every chunk with progress does) costs an
    attribute write; when the timer fires early it re-arms itself for the
    current deadline, and when the deadline has passed it cancels the reading
    task (which `expired` then tells from any other cancellation). Without
    `Task.uncancel` (Python 3.10) each read gets its own `wait_for` instead.
    """

    __slots__ = ("deadline", "fired", "handle", "loop", "task", "when")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task() if _UNCANCEL else None
        self.deadline: float | None = None
        self.when = float("inf")
        self.handle: asyncio.TimerHandle | None = None
        self.fired = False

    def set(self, seconds: float | None) -> None:
        """The next reads end `seconds` from now at the latest (`None`: no limit)."""
        if seconds is None:
            self.deadline = None
            return
        self.deadline = self.loop.time() + max(seconds, 0.0)
        if self.task is not None and self.deadline < self.when:
            self._arm(self.deadline)

    def _arm(self, when: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.when = when
        self.handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self.handle, self.when = None, float("inf")
        if self.deadline is None or self.task is None:
            return
        if self.deadline > self.loop.time():
            self._arm(self.deadline)
            return
        self.fired = True
        self.task.cancel()

    async def run(self, awaitable: Any) -> Any:
        """Await a read under the limit."""
        if self.task is not None or self.deadline is None:
            return await awaitable
        left = max(self.deadline - self.loop.time(), 0.0)
        return await asyncio.wait_for(awaitable, left)

    def expired(self, exc: BaseException) -> bool:
        """Whether `exc` is this limit passing (a cancellation of ours is undone)."""
        if self.task is None:
            return isinstance(exc, (asyncio.TimeoutError, TimeoutError))
        if not (self.fired and isinstance(exc, asyncio.CancelledError)):
            return False
        uncancel = getattr(self.task, "uncancel")  # noqa: B009 (Python >= 3.11)
        return bool(uncancel() == 0)

    def close(self) -> None:
        """Stop the timer."""
        self.deadline = None
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
