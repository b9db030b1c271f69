"""The ground-truth log: every chat-completions request the simulator received.

Records are written by the server thread and read by tests from theirs; every
access goes through one lock, and readers get copies. A record is finished (its
status, end time and billing set) *before* the last byte of its response is
written, so once a client has read a complete response the log already shows it.

No request headers are kept, so the Authorization header is never stored.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

__all__ = ["BilledTotals", "RequestLog", "RequestRecord"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(slots=True)
class RequestRecord:
    """One request as the simulator saw it.

    Attributes:
        seq: 1-based arrival number over the simulator's lifetime (since `reset`).
        model: the requested model ("" if the body had none).
        stream: whether the request asked for a stream.
        arrived: `time.monotonic()` when the request body was read.
        ended: `time.monotonic()` when the response ended (`None`: in flight).
        fault: the name of the fault applied (`Fault.kind`, or "auth",
            "invalid_request", "unknown_model" for the simulator's own checks).
        status: the HTTP status of a response that ran its course (also 200 for
            `malformed_chunk`, `no_done`, `bad_reply`, `error_reply`, and a
            `slow_drip` whose last byte was sent), or "reset", "silent", "cut"
            (stream or body cut), "stall" (stalled, or kept alive with empty
            chunks by `empty_chunks`, until the client left), "disconnected"
            (the client left early, e.g. in the middle of a `slow_drip`),
            "stopped" (the server stopped first); `None` while in flight.
        prompt_tokens: prompt tokens of the reply (computed even if not billed).
        cached_tokens: of which served from the prompt-prefix cache.
        completion_tokens: completion tokens, reasoning included.
        reasoning_tokens: of which reasoning.
        billed: whether the client was sent the usage (a complete non-stream 200
            completion, or a stream that sent its usage chunk; never a
            `bad_reply` or `error_reply`).
    """

    seq: int
    model: str
    stream: bool
    arrived: float
    ended: float | None = None
    fault: str = "ok"
    status: int | str | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    billed: bool = False

    @property
    def finished(self) -> bool:
        """Whether the response has ended."""
        return self.ended is not None

    @property
    def duration(self) -> float | None:
        """Seconds from arrival to end (`None` while in flight)."""
        return None if self.ended is None else self.ended - self.arrived


@dataclass(frozen=True, slots=True)
class BilledTotals:
    """Token totals over billed requests.

    Attributes:
        requests: number of billed requests.
        prompt_tokens: total prompt tokens (cached included).
        cached_tokens: total cached prompt tokens.
        completion_tokens: total completion tokens (reasoning included).
        reasoning_tokens: total reasoning tokens.
    """

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class _Counts:
    __slots__ = (
        "billed",
        "cached",
        "completion",
        "finished",
        "prompt",
        "reasoning",
        "received",
    )

    def __init__(self) -> None:
        self.received = self.finished = self.billed = 0
        self.prompt = self.cached = self.completion = self.reasoning = 0


def _in_thread(method: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """The async twin of a blocking method: the same call, in a worker thread."""

    @functools.wraps(method)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, *args, **kwargs)

    run.__doc__ = f"`{method.__name__}` without blocking the caller's event loop."
    return run


class RequestLog:
    """Thread-safe log of requests with exact billing totals.

    Args:
        max_records: keep at most this many records for `records()` (oldest
            dropped); counts and billing totals always cover every request.
    """

    def __init__(self, max_records: int | None = None) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._records: deque[RequestRecord] = deque(maxlen=max_records)
        self._counts: dict[str | None, _Counts] = {None: _Counts()}
        self._open: dict[int, RequestRecord] = {}
        self._seq = 0

    # -- written by the server ----------------------------------------------------
    def open(self, model: str, stream: bool) -> RequestRecord:
        """Register a newly received request and return its (live) record."""
        now = time.monotonic()
        with self._cond:
            self._seq += 1
            record = RequestRecord(self._seq, model, stream, now)
            self._records.append(record)
            self._open[record.seq] = record
            for key in (None, model):
                counts = self._counts.get(key)
                if counts is None:
                    counts = self._counts[key] = _Counts()
                counts.received += 1
            self._cond.notify_all()
        return record

    def update(self, record: RequestRecord, **fields: Any) -> None:
        """Set fields of an in-flight record (fault name, token counts)."""
        with self._cond:
            for name, value in fields.items():
                setattr(record, name, value)

    def finish(
        self,
        record: RequestRecord,
        status: int | str,
        *,
        fault: str | None = None,
        billed: bool = False,
    ) -> None:
        """Set a record's outcome (first call wins); count its usage if `billed`."""
        now = time.monotonic()
        with self._cond:
            if record.ended is not None:
                return
            counted = self._open.get(record.seq) is record
            if counted:
                del self._open[record.seq]
            record.ended = now
            record.status = status
            if fault is not None:
                record.fault = fault
            record.billed = billed
            if not counted:  # opened before a clear(): not part of the totals
                self._cond.notify_all()
                return
            for key in (None, record.model):
                counts = self._counts[key]
                counts.finished += 1
                if billed:
                    counts.billed += 1
                    counts.prompt += record.prompt_tokens
                    counts.cached += record.cached_tokens
                    counts.completion += record.completion_tokens
                    counts.reasoning += record.reasoning_tokens
            self._cond.notify_all()

    # -- read by tests ------------------------------------------------------------
    def records(self, model: str | None = None) -> list[RequestRecord]:
        """Copies of the records (of one model, if given), in arrival order."""
        with self._cond:
            return [
                copy.copy(r) for r in self._records if model is None or r.model == model
            ]

    def count(self, model: str | None = None, *, finished: bool = False) -> int:
        """Number of requests received (or finished) for `model` (all if `None`)."""
        with self._cond:
            return self._count(model, finished)

    def _count(self, model: str | None, finished: bool) -> int:
        counts = self._counts.get(model)
        if counts is None:
            return 0
        return counts.finished if finished else counts.received

    def billed(self, model: str | None = None) -> BilledTotals:
        """Token totals over billed requests (of one model, if given)."""
        with self._cond:
            c = self._counts.get(model) or _Counts()
            return BilledTotals(c.billed, c.prompt, c.cached, c.completion, c.reasoning)

    def wait_for(
        self,
        n: int,
        timeout: float = 5.0,
        *,
        model: str | None = None,
        finished: bool = False,
    ) -> list[RequestRecord]:
        """Block until `n` requests were received (with `finished`: have ended).

        Returns:
            Copies of the records (of `model`, if given).

        Raises:
            TimeoutError: if the count is not reached within `timeout` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._count(model, finished) >= n, timeout
            ):
                have = self._count(model, finished)
                what = "finished" if finished else "received"
                scope = f" for model {model!r}" if model else ""
                raise TimeoutError(
                    f"simulator log: {have} request(s) {what}{scope} after {timeout}s, "
                    f"waited for {n}"
                )
        return self.records(model)

    wait_for_async = _in_thread(wait_for)

    def clear(self) -> None:
        """Forget every record and total; sequence numbers restart at 1.

        Requests still in flight keep their records but are no longer counted.
        """
        with self._cond:
            self._records.clear()
            self._counts = {None: _Counts()}
            self._open.clear()
            self._seq = 0
            self._cond.notify_all()
