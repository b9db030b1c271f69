"""The wire route: attempts as raw OpenAI-format HTTP requests, relayed as bytes.

`WireEndpoint` is a route's "model" (where and how to reach it); `WireChunks`
reads parsed SSE events for the route loop (`resilience._chunks`);
`WireTransport` performs the loop's `Send` / `Open` operations with the shared
async HTTP client and keeps one `WireAttempt` per request sent (what it billed,
what it delivered), for pricing and the ledger. Nothing here builds LangChain
messages: requests and replies stay JSON dicts, stream events stay bytes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from langchain_holysheep import _wire
from langchain_holysheep._collect import acollect_events
from langchain_holysheep._replies import check_chunk, check_completion
from langchain_holysheep.resilience._chunks import NOTHING, ChunkFacts
from langchain_holysheep.resilience._ops import Open, Send
from langchain_holysheep.resilience._routes import Route
from langchain_holysheep.serve._upstream import Reply, Upstream

__all__ = [
    "StreamEnd",
    "WireAttempt",
    "WireChunk",
    "WireChunks",
    "WireEndpoint",
    "WireTransport",
]

# kwargs the route loop adds for chat-model clients; not part of the wire body
_LOOP_KWARGS = frozenset({"timeout", "stream_usage"})


class WireEndpoint:
    """How a wire route is reached: base URL, upstream model id, key, client.

    Args:
        model: the model id sent upstream.
        base_url: the OpenAI-compatible server (ends in `/v1`).
        api_key: the upstream key (`None`: no Authorization header).
    """

    passes_timeout = True  # the loop passes a capped `timeout=` per attempt
    __slots__ = ("base_url", "model", "upstream")

    def __init__(self, model: str, base_url: str, api_key: SecretStr | None) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.upstream = Upstream(self.base_url, _wire.bearer(api_key))

    def body(self, messages: Any, kwargs: Mapping[str, Any], stream: bool) -> dict:
        """The upstream request: the client's parameters, this route's model."""
        body = {k: v for k, v in kwargs.items() if k not in _LOOP_KWARGS}
        body["model"] = self.model
        body["messages"] = messages
        if stream:
            body["stream"] = True
            # usage is always asked for: every streamed attempt is priced
            body["stream_options"] = {
                **(body.get("stream_options") or {}),
                "include_usage": True,
            }
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        return body

    def __repr__(self) -> str:
        return f"WireEndpoint({self.model!r}, {self.base_url!r})"


@dataclass(slots=True)
class WireChunk:
    """One SSE event of a route's stream: its raw JSON text and its parse.

    `more`: the route's next event was already read with this one (a relay
    may write them together).
    """

    data: bytes
    obj: dict[str, Any]
    route: Route
    more: bool = False


@dataclass(slots=True)
class StreamEnd:
    """The last item of a relayed stream: the call's metadata."""

    meta: dict[str, Any]


class WireChunks:
    """Reads wire events (`WireChunk`) for the route loop; continues with prefill."""

    __slots__ = ()

    def facts(self, chunk: WireChunk) -> ChunkFacts:
        """Content, text, tool calls, finish reason and usage of one event."""
        obj = chunk.obj
        usage = bool(obj.get("usage"))
        choices = obj.get("choices")
        if not choices:
            return ChunkFacts(False, None, False, False, True) if usage else NOTHING
        choice = choices[0]
        finished = bool(choice.get("finish_reason"))
        delta = choice.get("delta") or {}
        content = delta.get("content")
        calls = delta.get("tool_calls") or delta.get("function_call")
        if not content and not calls:
            return ChunkFacts(False, None, False, finished, usage)
        text = content if isinstance(content, str) else None
        if text is None and not content:
            text = ""
        return ChunkFacts(True, text, bool(calls), finished, usage)

    def continuation(self, messages: list[Any], text: str) -> list[Any]:
        """The messages asking a route to continue `text` (assistant prefill)."""
        return [*messages, {"role": "assistant", "content": text}]

    def final(self, previous: Any, meta: dict[str, Any]) -> StreamEnd:
        """`StreamEnd` with the call's metadata."""
        return StreamEnd(meta)


