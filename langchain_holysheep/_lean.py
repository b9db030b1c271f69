"""The lean request path of gateway models: the wire payload in, plain dicts out.

The OpenAI SDK's `chat.completions.create` transforms every request against its
typed parameters and builds pydantic models of every reply and stream chunk;
langchain-openai then turns those models back into dicts. For calls that need
none of that (no `response_format` parsing), a `HolySheepGateway` posts the
payload LangChain already built on its shared HTTP client (`_wire`) and hands
the reply's dict, or each stream event's dict, to langchain-openai's own
readers. Errors are the SDK's classes, so translation and classification are
the same on both paths; streams are read to their end, so their connection is
reused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import openai
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai.chat_models.base import (  # the same mapping as ChatOpenAI
    _handle_openai_api_error,
    _handle_openai_bad_request,
)

from langchain_holysheep import _wire

__all__ = ["ChunkReader", "eligible", "generation_info", "sdk_errors", "send"]

T = TypeVar("T")

PATH = "chat/completions"


def eligible(payload: Mapping[str, Any]) -> bool:
    """Whether `payload` can take the lean path (plain JSON in, JSON out)."""
    return "response_format" not in payload


@contextlib.contextmanager
def sdk_errors() -> Iterator[None]:
    """Raise the SDK's errors as langchain-openai's `_generate`/`_stream` do."""
    try:
        yield
    except openai.BadRequestError as exc:
        _handle_openai_bad_request(exc)
        raise
    except openai.APIError as exc:
        _handle_openai_api_error(exc)
        raise


def _options(model: Any, payload: Mapping[str, Any]) -> tuple[Any, _wire.Options]:
    """The request body and options of a LangChain payload for `model`."""
    body, extra_headers, query, timeout = _wire.split_options(payload)
    headers = _wire.bearer(model.holysheep_api_key)
    if model.default_headers:
        headers.update(model.default_headers)
    headers.update(extra_headers)
    if model.default_query:
        query = {**model.default_query, **query}
    return body, {"headers": headers, "query": query, "timeout": timeout}


_ASYNC = frozenset({_wire.apost, _wire.aopen_stream})


def send(model: Any, payload: Mapping[str, Any], how: Callable[..., T]) -> T:
    """`how(client, path, body, **options)` for the payload on the model's client.

    `how` is one of `_wire.post`, `_wire.open_stream` (the shared sync client)
    or their async twins (the shared async client; await the result).
    """
    body, options = _options(model, payload)
    client = model.http_async_client if how in _ASYNC else model.http_client
    return how(client, PATH, body, **options)


def generation_info(model: Any, reply: Any) -> dict[str, Any]:
    """`generation_info` of a reply (its headers when the model asks for them).

    `reply` is anything with `headers` (read only when asked for).
    """
    return {"headers": dict(reply.headers)} if model.include_response_headers else {}


class ChunkReader:
    """Turns one stream's events into LangChain chunks, as langchain-openai does.

    Also knows whether the answer is complete (finish reason and usage seen),
    so a stream closed at that point can finish reading its body and keep its
    connection.
    """

    __slots__ = ("_cls", "_info", "_model", "finished", "usage")

    def __init__(self, model: Any, reply: Any) -> None:
        self._model = model
        self._cls: type = AIMessageChunk
        self._info: dict[str, Any] | None = generation_info(model, reply)
        self.finished = False
        self.usage = False

    @property
    def complete(self) -> bool:
        """Finish reason and usage received."""
        return self.finished and self.usage

    def read(self, event: _wire.Event) -> ChatGenerationChunk | None:
        """The chunk of `event` (`None` for events that carry none)."""
        data = event.json()
        info = self._info or {}
        chunk = self._model._convert_chunk_to_generation_chunk(data, self._cls, info)
        if chunk is None:
            return None
        self._info = None
        self._cls = chunk.message.__class__
        if chunk.generation_info and chunk.generation_info.get("finish_reason"):
            self.finished = True
        if getattr(chunk.message, "usage_metadata", None):
            self.usage = True
        return chunk
