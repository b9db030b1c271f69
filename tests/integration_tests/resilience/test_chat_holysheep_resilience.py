"""`ChatHolySheep` with fallbacks: still a real chat model, failing over inside."""

from __future__ import annotations

import time
from functools import reduce
from operator import add
from typing import Any

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.resilience import (
    AllRoutesFailedError,
    BreakerConfig,
    BreakerRegistry,
    RetryPolicy,
    StreamInterruptedError,
)
from langchain_holysheep.simulator import Fault, GatewaySimulator
from tests.integration_tests.resilience.conftest import Recorder

FAST = RetryPolicy(max_attempts=3, initial=0.01, max_backoff=0.05, jitter=False)


def holysheep(sim: GatewaySimulator, **kw: Any) -> ChatHolySheep:
    kw.setdefault("model", "gpt-4.1")
    kw.setdefault("retry", FAST)
    kw.setdefault("breaker", BreakerRegistry())
    return ChatHolySheep(api_key=sim.api_key, base_url=sim.base_url, **kw)


def meta(msg: Any) -> dict[str, Any]:
    return msg.response_metadata["holysheep"]


def test_invoke_fails_over_and_reports_the_served_model(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.status(503)] * 3)
    model = holysheep(sim, fallbacks=["gemini-2.5-flash", "deepseek-v3.2"])
    with get_usage_metadata_callback() as usage:
        msg = model.invoke("hello")
    assert msg.response_metadata["model_name"] == "gemini-2.5-flash"
    m = meta(msg)
    assert (m["requested_model"], m["served_model"], m["attempts"]) == (
        "gpt-4.1",
        "gemini-2.5-flash",
        4,
    )
    assert list(usage.usage_metadata) == ["gemini-2.5-flash"]  # spend sees the server
    assert model.max_upstream_attempts() == 9
    assert sim.log.count("gpt-4.1") == 3  # SDK retries off: never 3 x 3


def test_sdk_default_retries_never_multiply(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [], then=Fault.status(503))
    model = holysheep(sim, retry=None, max_retries=1, fallbacks=["gemini-2.5-flash"])
    model.invoke("hi")
    assert sim.log.count("gpt-4.1") == 2
    assert model.max_upstream_attempts() == 4


def test_tools_structured_output_and_stream_keep_working(sim: GatewaySimulator) -> None:
    class GetWeather(BaseModel):
        """Get the weather for a city."""

        city: str

    class Answer(BaseModel):
        city: str
        degrees: int

    sim.script("gpt-4.1", [], then=Fault.status(502))
    model = holysheep(sim, fallbacks=["gemini-2.5-flash"])
    msg = model.bind_tools([GetWeather], tool_choice="GetWeather").invoke(
        "use the tool: weather in Hanoi"
    )
    assert msg.tool_calls[0]["name"] == "GetWeather"
    assert meta(msg)["served_model"] == "gemini-2.5-flash"
    out = model.with_structured_output(Answer).invoke("Hanoi, 31 degrees")
    assert isinstance(out, Answer)
    chunks = list(model.stream("hello"))
    assert meta(reduce(add, chunks))["served_model"] == "gemini-2.5-flash"


async def test_async_and_batch(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [], then=Fault.reset())
    model = holysheep(sim, fallbacks=["deepseek-v3.2"])
    msg = await model.ainvoke("hi")
    assert meta(msg)["served_model"] == "deepseek-v3.2"
    chunks = [c async for c in model.astream("hi")]
    assert meta(reduce(add, chunks))["served_model"] == "deepseek-v3.2"
    outs = await model.abatch(["a", "b"])
    assert {meta(o)["served_model"] for o in outs} == {"deepseek-v3.2"}


def test_create_agent_with_failover(sim: GatewaySimulator) -> None:
    agents = pytest.importorskip("langchain.agents")

    @tool
    def get_weather(city: str) -> str:
        """Get the weather for a city."""
        return f"31 degrees in {city}"

    sim.script("gpt-4.1", [], then=Fault.status(503))
    model = holysheep(sim, fallbacks=["gemini-2.5-flash"])
    agent = agents.create_agent(model, tools=[get_weather])
    result = agent.invoke(
        {"messages": [("user", "use the tool get_weather for Hanoi")]}
    )
    ai = [m for m in result["messages"] if m.type == "ai"]
    assert ai and all(meta(m)["served_model"] == "gemini-2.5-flash" for m in ai)
    assert any(m.type == "tool" for m in result["messages"])


def test_per_route_settings_and_silent_primary(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.silent()])
    model = holysheep(
        sim,
        timeout=0.3,
        fallbacks=[
            {"model": "gemini-2.5-flash", "timeout": 5, "retry": {"max_attempts": 1}}
        ],
    )
    t0 = time.monotonic()
    msg = model.invoke("hi")
    assert time.monotonic() - t0 < 2
    assert meta(msg)["failures"][0]["reason"] == "silent timeout"
    assert sim.log.count("gpt-4.1") == 1


