"""One attempt of a `HolySheepGateway` call, on the lean path where it can.

A call the lean path can make (the package's shared HTTP client, a payload
`_lean.eligible` accepts) is posted through `_wire` and read as a plain dict;
any other goes through `BaseChatOpenAI` (the OpenAI SDK). Either way the
gateway's errors come out translated into helpful ones (`reraise`). An answer
read as a stream under first-token and stall limits (`generate_limited`) is
collected by `_collect`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import openai
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai.chat_models.base import BaseChatOpenAI

from langchain_holysheep import _collect, _lean, _wire
from langchain_holysheep._gateway import reraise

if TYPE_CHECKING:
    from langchain_holysheep._gateway_model import HolySheepGateway

__all__ = [
    "Limits",
    "agenerate",
    "agenerate_limited",
    "astream",
    "generate",
    "generate_limited",
    "stream",
]

_TRANSLATED = (openai.APIError, json.JSONDecodeError, ValueError)
"""Errors of an attempt that `reraise` turns into helpful ones (or re-raises):
API errors, malformed JSON, and values the HTTP client refused to send (a
header it cannot encode holds the value, often the key, in its message)."""

Limits = tuple[float | None, float | None]
"""`(first_token, stall)` seconds of an answer read as a stream."""


@contextlib.contextmanager
def _translated(model_name: str) -> Iterator[None]:
    """The block's gateway errors raised as helpful ones (`reraise`)."""
    try:
        yield
    except _TRANSLATED as exc:
        reraise(exc, model_name)


def generate(
    model: HolySheepGateway,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: CallbackManagerForLLMRun | None,
    /,
    **kwargs: Any,
) -> ChatResult:
    """One answer: posted on the lean path, else by the OpenAI SDK."""
    with _translated(model.model_name):
        payload = _payload(model, model._bounded_sync, messages, stop, kwargs)
        if payload is None:
            return BaseChatOpenAI._generate(
                model, messages, stop, run_manager, **kwargs
            )
        with _lean.sdk_errors():
            reply = _lean.send(model, payload, _wire.post)
        return _result(model, reply.body, reply)


async def agenerate(
    model: HolySheepGateway,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: AsyncCallbackManagerForLLMRun | None,
    /,
    **kwargs: Any,
) -> ChatResult:
    """Async `generate`."""
    with _translated(model.model_name):
        payload = _payload(model, model._shared_async, messages, stop, kwargs)
        if payload is None:
            return await BaseChatOpenAI._agenerate(
                model, messages, stop, run_manager, **kwargs
            )
        with _lean.sdk_errors():
            reply = await _lean.send(model, payload, _wire.apost)
        return _result(model, reply.body, reply)


def generate_limited(
    model: HolySheepGateway,
    messages: list[BaseMessage],
    stop: list[str] | None,
    limits: Limits,
    /,
    **kwargs: Any,
) -> ChatResult:
    """`generate`, the answer read as a stream under `(first_token, stall)`.

    Calls the lean path cannot make (structured output, your own HTTP
    client) are the model's plain `_generate` calls.
    """
    payload = _payload(
        model, model._bounded_sync, messages, stop, _collect_call(kwargs)
    )
    if payload is None:
        return model._generate(messages, stop, **kwargs)
    with _translated(model.model_name), _lean.sdk_errors():
        return _result(model, *_collect.collect(model, payload, *limits))


async def agenerate_limited(
    model: HolySheepGateway,
    messages: list[BaseMessage],
    stop: list[str] | None,
    limits: Limits,
    /,
    **kwargs: Any,
) -> ChatResult:
    """Async `generate_limited`."""
    payload = _payload(
        model, model._shared_async, messages, stop, _collect_call(kwargs)
    )
    if payload is None:
        return await model._agenerate(messages, stop, **kwargs)
    with _translated(model.model_name), _lean.sdk_errors():
        return _result(model, *await _collect.acollect(model, payload, *limits))


def stream(
    model: HolySheepGateway,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: CallbackManagerForLLMRun | None,
    /,
    **kwargs: Any,
) -> Iterator[ChatGenerationChunk]:
    """One streamed answer: read on the lean path, else by the OpenAI SDK."""
    with _translated(model.model_name):
        payload = _payload(
            model, model._bounded_sync, messages, stop, _stream_call(model, kwargs)
        )
        if payload is None:
            yield from BaseChatOpenAI._stream(
                model, messages, stop, run_manager, **kwargs
            )
            return
        with _lean.sdk_errors():
            yield from _lean_stream(model, payload, run_manager)


async def astream(
    model: HolySheepGateway,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: AsyncCallbackManagerForLLMRun | None,
    /,
    **kwargs: Any,
) -> AsyncIterator[ChatGenerationChunk]:
    """Async `stream`."""
    with _translated(model.model_name):
        payload = _payload(
            model, model._shared_async, messages, stop, _stream_call(model, kwargs)
        )
        if payload is None:
            async for chunk in BaseChatOpenAI._astream(
                model, messages, stop, run_manager, **kwargs
            ):
                yield chunk
            return
        with _lean.sdk_errors():
            async for chunk in _lean_astream(model, payload, run_manager):
                yield chunk


def _lean_stream(
    model: HolySheepGateway,
    payload: dict[str, Any],
    run_manager: CallbackManagerForLLMRun | None,
) -> Iterator[ChatGenerationChunk]:
    events = _lean.send(model, payload, _wire.open_stream)
    reader = _lean.ChunkReader(model, events)
    try:
        for event in events:
            chunk = reader.read(event)
            if chunk is None:
                continue
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
    finally:
        events.close(complete=reader.complete)


async def _lean_astream(
    model: HolySheepGateway,
    payload: dict[str, Any],
    run_manager: AsyncCallbackManagerForLLMRun | None,
) -> AsyncIterator[ChatGenerationChunk]:
    events = await _lean.send(model, payload, _wire.aopen_stream)
    reader = _lean.ChunkReader(model, events)
    try:
        async for event in events:
            chunk = reader.read(event)
            if chunk is None:
                continue
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
    finally:
        await events.aclose(complete=reader.complete)


def _payload(
    model: HolySheepGateway,
    lean: bool,
    messages: list[BaseMessage],
    stop: list[str] | None,
    call: dict[str, Any],
) -> dict[str, Any] | None:
    """The lean path's payload, or `None` when the call needs the SDK.

    `lean`: whether the model's client is the package's shared one (the lean
    path's); a call it can send has no SDK-only feature (`_lean.eligible`).
    """
    if not lean:
        return None
    payload = model._get_request_payload(messages, stop=stop, **call)
    return payload if _lean.eligible(payload) else None


def _collect_call(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs of an answer read as a stream (usage always asked for)."""
    call = dict(kwargs, stream=True)
    call.pop("stream_usage", None)
    call["stream_options"] = {**call.get("stream_options", {}), "include_usage": True}
    return call


def _stream_call(model: HolySheepGateway, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs of a stream (usage asked for as the model's settings say)."""
    call = dict(kwargs, stream=True)
    if model._should_stream_usage(call.pop("stream_usage", None), **call):
        call["stream_options"] = {"include_usage": True}
    return call


def _result(model: HolySheepGateway, body: Any, reply: Any) -> ChatResult:
    """The answer of a lean reply (its body, and the reply for its headers)."""
    return model._create_chat_result(body, _lean.generation_info(model, reply))
