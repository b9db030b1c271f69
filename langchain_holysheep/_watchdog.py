"""Wall-clock bounds for blocking HTTP requests, without a thread per request.

An HTTP client's timeout applies to each read: a reply that trickles in byte by
byte never trips it. `within(seconds)` marks the requests made in its block
(through a client built with `RESPONSE_HOOKS`) with a deadline; one shared
daemon thread watches the deadlines and, when one passes, shuts the request's
socket down, so the blocked read returns at once with a connection error that
the caller reports as a timeout (`Guard.fired`). Until the response headers
arrive the client's own timeout (the same value) applies; from then on the
socket is known and the watchdog bounds the body. The cost on the happy path
is a context variable and a heap entry per request.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2

__all__ = [
    "RESPONSE_HOOKS",
    "Guard",
    "bounded_read",
    "guarding",
    "remaining",
    "watch",
    "within",
]

_NEVER = float("inf")


class Guard:
    """The deadline of one bounded block and the socket it is reading."""

    __slots__ = ("deadline", "done", "fired", "lock", "scheduled", "sock")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.scheduled = deadline
        self.sock: socket.socket | None = None
        self.fired = False
        self.done = False
        self.lock = threading.Lock()

    def arm(self, seconds: float | None) -> None:
        """Move the deadline to `seconds` from now (`None`: no deadline).

        Moving it later costs an attribute write (the watchdog reschedules
        when the earlier time comes); moving it earlier schedules it anew.
        """
        if seconds is None:
            self.deadline = _NEVER
            return
        self.deadline = time.monotonic() + max(seconds, 0.0)
        if self.deadline < self.scheduled:
            _WATCHDOG.add(self)

    def cut(self) -> None:
        """Shut the socket down (wakes up a blocked read), unless already done."""
        with self.lock:
            if self.done:
                return
            self.fired = True
            if self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        """The response is read (its connection goes back to the pool)."""
        with self.lock:
            self.done = True
            self.sock = None


class _GuardedStream(httpx2.SyncByteStream):
    """A response body that ends its guard before releasing its connection."""

    def __init__(self, inner: Any, guard: Guard) -> None:
        self._inner = inner
        self._guard = guard

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._inner)

    def close(self) -> None:
        self._guard.finish()
        self._inner.close()


_current: contextvars.ContextVar[Guard | None] = contextvars.ContextVar(
    "holysheep_request_guard", default=None
)


class _Watchdog:
    """One daemon thread that cuts the requests whose deadline has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Guard]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, guard: Guard) -> None:
        with self._cond:
            guard.scheduled = guard.deadline
            heapq.heappush(self._heap, (guard.deadline, next(self._seq), guard))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="holysheep-watchdog"
                )
                self._thread.start()
            elif self._heap[0][2] is guard:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                when, _, guard = heapq.heappop(self._heap)
                if when != guard.scheduled:  # superseded by an earlier entry
                    continue
                if guard.deadline > time.monotonic():  # re-armed later: reschedule
                    guard.scheduled = guard.deadline
                    if guard.deadline != _NEVER:
                        entry = (guard.deadline, next(self._seq), guard)
                        heapq.heappush(self._heap, entry)
                    continue
            guard.cut()


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def within(seconds: float) -> Iterator[Guard]:
    """Bound the requests made in the block to `seconds` from now (wall-clock)."""
    guard = Guard(time.monotonic() + max(seconds, 0.0))
    token = _current.set(guard)
    _WATCHDOG.add(guard)
    try:
        yield guard
    finally:
        guard.finish()
        _current.reset(token)


def watch() -> Guard:
    """A guard without a deadline yet, for reads of a stream (see `Guard.arm`).

    Make requests with `guarding(guard)` active so their socket is known; the
    caller ends it with `finish()`.
    """
    return Guard(_NEVER)


@contextlib.contextmanager
def guarding(guard: Guard) -> Iterator[Guard]:
    """Make `guard` the current one in the block (requests sent register with it)."""
    token = _current.set(guard)
    try:
        yield guard
    finally:
        _current.reset(token)


def remaining() -> float | None:
    """Seconds left to the current guard's deadline (`None`: no guard)."""
    guard = _current.get()
    if guard is None or guard.deadline == _NEVER:
        return None
    return guard.deadline - time.monotonic()


@contextlib.contextmanager
def bounded_read(response: Any, seconds: float) -> Iterator[Guard]:
    """Bound reads of an open `response`'s body in the block to `seconds`."""
    guard = Guard(time.monotonic() + max(seconds, 0.0))
    guard.sock = _socket_of(response)
    _WATCHDOG.add(guard)
    try:
        yield guard
    finally:
        guard.finish()


def _socket_of(response: Any) -> socket.socket | None:
    stream = response.extensions.get("network_stream")
    get = getattr(stream, "get_extra_info", None)
    sock = get("socket") if get is not None else None
    return sock if isinstance(sock, socket.socket) else None


def _on_response(response: Any) -> None:
    """Httpx response hook: the headers are in; register the request's socket."""
    guard = _current.get()
    if guard is None:
        return
    sock = _socket_of(response)
    if sock is not None:
        with guard.lock:
            if guard.done:
                return
            guard.sock = sock
        response.stream = _GuardedStream(response.stream, guard)
        if time.monotonic() >= guard.deadline:
            guard.cut()


RESPONSE_HOOKS: dict[str, list[Any]] = {"response": [_on_response]}
"""`event_hooks=` for an httpx client whose requests `within` can bound."""
