"""Chunk readers: what the route loop needs to know of a streamed chunk.

The loop and its stream watch never look inside a chunk themselves: a
`ChunkReader` tells whether a chunk carries content (and which plain text),
tool calls, a finish reason or usage, builds the request that asks another
route to continue delivered text, and makes the stream's closing item. The
router is given one: `MessageChunks` reads LangChain `ChatGenerationChunk`s
(the default); a wire reader (the OpenAI-format proxy) reads parsed SSE events
and relays their bytes untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

__all__ = [
    "ChunkFacts",
    "ChunkReader",
    "MessageChunks",
    "continue_with_prefill",
    "final_chunk",
    "has_content",
]


class ChunkFacts(NamedTuple):
    """What one chunk means to the stream watch.

    Attributes:
        content: something the user sees (text or a tool call).
        text: its plain text, to continue on another route (`None`:
            structured content, never spliced).
        tool_calls: it carries tool-call parts (never spliced either).
        finished: it carries a finish reason.
        usage: it carries token usage.
    """

    content: bool
    text: str | None
    tool_calls: bool
    finished: bool
    usage: bool


NOTHING = ChunkFacts(False, None, False, False, False)


class ChunkReader(Protocol):
    """Reads chunks of one kind for the route loop."""

    def facts(self, chunk: Any) -> ChunkFacts:
        """What `chunk` carries."""

    def continuation(self, request: Any, text: str) -> Any:
        """The request asking a route to continue `text` (assistant prefill)."""

    def final(self, previous: Any, meta: dict[str, Any]) -> Any:
        """The last item of a stream, carrying the call's metadata."""


def continue_with_prefill(messages: list[BaseMessage], text: str) -> list[BaseMessage]:
    """The messages asking a route to continue `text` (a trailing AI message)."""
    return [*messages, AIMessage(content=text)]


def has_content(chunk: ChatGenerationChunk) -> bool:
    """Whether a chunk carries something the user sees (text or a tool call)."""
    msg = chunk.message
    if msg.content:
        return True
    if isinstance(msg, AIMessageChunk) and msg.tool_call_chunks:
        return True
    extra = msg.additional_kwargs
    return bool(extra and (extra.get("tool_calls") or extra.get("function_call")))


def _finish_reason(chunk: ChatGenerationChunk) -> Any:
    info = chunk.generation_info
    if info and info.get("finish_reason"):
        return info["finish_reason"]
    return chunk.message.response_metadata.get("finish_reason")


def final_chunk(
    previous: ChatGenerationChunk | None, meta: dict[str, Any]
) -> ChatGenerationChunk:
    """The empty last chunk carrying `response_metadata["holysheep"]`."""
    content: Any = (
        "" if previous is None or isinstance(previous.message.content, str) else []
    )
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content=content,
            response_metadata={"holysheep": meta},
            chunk_position="last",
        )
    )


class MessageChunks:
    """Reads LangChain `ChatGenerationChunk`s (the chat-model routes).

    Args:
        continuation: `(messages, text) -> messages` asking a route to continue
            a broken stream's text (default: a trailing AI message).
    """

    __slots__ = ("continuation",)

    def __init__(
        self, continuation: Callable[[Any, str], Any] = continue_with_prefill
    ) -> None:
        self.continuation = continuation

    def facts(self, chunk: ChatGenerationChunk) -> ChunkFacts:
        """Content, text, tool calls, finish reason and usage of a chunk."""
        finished = bool(_finish_reason(chunk))
        usage = bool(getattr(chunk.message, "usage_metadata", None))
        if not has_content(chunk):
            return (
                ChunkFacts(False, None, False, finished, usage)
                if (finished or usage)
                else NOTHING
            )
        msg = chunk.message
        text = msg.content if isinstance(msg.content, str) else None
        tools = text is None or bool(
            (isinstance(msg, AIMessageChunk) and msg.tool_call_chunks)
            or msg.additional_kwargs.get("tool_calls")
        )
        return ChunkFacts(True, text, tools, finished, usage)

    def final(
        self, previous: ChatGenerationChunk | None, meta: dict[str, Any]
    ) -> ChatGenerationChunk:
        """`final_chunk`."""
        return final_chunk(previous, meta)
