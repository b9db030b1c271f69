"""Reading a route's stream under time limits: first token, stall, tail, deadline.

`StreamWatch` tracks one streamed attempt (chunks, content, finish reason,
usage, as its `ChunkReader` tells them) and says how long the next read may
wait and what it means when it times out. The stall limit is about progress
of the answer, not bytes on the wire: chunks without content (keep-alives,
`choices: []`) do not reset it.
The attempt's `timeout` bounds the whole attempt, wall-clock. Sources read
chunks with such a timeout: `AsyncSource` with asyncio timeouts; `PumpSource`
runs a sync iterator in a daemon thread and waits on a queue (a blocked socket
read cannot be interrupted otherwise); `DirectSource` iterates in the caller's
thread when no limit applies.

A stream that sent its finish reason and its usage is complete: it is closed at
once, without waiting for `data: [DONE]` (a server that never sends it cannot
hang the call). Without usage, the stream is finalised `tail` seconds after the
finish reason.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from langchain_holysheep.resilience._async_source import AsyncSource, ReadTimeout
from langchain_holysheep.resilience._chunks import (
    ChunkReader,
    MessageChunks,
    final_chunk,
    has_content,
)
from langchain_holysheep.resilience._deadline import Deadline
from langchain_holysheep.resilience._error_facts import (
    extract,
    is_connection,
    is_malformed,
    is_silent_timeout,
    is_unreachable,
)
from langchain_holysheep.resilience._exceptions import (
    AttemptTimeoutError,
    DeadlineExceededError,
    FirstTokenTimeoutError,
    StreamFailureError,
    StreamStallError,
)

__all__ = [
    "AsyncSource",
    "DirectSource",
    "PumpSource",
    "ReadTimeout",
    "StreamWatch",
    "final_chunk",
    "has_content",
]

_ITEM, _END, _ERROR = 0, 1, 2
_MESSAGES = MessageChunks()


class StreamWatch:
    """The clocks and facts of one streamed attempt."""

    __slots__ = (
        "chunks",
        "content",
        "deadline",
        "early_finish",
        "finished",
        "first_token",
        "model",
        "progress_at",
        "reader",
        "require_finish",
        "stall",
        "started",
        "tail",
        "text",
        "timeout",
        "tool_calls",
        "usage",
    )

    def __init__(
        self,
        model: str,
        deadline: Deadline,
        *,
        first_token: float | None,
        stall: float | None,
        tail: float,
        early_finish: bool,
        require_finish: bool,
        timeout: float | None = None,
        reader: ChunkReader | None = None,
    ) -> None:
        self.model = model
        self.reader: ChunkReader = reader or _MESSAGES
        self.deadline = deadline
        self.first_token = first_token
        self.stall = stall
        self.tail = tail
        self.early_finish = early_finish
        self.require_finish = require_finish
        self.timeout = timeout
        self.started = deadline.now()
        self.progress_at = self.started
        self.chunks = 0
        self.content = False
        self.finished = False
        self.usage = False
        self.tool_calls = False
        self.text: list[str] = []

    @property
    def needs_timer(self) -> bool:
        """Whether a limit applies (a sync stream then reads in a pump thread)."""
        return bool(
            self.first_token or self.stall or self.timeout or self.deadline.bounded
        )

    def next_timeout(self) -> tuple[float | None, str]:
        """How long the next read may wait, and what a timeout would mean."""
        now = self.deadline.now()
        best: float | None = None
        kind = "deadline"
        if self.deadline.bounded:
            best = self.deadline.remaining()
        if self.timeout is not None:
            left = self.started + self.timeout - now
            if best is None or left < best:
                best, kind = left, "timeout"
        if self.finished:
            cand, what = self.tail, "tail"
        elif not self.content and self.first_token:
            cand, what = self.started + self.first_token - now, "first_token"
        elif self.content and self.stall:
            cand, what = self.progress_at + self.stall - now, "stall"
        else:
            return (None if best is None else max(best, 0.0)), kind
        if best is None or cand < best:
            return max(cand, 0.0), what
        return max(best, 0.0), kind

    def expired(self, kind: str) -> BaseException | None:
        """The error for a timed-out read (`None`: the stream is complete)."""
        if kind == "tail":
            return None
        if kind == "first_token":
            assert self.first_token is not None
            return FirstTokenTimeoutError(
                self.model, self.first_token, chunks=self.chunks
            )
        if kind == "stall":
            assert self.stall is not None
            return StreamStallError(self.model, self.stall, chunks=self.chunks)
        if kind == "timeout":
            assert self.timeout is not None
            return AttemptTimeoutError(self.model, self.timeout)
        return DeadlineExceededError(
            self.deadline.seconds, f"The stream from {self.model!r} was still open."
        )

    def saw(self, chunk: Any) -> None:
        """Account for a received chunk (read by the watch's `reader`)."""
        self.chunks += 1
        content, text, tools, finished, usage = self.reader.facts(chunk)
        if content:
            self.content = True
            self.progress_at = self.deadline.now()
            if text is not None:
                self.text.append(text)
            if tools or text is None:  # structured content: never spliced
                self.tool_calls = True
        if finished:
            self.finished = True
        if usage:
            self.usage = True

    def late(self) -> BaseException | None:
        """An error if a limit passed while chunks trickled in (checked per chunk).

        Chunks that carry nothing (no content, no finish) keep a stream busy
        without progress: they never hold off the first-token or stall limit.
        """
        now = self.deadline.now()
        if not self.finished:
            limit = self.first_token
            if not self.content and limit and now - self.started > limit:
                return self.expired("first_token")
            if self.content and self.stall and now - self.progress_at > self.stall:
                return self.expired("stall")
        if self.timeout is not None and now - self.started > self.timeout:
            return self.expired("timeout")
        return None

    @property
    def complete(self) -> bool:
        """Finish reason and usage received: no need to wait for `[DONE]`."""
        return self.early_finish and self.finished and self.usage

    def incomplete(self) -> BaseException | None:
        """An error if the stream ended without a finish reason (cut short)."""
        if self.require_finish and not self.finished:
            return StreamFailureError(
                "incomplete",
                self.model,
                chunks=self.chunks,
                detail="the stream ended without a finish reason",
            )
        return None

    def wrap(self, exc: BaseException) -> BaseException:
        """A mid-stream transport/format failure as a `StreamFailureError`.

        Reads the facts of the error (not the policy: the caller classifies
        the result once).
        """
        if self.chunks == 0 or isinstance(exc, StreamFailureError):
            return exc
        if not isinstance(exc, Exception):
            return exc
        info = extract(exc)
        if is_malformed(info):
            kind = "malformed"
        elif is_silent_timeout(info):
            kind = "stall"
        elif is_unreachable(info) or is_connection(info):
            kind = "cut"
        else:
            return exc
        return StreamFailureError(kind, self.model, chunks=self.chunks, detail=str(exc))


# -- sources -------------------------------------------------------------------------
class DirectSource:
    """Iterate in the caller's thread (limits are checked only per chunk)."""

    def __init__(self, factory: Callable[[], Iterator[Any]]) -> None:
        self._it = factory()

    def next(self, timeout: float | None) -> Any:
        """The next chunk, or `None` at the end."""
        return next(self._it, None)

    def close(self) -> None:
        """Close the underlying iterator (closes the HTTP response)."""
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


class PumpSource:
    """Run a sync chunk iterator in a daemon thread; read with timeouts.

    An abandoned pump stops at its next chunk (or when the request's own
    timeout fires) and closes the iterator itself.
    """

    def __init__(self, factory: Callable[[], Iterator[Any]]) -> None:
        self._q: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._stop = False
        ctx = contextvars.copy_context()
        self._thread = threading.Thread(
            target=ctx.run,
            args=(self._run, factory),
            daemon=True,
            name="holysheep-stream",
        )
        self._thread.start()

    def _run(self, factory: Callable[[], Iterator[Any]]) -> None:
        it = None
        try:
            it = factory()
            first = True
            for item in it:
                if self._stop:
                    break
                self._q.put((_ITEM, item))
                if first:
                    # Hand the GIL to the waiting reader at once, up to the first
                    # content (not at the end of the 5 ms switch interval); after
                    # that, yielding per chunk only slows the whole stream down.
                    time.sleep(0)
                    first = not getattr(item, "text", "")
            self._q.put((_END, None))
        except BaseException as exc:  # handed over to the reader
            self._q.put((_ERROR, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    def next(self, timeout: float | None) -> Any:
        """The next chunk, `None` at the end; raises `ReadTimeout` on timeout."""
        try:
            kind, value = self._q.get(timeout=timeout)
        except queue.Empty:
            raise ReadTimeout from None
        if kind == _ITEM:
            return value  # type: ignore[no-any-return]
        if kind == _END:
            return None
        raise value

    def close(self) -> None:
        """Abandon the stream."""
        self._stop = True
