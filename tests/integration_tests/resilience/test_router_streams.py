"""stream / astream (live) and invoke-by-stream (buffered) failover."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import reduce
from operator import add
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from pydantic import BaseModel

from langchain_holysheep.resilience import StreamInterruptedError
from langchain_holysheep.simulator import Fault, GatewaySimulator
from tests.integration_tests.resilience.routed import RoutedChat

MakeChat = Callable[..., RoutedChat]


def joined(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return reduce(add, chunks)


def meta(msg: Any) -> dict[str, Any]:
    return msg.response_metadata["holysheep"]


def reference_text(chat: RoutedChat, prompt: str) -> str:
    return str(chat.invoke(prompt).content)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(503),
        Fault.stream_cut(after_chunks=0),
        Fault.malformed_chunk(after_chunks=0),
        Fault.reset(),
    ],
    ids=["503", "cut", "malformed", "reset"],
)
def test_failover_before_first_content_is_invisible(
    sim: GatewaySimulator, make_chat: MakeChat, fault: Fault
) -> None:
    sim.script("gpt-4.1", [fault] * 3)
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")
    chunks = list(chat.stream("hello"))
    msg = joined(chunks)
    assert "gemini-2.5-flash" in str(msg.content)
    assert msg.response_metadata["model_name"] == "gemini-2.5-flash"
    assert meta(msg)["served_model"] == "gemini-2.5-flash"
    assert msg.usage_metadata and msg.usage_metadata["output_tokens"] > 0
    assert (
        chunks[-1].response_metadata["holysheep"]["served_model"] == "gemini-2.5-flash"
    )


def test_first_token_timeout_falls_over_without_retry(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.slow_first_token(3)])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", first_token_timeout=0.3)
    t0 = time.monotonic()
    msg = joined(list(chat.stream("hello")))
    assert time.monotonic() - t0 < 1.5
    m = meta(msg)
    assert m["served_model"] == "gemini-2.5-flash"
    assert m["failures"][0]["reason"] == "first-token timeout"
    assert sim.log.count("gpt-4.1") == 1


def test_cut_after_content_raises_with_partial_text(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=3)])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")  # gemini: no prefill
    got: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in chat.stream("hello"):
            got.append(str(chunk.content))
    err = info.value
    assert err.partial_text and err.partial_text == "".join(got)
    assert err.model == "gpt-4.1"
    assert sim.log.count("gemini-2.5-flash") == 0


def test_cut_after_content_continues_on_prefill_route(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=3)])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", "claude-sonnet-4.5")
    chunks = list(chat.stream("hello"))
    msg = joined(chunks)
    m = meta(msg)
    assert m["served_model"] == "claude-sonnet-4.5"
    assert m["continued_from"] == ["gpt-4.1"]
    assert "cannot continue" in m["failures"][1]["reason"]
    assert sim.log.count("gemini-2.5-flash") == 0
    # the continuation was appended to what had been delivered
    assert str(msg.content).startswith("".join(str(c.content) for c in chunks[:3]))


def test_stall_after_content_is_detected(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.stream_stall(after_chunks=2)])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", stall_timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(StreamInterruptedError) as info:
        list(chat.stream("hello"))
    assert time.monotonic() - t0 < 1.5
    assert "stall" in str(info.value.cause)


def test_tool_call_streams_are_never_continued(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    class GetWeather(BaseModel):
        """Get the weather."""

        city: str

    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=2)])
    chat = make_chat("gpt-4.1", "claude-sonnet-4.5").bind_tools(
        [GetWeather], tool_choice="GetWeather"
    )
    with pytest.raises(StreamInterruptedError):
        list(chat.stream("use the tool: weather in Hanoi"))


def test_invoke_restarts_instead_of_truncating(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    chat = make_chat(
        "gpt-4.1", "gemini-2.5-flash", stall_timeout=2.0, stream_internally=True
    )
    expected = reference_text(make_chat("gemini-2.5-flash"), "hello there")
    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=4)])
    msg = chat.invoke("hello there")
    assert msg.content == expected
    m = meta(msg)
    assert m["served_model"] == "gemini-2.5-flash"
    assert m["failures"][0]["reason"] == "stream cut"


def test_streaming_model_invoke_is_buffered(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", stream_internally=True)
    sim.script("gpt-4.1", [Fault.malformed_chunk(after_chunks=3)])
    msg = chat.invoke("hello")
    assert meta(msg)["served_model"] == "gemini-2.5-flash"
    assert "gpt-4.1" not in str(msg.content)


@pytest.mark.parametrize("hang", [True, False])
def test_stream_without_done_is_finalised_with_usage(
    sim: GatewaySimulator, make_chat: MakeChat, hang: bool
) -> None:
    sim.script("gpt-4.1", [Fault.no_done(hang=hang)])
    chat = make_chat("gpt-4.1")
    t0 = time.monotonic()
    msg = joined(list(chat.stream("hello")))
    assert time.monotonic() - t0 < 1.0
    assert msg.usage_metadata and msg.usage_metadata["total_tokens"] > 0
    assert meta(msg)["served_model"] == "gpt-4.1"


def test_stream_without_done_or_usage_finalised_after_tail(
    sim: GatewaySimulator, openai_model: Callable[..., Any], make_chat: MakeChat
) -> None:
    from langchain_holysheep.resilience._routes import Route

    sim.script("gpt-4.1", [Fault.no_done(hang=True)])
    route = Route.of(openai_model("gpt-4.1"), is_gateway=True)
    chat = make_chat(route, stall_timeout=5.0, tail_timeout=0.2)
    t0 = time.monotonic()
    msg = joined(list(chat.stream("hello", stream_usage=False)))
    assert time.monotonic() - t0 < 1.5
    assert msg.content


def test_consumer_stops_early_releases_the_route(
    sim: GatewaySimulator, make_chat: MakeChat, breakers: Any
) -> None:
    chat = make_chat("gpt-4.1", stall_timeout=2.0)
    for chunk in chat.stream("hello"):
        if chunk.content:
            break
    snap = breakers.get((sim.base_url, "gpt-4.1")).snapshot()
    assert not snap.probe_in_flight


# -- async -----------------------------------------------------------------------------
async def test_astream_failover_before_content(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.status(503), Fault.slow_first_token(3)])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", first_token_timeout=0.3)
    chunks = [c async for c in chat.astream("hello")]
    msg = joined(chunks)
    m = meta(msg)
    assert m["served_model"] == "gemini-2.5-flash"
    assert [f["reason"] for f in m["failures"]] == [
        "server error",
        "first-token timeout",
    ]
    assert msg.usage_metadata


async def test_astream_interrupted_and_continued(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=2)] * 2)
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")
    with pytest.raises(StreamInterruptedError) as info:
        async for _ in chat.astream("hello"):
            pass
    assert info.value.partial_text
    chat2 = make_chat("gpt-4.1", "deepseek-v3.2")
    msg = joined([c async for c in chat2.astream("hello")])
    assert meta(msg)["continued_from"] == ["gpt-4.1"]


async def test_astream_stall_and_no_done(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script(
        "gpt-4.1", [Fault.stream_stall(after_chunks=0), Fault.no_done(hang=True)]
    )
    chat = make_chat(
        "gpt-4.1", "gemini-2.5-flash", stall_timeout=0.3, first_token_timeout=0.3
    )
    t0 = time.monotonic()
    msg = joined([c async for c in chat.astream("hello")])
    assert meta(msg)["served_model"] == "gemini-2.5-flash"
    msg = joined([c async for c in chat.astream("hello")])  # no [DONE], hangs
    assert msg.usage_metadata
    assert time.monotonic() - t0 < 2.0


async def test_ainvoke_buffered_restart(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    chat = make_chat(
        "gpt-4.1", "gemini-2.5-flash", stall_timeout=2.0, stream_internally=True
    )
    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=4)])
    msg = await chat.ainvoke("hello there")
    assert meta(msg)["served_model"] == "gemini-2.5-flash"
    assert msg.content == reference_text(make_chat("gemini-2.5-flash"), "hello there")
