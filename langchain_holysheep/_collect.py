"""Non-streaming answers read as streams, so stream limits protect them too.

A non-streaming request to a silent upstream shows nothing until the HTTP read
timeout (10 minutes by default), and a long answer cannot be told from a dead
one. With a first-token or stall limit, a gateway route asks for the answer as
a stream, reads it under those limits (content, tool calls, refusals and
reasoning all count as progress; keep-alive chunks do not), and builds the
same `chat.completion` dict a non-streaming request returns: LangChain reads
it as usual. The stream is read to its end (its connection is reused); one
that ends without a finish reason is an incomplete answer, never returned.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Mapping
from typing import Any

from langchain_holysheep import _lean, _watchdog, _wire
from langchain_holysheep._json import loads
from langchain_holysheep._read_limit import ReadLimit, ReadTimeout
from langchain_holysheep._replies import check_chunk
from langchain_holysheep._sse import Event
from langchain_holysheep.resilience._exceptions import (
    FirstTokenTimeoutError,
    StreamFailureError,
    StreamStallError,
)

__all__ = ["Completion", "acollect", "acollect_events", "collect"]

TAIL = 0.5
"""Seconds to wait after the finish reason for the usage and `[DONE]`."""
_META = ("id", "created", "model", "system_fingerprint", "service_tier")


class Completion:
    """Builds a `chat.completion` dict from `chat.completion.chunk` dicts."""

    __slots__ = ("choices", "finished", "meta", "missing", "open", "usage")

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {}
        self.missing: tuple[str, ...] = _META  # fields no chunk has had yet
        self.choices: dict[int, _Choice] = {}
        self.usage: Any = None
        self.open = 0  # choices without their finish reason yet
        self.finished = False
        """Every choice has its finish reason."""

    def feed(self, chunk: Mapping[str, Any]) -> bool:
        """Add a chunk; whether it carried progress of the answer."""
        if self.missing:  # each field from the first chunk that has it
            meta = self.meta
            for key in self.missing:
                if chunk.get(key) is not None:
                    meta[key] = chunk[key]
            self.missing = tuple(k for k in self.missing if k not in meta)
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            return False
        progressed = False
        for item in choices:
            index = item.get("index") or 0
            choice = self.choices.get(index)
            if choice is None:
                choice = self.choices[index] = _Choice()
                self.open += 1
            had = choice.finish
            progressed = choice.feed(item) or progressed
            if choice.finish and not had:
                self.open -= 1
        self.finished = not self.open
        return progressed

    @property
    def complete(self) -> bool:
        """Finished and the usage received (nothing more is needed)."""
        return self.finished and self.usage is not None

    def result(self) -> dict[str, Any]:
        """The `chat.completion` dict."""
        return {
            **self.meta,
            "object": "chat.completion",
            "choices": [self.choices[i].result(i) for i in sorted(self.choices)],
            "usage": self.usage,
        }


class _Choice:
    __slots__ = ("finish", "logprobs", "other", "role", "text", "tools")

    def __init__(self) -> None:
        self.role = "assistant"
        self.text: dict[str, list[str]] = {}
        self.tools: dict[int, dict[str, Any]] = {}
        self.other: dict[str, Any] = {}
        self.finish: Any = None
        self.logprobs: list[Any] | None = None

    def feed(self, item: Mapping[str, Any]) -> bool:
        progressed = False
        for key, value in (item.get("delta") or {}).items():
            if key == "role":
                self.role = value or self.role
            elif key == "tool_calls":
                progressed = self._tool_calls(value or ()) or progressed
            elif isinstance(value, str):
                if value:
                    self.text.setdefault(key, []).append(value)
                    progressed = True
            elif value is not None:
                self.other[key] = value
        if item.get("finish_reason"):
            self.finish = item["finish_reason"]
        logprobs = item.get("logprobs")
        if logprobs and isinstance(logprobs, Mapping) and logprobs.get("content"):
            self.logprobs = (self.logprobs or []) + list(logprobs["content"])
        return progressed

    def _tool_calls(self, deltas: Any) -> bool:
        for delta in deltas:
            call = self.tools.setdefault(
                delta.get("index") or 0,
                {
                    "id": None,
                    "type": "function",
                    "function": {"name": "", "arguments": ""},
                },
            )
            if delta.get("id"):
                call["id"] = delta["id"]
            fn = delta.get("function") or {}
            if fn.get("name"):
                call["function"]["name"] += fn["name"]
            if fn.get("arguments"):
                call["function"]["arguments"] += fn["arguments"]
        return bool(deltas)

    def result(self, index: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, **self.other}
        for key, parts in self.text.items():
            message[key] = "".join(parts)
        if self.tools:
            message["tool_calls"] = [self.tools[i] for i in sorted(self.tools)]
        message.setdefault("content", None if self.tools else "")
        out = {"index": index, "message": message, "finish_reason": self.finish}
        if self.logprobs is not None:
            out["logprobs"] = {"content": self.logprobs}
        return out


class _Reading:
    """The clocks of one answer read as a stream (shared by the twins below)."""

    __slots__ = (
        "answer",
        "chunks",
        "first_token",
        "model",
        "progress_at",
        "stall",
        "started",
    )

    def __init__(
        self, model: str, first_token: float | None, stall: float | None
    ) -> None:
        self.model = model
        self.first_token = first_token
        self.stall = stall
        self.started = time.monotonic()
        self.progress_at: float | None = None
        self.chunks = 0
        self.answer = Completion()

    def wait(self) -> float | None:
        """How long the next read may take (`None`: no limit)."""
        if self.answer.finished:  # only the usage and `[DONE]` may still come
            assert self.progress_at is not None
            return self.progress_at + TAIL - time.monotonic()
        if self.progress_at is None:
            if self.first_token is None:
                return None
            return self.started + self.first_token - time.monotonic()
        if self.stall is None:
            return None
        return self.progress_at + self.stall - time.monotonic()

    def saw_all(self, first: Event, more: list[Event], base_url: str | None) -> None:
        """Account for events read together (a malformed one raises).

        They arrived at once: one clock reading serves them all.
        """
        answer, model = self.answer, self.model
        finished = answer.finished
        progressed = False
        for event in (first, *more) if more else (first,):
            data = loads(event.data)
            check_chunk(data, model, base_url)
            self.chunks += 1
            progressed = answer.feed(data) or progressed
        if progressed or answer.finished != finished:
            self.progress_at = time.monotonic()

    def expired(self) -> StreamFailureError | None:
        """The error of a read that passed its limit (`None`: the answer is whole).

        An answer with its finish reason is whole: what may still come (the
        usage, `[DONE]`) is waited for `TAIL` seconds at most.
        """
        if self.answer.finished:
            return None
        if self.progress_at is None:
            assert self.first_token is not None
            return FirstTokenTimeoutError(
                self.model, self.first_token, chunks=self.chunks
            )
        assert self.stall is not None
        return StreamStallError(self.model, self.stall, chunks=self.chunks)

    def result(self) -> dict[str, Any]:
        """The completion; a stream cut before its finish reason raises."""
        if not self.answer.finished:
            raise StreamFailureError(
                "incomplete",
                self.model,
                chunks=self.chunks,
                detail="the stream ended without a finish reason",
            )
        return self.answer.result()


def collect(
    model: Any, payload: dict[str, Any], first_token: float | None, stall: float | None
) -> tuple[dict[str, Any], Any]:
    """Read `payload`'s answer as a stream under the limits.

    Returns `(completion, stream)`: the stream is closed; its `headers` and
    `status` are the reply's.

    Raises:
        FirstTokenTimeoutError / StreamStallError: a limit passed.
        StreamFailureError: the stream ended without a finish reason.
        The errors of `_wire.open_stream` otherwise.
    """
    reading = _Reading(model.model_name, first_token, stall)
    guard = _watchdog.watch()
    try:
        with _watchdog.guarding(guard):
            guard.arm(reading.wait())
            events = _lean.send(model, payload, _wire.open_stream)
            try:
                while True:
                    guard.arm(reading.wait())
                    event = next(events, None)
                    if event is None:
                        break
                    # with the events read together with it: no wait
                    reading.saw_all(event, events.take_all(), model.openai_api_base)
            finally:
                events.close(complete=reading.answer.complete)
    except Exception as exc:
        parent = guard.parent
        if parent is not None and parent.fired:
            raise  # the attempt's own bound passed: it reports
        if not (guard.fired or time.monotonic() >= guard.deadline):
            raise
        error = reading.expired()
        if error is not None:
            raise error from exc
    finally:
        guard.finish()
    return reading.result(), events


async def acollect(
    model: Any, payload: dict[str, Any], first_token: float | None, stall: float | None
) -> tuple[dict[str, Any], Any]:
    """Async twin of `collect` (limits are one lazily moved asyncio timer)."""
    opening = _lean.send(model, payload, _wire.aopen_stream)
    return await acollect_events(
        opening, model.model_name, model.openai_api_base, first_token, stall
    )


async def acollect_events(
    opening: Awaitable[_wire.AsyncEventStream],
    model: str,
    base_url: str | None,
    first_token: float | None,
    stall: float | None,
) -> tuple[dict[str, Any], Any]:
    """The completion of the stream `opening` opens, read under the limits.

    Any caller that can open an OpenAI-wire event stream (a gateway model, the
    proxy's routes) gets a non-streaming answer with stream limits this way.

    Returns:
        `(completion, stream)` (the closed stream: its `headers`, `status`).

    Raises:
        As `collect`.
    """
    reading = _Reading(model, first_token, stall)
    limit = ReadLimit()
    events = None
    try:
        events = await limit.read(opening, reading.wait())
        while True:
            event = await limit.read(anext(events, None), reading.wait())
            if event is None:
                break
            # with the events read together with it: no wait
            reading.saw_all(event, events.take_all(), base_url)
    except ReadTimeout:
        error = reading.expired()
        if error is not None:
            raise error from None
    finally:
        limit.close()
        if events is not None:
            await events.aclose(complete=reading.answer.complete)
        elif inspect.iscoroutine(opening):
            opening.close()  # never awaited (the limit passed first)
    assert events is not None
    return reading.result(), events
