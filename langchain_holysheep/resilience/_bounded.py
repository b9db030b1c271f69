"""Run a blocking call with a wall-clock bound, in reusable daemon threads.

An HTTP client's timeout is per read: a reply that trickles in byte by byte
never trips it. `run_bounded(fn, timeout)` runs `fn` in a worker thread and
stops waiting at `timeout`; the abandoned call ends in its thread (its own
read timeout still applies) and its result is dropped. Workers are daemon
threads (an abandoned call never holds up interpreter exit), reused across
calls, and run `fn` in a copy of the caller's context (callbacks, tracing and
spend tracking see the call as theirs).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

__all__ = ["BoundExceeded", "run_bounded"]

T = TypeVar("T")
_MAX_IDLE = 16

_Job = tuple[contextvars.Context, Callable[[], Any], "Future[Any]"]
_idle: queue.LifoQueue[queue.SimpleQueue[_Job]] = queue.LifoQueue()


class BoundExceeded(Exception):
    """The bounded call did not finish in time (internal)."""


def _worker(inbox: queue.SimpleQueue[_Job]) -> None:
    while True:
        ctx, fn, fut = inbox.get()
        if fut.set_running_or_notify_cancel():
            try:
                fut.set_result(ctx.run(fn))
            except BaseException as exc:  # handed to the waiting caller
                fut.set_exception(exc)
        del ctx, fn, fut
        if _idle.qsize() >= _MAX_IDLE:
            return
        _idle.put(inbox)


def _inbox() -> queue.SimpleQueue[_Job]:
    try:
        return _idle.get_nowait()
    except queue.Empty:
        inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        threading.Thread(
            target=_worker, args=(inbox,), daemon=True, name="holysheep-attempt"
        ).start()
        return inbox


def run_bounded(fn: Callable[[], T], timeout: float) -> T:
    """`fn()`, or `BoundExceeded` after `timeout` seconds (wall-clock).

    Raises:
        BoundExceeded: `fn` is still running; it is abandoned.
        Whatever `fn` raises.
    """
    fut: Future[T] = Future()
    _inbox().put((contextvars.copy_context(), fn, fut))
    try:
        return fut.result(max(timeout, 0.0))
    except FutureTimeout:
        fut.cancel()
        raise BoundExceeded from None
