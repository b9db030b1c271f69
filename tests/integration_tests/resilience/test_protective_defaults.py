"""Defaults that protect: non-streaming calls read under first-token and stall limits.

With the default settings a gateway route reads a non-streaming answer as a
stream, so a silent or stalled upstream is left within the limits while a long
answer that keeps progressing is never cut. The answer is the same one a plain
request returns (content, tool calls, usage, finish reason), a stream cut
before its finish reason is never returned as complete, and the attempt's own
`timeout` stays a wall-clock bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.tools import tool

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._model_routes import (
    DEFAULT_FIRST_TOKEN_TIMEOUT,
    DEFAULT_STALL_TIMEOUT,
    REASONING_FIRST_TOKEN_TIMEOUT,
)
from langchain_holysheep.simulator import Fault, GatewaySimulator


@tool
def get_weather(city: str) -> str:
    """The weather of a city."""
    return "sunny"


def _model(sim: GatewaySimulator, **kwargs: Any) -> ChatHolySheep:
    kwargs.setdefault("max_retries", 0)
    return ChatHolySheep(
        model="gpt-4.1", base_url=sim.base_url, api_key=sim.api_key, **kwargs
    )


def _invoke(model: Any, mode: str, prompt: str = "hi") -> Any:
    if mode == "sync":
        return model.invoke(prompt)
    return asyncio.run(model.ainvoke(prompt))


def test_the_defaults_bound_first_token_and_stall() -> None:
    model = ChatHolySheep(model="gpt-4.1", api_key="sk-test")
    router = model.router()
    assert router.limits(router.routes[0])[1:] == (
        DEFAULT_FIRST_TOKEN_TIMEOUT,
        DEFAULT_STALL_TIMEOUT,
    )
    assert DEFAULT_FIRST_TOKEN_TIMEOUT == DEFAULT_STALL_TIMEOUT == 30.0


def test_reasoning_models_get_a_longer_first_token_limit_unless_set() -> None:
    model = ChatHolySheep(
        model="deepseek-reasoner", api_key="sk-test", fallbacks=["gpt-4.1"]
    )
    router = model.router()
    assert router.limits(router.routes[0])[1] == REASONING_FIRST_TOKEN_TIMEOUT
    assert router.limits(router.routes[1])[1] == DEFAULT_FIRST_TOKEN_TIMEOUT
    own = ChatHolySheep(
        model="deepseek-reasoner", api_key="sk-test", first_token_timeout=5
    ).router()
    assert own.limits(own.routes[0])[1] == 5


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_invoke_reads_a_stream_and_answers_as_a_plain_request(
    sim: GatewaySimulator, mode: str
) -> None:
    limited = _invoke(_model(sim), mode)
    plain = _invoke(_model(sim, first_token_timeout=None, stall_timeout=None), mode)
    first, second = sim.log.records("gpt-4.1")
    assert first.stream and not second.stream  # limits read a stream
    assert limited.content == plain.content
    assert limited.usage_metadata == plain.usage_metadata
    assert limited.response_metadata["finish_reason"] == "stop"
    assert first.billed and second.billed


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_tool_calls_come_whole(sim: GatewaySimulator, mode: str) -> None:
    prompt = "What is the weather in Paris? Use the tool."
    limited = _invoke(_model(sim).bind_tools([get_weather]), mode, prompt)
    plain = _invoke(
        _model(sim, first_token_timeout=None, stall_timeout=None).bind_tools(
            [get_weather]
        ),
        mode,
        prompt,
    )
    assert limited.tool_calls and len(limited.tool_calls) == len(plain.tool_calls)
    for got, want in zip(limited.tool_calls, plain.tool_calls, strict=True):
        assert (got["name"], got["args"]) == (want["name"], want["args"])
    assert limited.response_metadata["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.silent(), "FirstTokenTimeoutError"),
        (Fault.slow_first_token(30), "FirstTokenTimeoutError"),
        (Fault.stream_stall(after_chunks=3), "StreamStallError"),
        (Fault.empty_chunks(after_chunks=2, seconds=30), "StreamStallError"),
    ],
)
def test_a_silent_or_stalled_upstream_is_left_within_the_limits(
    sim: GatewaySimulator, mode: str, fault: Fault, error: str
) -> None:
    model = _model(
        sim, first_token_timeout=0.5, stall_timeout=0.5, fallbacks=["deepseek-v3.2"]
    )
    sim.script("gpt-4.1", [fault])
    reply = _invoke(model, mode)
    meta = reply.response_metadata["holysheep"]
    assert meta["served_model"] == "deepseek-v3.2"
    assert meta["failures"][0]["error"].startswith(error)
    assert reply.content and reply.response_metadata["finish_reason"] == "stop"
    # the abandoned request was closed: the simulator saw the client leave
    left = sim.log.wait_for(1, timeout=5, model="gpt-4.1", finished=True)[0]
    assert left.status in {"silent", "stall", "disconnected"}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    "fault", [Fault.stream_cut(after_chunks=3), Fault.malformed_chunk(after_chunks=2)]
)
def test_a_broken_stream_is_never_an_answer(
    sim: GatewaySimulator, mode: str, fault: Fault
) -> None:
    model = _model(sim, fallbacks=["deepseek-v3.2"])
    sim.script("gpt-4.1", [fault])
    reply = _invoke(model, mode)
    meta = reply.response_metadata["holysheep"]
    assert meta["served_model"] == "deepseek-v3.2" and meta["attempts"] == 2
    assert reply.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_long_progressing_answer_is_not_cut(sim: GatewaySimulator, mode: str) -> None:
    # One byte per millisecond: a chunk every ~0.3 s, well within the limits,
    # while the whole answer takes longer than either limit.
    model = _model(sim, first_token_timeout=2, stall_timeout=1.5, max_tokens=6)
    sim.script("gpt-4.1", [Fault.slow_drip(interval=0.001)])
    reply = _invoke(model, mode)
    assert reply.response_metadata["holysheep"]["attempts"] == 1
    record = sim.log.wait_for(1, timeout=5, model="gpt-4.1", finished=True)[0]
    assert record.duration is not None and record.duration > 1.5


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_attempt_timeout_stays_wall_clock(sim: GatewaySimulator, mode: str) -> None:
    # The answer progresses (no stall), but takes longer than the timeout.
    model = _model(
        sim,
        timeout=1.0,
        first_token_timeout=5,
        stall_timeout=5,
        max_tokens=6,
        fallbacks=["deepseek-v3.2"],
    )
    sim.script("gpt-4.1", [Fault.slow_drip(interval=0.002)])
    reply = _invoke(model, mode)
    failure = reply.response_metadata["holysheep"]["failures"][0]
    assert failure["error"].startswith(("AttemptTimeoutError", "DeadlineExceeded"))
    assert failure["elapsed_ms"] < 4000


def test_structured_output_is_a_plain_request(sim: GatewaySimulator) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    model = _model(sim).with_structured_output(Answer, method="json_schema")
    model.invoke("hi")
    assert [r.stream for r in sim.log.records("gpt-4.1")] == [False]


def test_an_outer_cancellation_is_not_taken_for_a_limit(sim: GatewaySimulator) -> None:
    # The caller's own timeout passes long before the first-token limit: the
    # caller's cancellation wins, and no fallback is tried behind its back.
    model = _model(sim, first_token_timeout=5, fallbacks=["deepseek-v3.2"])
    sim.script("gpt-4.1", [Fault.silent()])

    async def call() -> None:
        await asyncio.wait_for(model.ainvoke("hi"), 0.3)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(call())
    assert sim.log.count("deepseek-v3.2") == 0


@pytest.mark.parametrize("first_token", [0.3, None])
def test_a_limit_fires_under_a_caller_timeout_that_is_longer(
    sim: GatewaySimulator, first_token: float | None
) -> None:
    # The first-token limit (0.3 s) passes inside the caller's 10 s timeout:
    # the limit is what fires, and the fallback answers.
    model = _model(sim, first_token_timeout=first_token, fallbacks=["deepseek-v3.2"])
    sim.script("gpt-4.1", [Fault.slow_first_token(3)])

    async def call() -> Any:
        return await asyncio.wait_for(model.ainvoke("hi"), 10)

    reply = asyncio.run(call())
    served = reply.response_metadata["holysheep"]["served_model"]
    assert served == ("deepseek-v3.2" if first_token else "gpt-4.1")