@dataclass(slots=True)
class WireAttempt:
    """One request sent upstream: its route, timing, usage and delivered text."""

    route: Route
    started: float
    ended: float | None = None
    first_token: float | None = None
    usage: Mapping[str, Any] | None = None
    delivered: list[str] = field(default_factory=list)
    served_model: str | None = None

    def end(self) -> None:
        """Stamp the end of the attempt (first time only)."""
        if self.ended is None:
            self.ended = time.perf_counter()


class WireTransport:
    """Async attempts over the OpenAI wire format (`AsyncTransport`).

    `attempts` lists every request sent, in order (the route loop sends one
    at a time).
    """

    __slots__ = ("attempts",)

    def __init__(self) -> None:
        self.attempts: list[WireAttempt] = []

    def _begin(self, route: Route) -> WireAttempt:
        attempt = WireAttempt(route, time.perf_counter())
        self.attempts.append(attempt)
        return attempt

    async def send(self, op: Send) -> Reply:
        """One non-streaming request; raises unless the reply is a completion.

        Under a first-token or stall limit the answer is read as a stream
        under them and relayed as the one JSON reply it makes (`_collect`);
        structured output (`response_format`) is always a plain request.
        """
        ep: WireEndpoint = op.route.model  # type: ignore[assignment]
        attempt = self._begin(op.route)
        timeout = op.kwargs.get("timeout")
        try:
            if op.limits == (None, None) or "response_format" in op.kwargs:
                reply = await ep.upstream.post(
                    ep.body(op.messages, op.kwargs, stream=False), timeout
                )
                check_completion(reply.body, op.route.name, ep.base_url)
            else:
                opening = ep.upstream.open_stream(
                    ep.body(op.messages, op.kwargs, stream=True), timeout
                )
                body, _ = await acollect_events(
                    opening, op.route.name, ep.base_url, *op.limits
                )
                reply = Reply(body, 200, _wire.dumps(body))
        finally:
            attempt.end()
        attempt.usage = reply.body.get("usage")
        attempt.served_model = reply.body.get("model")
        return reply

    def stream(self, op: Open) -> AsyncIterator[WireChunk]:
        """The events of one streamed request (sent at the first read)."""
        return self._events(op, self._begin(op.route))

    async def _events(self, op: Open, attempt: WireAttempt) -> AsyncIterator[WireChunk]:
        ep: WireEndpoint = op.route.model  # type: ignore[assignment]
        route = op.route
        attempt.started = time.perf_counter()
        events = await ep.upstream.open_stream(
            ep.body(op.messages, op.kwargs, stream=True), op.kwargs.get("timeout")
        )
        try:
            async for event in events:
                obj = event.json()
                check_chunk(obj, route.name, ep.base_url)
                _note(attempt, obj)
                yield WireChunk(event.data, obj, route, events.buffered)
        finally:
            attempt.end()
            # a complete answer: read the rest (`[DONE]`), the connection goes
            # back to the pool; otherwise it is dropped at once
            await events.aclose(complete=attempt.usage is not None)


def _note(attempt: WireAttempt, obj: Mapping[str, Any]) -> None:
    """Account an event to its attempt: usage, first token, delivered text."""
    usage = obj.get("usage")
    if usage:
        attempt.usage = usage
    if attempt.served_model is None:
        attempt.served_model = obj.get("model")
    choices = obj.get("choices")
    if not choices:
        return
    delta = choices[0].get("delta") or {}
    content = delta.get("content")
    if content:
        if attempt.first_token is None:
            attempt.first_token = time.perf_counter()
        attempt.delivered.append(content if isinstance(content, str) else str(content))
    calls = delta.get("tool_calls")
    if calls:
        if attempt.first_token is None:
            attempt.first_token = time.perf_counter()
        for call in calls:
            fn = call.get("function") or {}
            attempt.delivered.append(
                str(fn.get("name") or "") + str(fn.get("arguments") or "")
            )