def test_stream_limits_and_interruption(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.slow_first_token(3), Fault.stream_cut(after_chunks=3)])
    model = holysheep(sim, fallbacks=["gemini-2.5-flash"], first_token_timeout=0.3)
    msg = reduce(add, list(model.stream("hello")))
    assert meta(msg)["failures"][0]["reason"] == "first-token timeout"
    with pytest.raises(StreamInterruptedError) as info:
        list(model.stream("hello"))
    assert info.value.partial_text


def test_rollback_switch_sends_traffic_to_providers(
    sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = ChatOpenAI(
        base_url=sim.base_url, api_key=sim.api_key, model="deepseek-chat", max_retries=0
    )
    model = holysheep(sim, fallbacks=["gemini-2.5-flash", direct])
    monkeypatch.setenv("HOLYSHEEP_ENABLED", "false")
    m = meta(model.invoke("hi"))
    assert m["served_model"] == "deepseek-chat"
    assert sim.log.count("gpt-4.1") == 0 and sim.log.count("gemini-2.5-flash") == 0
    monkeypatch.setenv("HOLYSHEEP_ENABLED", "true")
    assert meta(model.invoke("hi"))["served_model"] == "gpt-4.1"


def test_preferred_model_per_call(sim: GatewaySimulator) -> None:
    model = holysheep(sim, fallbacks=["gemini-2.5-flash"])
    assert (
        meta(model.invoke("hi", preferred_model="gemini-2.5-flash"))["served_model"]
        == "gemini-2.5-flash"
    )
    assert (
        meta(model.invoke("hi", preferred_model="deepseek-v3.2"))["served_model"]
        == "deepseek-v3.2"
    )


def test_breaker_config_and_callbacks(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [], then=Fault.status(500))
    registry = BreakerRegistry(BreakerConfig(failure_threshold=3, minimum_requests=3))
    model = holysheep(sim, fallbacks=["gemini-2.5-flash"], breaker=registry)
    rec = Recorder()
    model.invoke("one", config={"callbacks": [rec]})
    names = rec.names()
    assert "holysheep_circuit" in names and "holysheep_fallback" in names
    before = sim.log.count("gpt-4.1")
    assert meta(model.invoke("two"))["failures"][0]["reason"] == "circuit open"
    assert sim.log.count("gpt-4.1") == before


def test_all_routes_failed_and_single_route_errors(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [], then=Fault.status(503))
    sim.script("gemini-2.5-flash", [], then=Fault.status(503))
    with pytest.raises(AllRoutesFailedError):
        holysheep(sim, fallbacks=["gemini-2.5-flash"]).invoke("hi")
    import openai

    with pytest.raises(openai.InternalServerError):  # no fallbacks: the error itself
        holysheep(sim).invoke("hi")


def test_bad_settings_fail_at_construction(sim: GatewaySimulator) -> None:
    from langchain_holysheep.errors import UnknownModelError

    with pytest.raises(ConfigurationError, match="timout"):
        holysheep(sim, fallbacks=[{"model": "gemini-2.5-flash", "timout": 3}])
    with pytest.raises(ConfigurationError):
        holysheep(sim, fallbacks=[42])
    with pytest.raises(UnknownModelError, match=r"gemini-2\.5-flash"):
        holysheep(sim, fallbacks=["gemini-2.5-flsh"])
    with pytest.raises(ConfigurationError, match="deadline"):
        holysheep(sim, deadline=0)
    with pytest.raises(ConfigurationError, match="breaker"):
        holysheep(sim, breaker="yes")


def test_concurrent_batch_with_a_failing_primary(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [], then=Fault.status(503))
    registry = BreakerRegistry(BreakerConfig(failure_threshold=5, minimum_requests=5))
    model = holysheep(sim, fallbacks=["gemini-2.5-flash"], breaker=registry)
    outs = model.batch([f"q{i}" for i in range(24)], config={"max_concurrency": 8})
    assert {meta(o)["served_model"] for o in outs} == {"gemini-2.5-flash"}
    assert registry.get((sim.base_url, "gpt-4.1")).snapshot().trips >= 1
    # the open breaker stopped the bleeding: far fewer than 24 x 3 attempts
    assert sim.log.count("gpt-4.1") < 40


async def test_concurrent_astreams(sim: GatewaySimulator) -> None:
    import asyncio

    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=0)] * 4)
    model = holysheep(sim, fallbacks=["gemini-2.5-flash"], stall_timeout=2.0)

    async def one(i: int) -> str:
        chunks = [c async for c in model.astream(f"hello {i}")]
        return meta(reduce(add, chunks))["served_model"]

    served = await asyncio.gather(*(one(i) for i in range(16)))
    assert set(served) <= {"gpt-4.1", "gemini-2.5-flash"}
    assert len(served) == 16


@pytest.mark.parametrize("use_async", [False, True])
async def test_streaming_invoke_never_returns_a_truncated_answer(
    sim: GatewaySimulator, use_async: bool
) -> None:
    expected = holysheep(sim, model="gemini-2.5-flash").invoke("hello there").content
    model = holysheep(sim, fallbacks=["gemini-2.5-flash"], streaming=True)
    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=4)])
    msg = (
        await model.ainvoke("hello there") if use_async else model.invoke("hello there")
    )
    assert meta(msg)["served_model"] == "gemini-2.5-flash"
    assert meta(msg)["failures"][0]["reason"] == "stream cut"
    assert msg.content == expected
