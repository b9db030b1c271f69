"""Reading a sync stream under time limits in the caller's own thread.

A blocked socket read cannot be interrupted from Python, so a sync stream with
first-token or stall limits is normally pumped by a helper thread and read
from a queue with timeouts (`PumpSource`). A route whose model makes its
requests on a watched HTTP client (`HolySheepGateway` on the package's shared
client, see `_watchdog`) needs no such thread: `WatchedSource` reads in the
caller's thread and arms the process's one watchdog with each read's limit;
when the limit passes, the watchdog shuts the request's socket down, the read
returns at once, and the read reports a timeout. An abandoned stream closes
its request at once, in the caller's thread.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.outputs import ChatGenerationChunk

from langchain_holysheep import _watchdog
from langchain_holysheep.resilience._streams import ReadTimeout

__all__ = ["WatchedSource", "watchable"]


def watchable(model: Any) -> bool:
    """Whether `model` makes its requests on a watched client (see `_watchdog`)."""
    return bool(getattr(model, "watched_reads", False))


class WatchedSource:
    """Read a sync chunk iterator in the caller's thread; a watchdog bounds reads."""

    __slots__ = ("_guard", "_it")

    def __init__(self, it: Iterator[ChatGenerationChunk]) -> None:
        self._it = it
        self._guard = _watchdog.watch()

    def next(self, timeout: float | None) -> ChatGenerationChunk | None:
        """The next chunk, `None` at the end; raises `ReadTimeout` on timeout."""
        guard = self._guard
        guard.arm(timeout)
        try:
            with _watchdog.guarding(guard):
                return next(self._it, None)
        except Exception as exc:
            # The watchdog cut the socket, or (before the response headers,
            # when the socket is not known yet) the client's own timeout, which
            # the request was given from the same deadline, fired first.
            if guard.fired or time.monotonic() >= guard.deadline:
                raise ReadTimeout from exc
            raise
        finally:
            guard.arm(None)

    def close(self) -> None:
        """Close the iterator (and its HTTP response) now."""
        self._guard.finish()
        close = getattr(self._it, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
