"""invoke / ainvoke failover through the router, against the simulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_holysheep.catalogue import Capabilities
from langchain_holysheep.resilience import (
    AllRoutesFailedError,
    Deadline,
    RetryPolicy,
)
from langchain_holysheep.resilience._routes import Route
from langchain_holysheep.simulator import Fault, GatewaySimulator
from tests.integration_tests.resilience.routed import RoutedChat

MakeChat = Callable[..., RoutedChat]


def meta(msg: Any) -> dict[str, Any]:
    return msg.response_metadata["holysheep"]


def test_retries_503_then_falls_over(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.status(503)] * 3)
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")
    msg = chat.invoke("hello")
    m = meta(msg)
    assert msg.response_metadata["model_name"] == "gemini-2.5-flash"
    assert (m["requested_model"], m["served_model"], m["route_index"]) == (
        "gpt-4.1",
        "gemini-2.5-flash",
        1,
    )
    assert (m["attempts"], m["retries"], m["fallbacks"]) == (4, 2, 1)
    assert [f["action"] for f in m["failures"]] == ["retry", "retry", "fallback"]
    assert all(f["status"] == 503 for f in m["failures"])
    assert sim.log.count("gpt-4.1") == 3 and sim.log.count("gemini-2.5-flash") == 1
    assert msg.usage_metadata and msg.usage_metadata["total_tokens"] > 0


def test_retry_then_success_on_same_route(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.status(502), Fault.reset()])
    msg = make_chat("gpt-4.1", "gemini-2.5-flash").invoke("hi")
    m = meta(msg)
    assert m["served_model"] == "gpt-4.1"
    assert m["retries"] == 2 and m["fallbacks"] == 0
    assert sim.log.count("gemini-2.5-flash") == 0


def test_retry_after_is_honoured(sim: GatewaySimulator, make_chat: MakeChat) -> None:
    sim.script("gpt-4.1", [Fault.status(429, retry_after_ms=300)])
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        time.sleep(s)

    msg = make_chat("gpt-4.1", sleep=sleep).invoke("hi")
    assert meta(msg)["retries"] == 1
    assert slept == [pytest.approx(0.3)]


def test_retry_after_beyond_cap_falls_over(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.status(429, retry_after=120)])
    chat = make_chat("gpt-4.1", "deepseek-v3.2")
    t0 = time.monotonic()
    msg = chat.invoke("hi")
    assert time.monotonic() - t0 < 2
    m = meta(msg)
    assert m["served_model"] == "deepseek-v3.2"
    assert "exceeds max_retry_after" in m["failures"][0]["reason"]


def test_silent_route_is_not_retried(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.silent()])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", timeout=0.4)
    t0 = time.monotonic()
    msg = chat.invoke("hi")
    assert time.monotonic() - t0 < 2.0
    m = meta(msg)
    assert m["served_model"] == "gemini-2.5-flash"
    assert m["failures"][0]["reason"] == "silent timeout"
    assert m["retries"] == 0
    assert sim.log.count("gpt-4.1") == 1


def test_model_not_found_falls_over_at_once(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.model_not_found()])
    msg = make_chat("gpt-4.1", "gemini-2.5-flash").invoke("hi")
    m = meta(msg)
    assert m["failures"][0]["status"] == 404 and m["attempts"] == 2


def test_gateway_auth_error_stops(
    sim: GatewaySimulator, openai_model: Callable[..., ChatOpenAI], make_chat: MakeChat
) -> None:
    bad = Route.of(openai_model("gpt-4.1", api_key="hs-wrong"), is_gateway=True)
    chat = make_chat(bad, "gemini-2.5-flash")
    with pytest.raises(openai.AuthenticationError):
        chat.invoke("hi")
    assert sim.log.count("gemini-2.5-flash") == 0


def test_invalid_request_and_content_policy_stop(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script(
        "gpt-4.1", [Fault.content_policy("Flagged: violence."), Fault.status(400)]
    )
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")
    with pytest.raises(openai.BadRequestError) as info:
        chat.invoke("hi")
    assert "Flagged: violence." in str(info.value)
    with pytest.raises(openai.BadRequestError):
        chat.invoke("hi")
    assert sim.log.count("gemini-2.5-flash") == 0


def test_context_overflow_prefers_a_larger_window(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.context_length_exceeded()])
    chat = make_chat("gpt-4.1", "moonshot-v1-8k", "gemini-2.5-flash")
    m = meta(chat.invoke("a long prompt"))
    assert m["served_model"] == "gemini-2.5-flash"
    assert m["failures"][0]["reason"] == "context length exceeded"
    assert "not larger" in m["failures"][1]["reason"]
    assert sim.log.count("moonshot-v1-8k") == 0


def test_estimated_context_skips_small_windows(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    chat = make_chat("moonshot-v1-8k", "gemini-2.5-flash")
    m = meta(chat.invoke("word " * 40_000))
    assert m["served_model"] == "gemini-2.5-flash"
    assert "context window 8192" in m["failures"][0]["reason"]
    assert sim.log.count("moonshot-v1-8k") == 0


def test_capabilities_tools_and_vision(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    class GetWeather(BaseModel):
        """Get the weather."""

        city: str

    no_tools = {"capabilities": Capabilities(tools=False)}  # a route without tools
    chat = make_chat(
        "deepseek-reasoner", "gpt-4.1", route_settings={"deepseek-reasoner": no_tools}
    )
    msg = chat.bind_tools([GetWeather], tool_choice="GetWeather").invoke(
        "use the tool: weather in Hanoi"
    )
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "GetWeather"
    assert meta(msg)["served_model"] == "gpt-4.1"
    image = HumanMessage(
        content=[
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]
    )
    msg = make_chat("deepseek-v3.2", "gemini-2.5-flash").invoke([image])
    assert meta(msg)["failures"][0]["reason"] == "no image input"


def test_structured_output_with_failover(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    class Joke(BaseModel):
        setup: str
        punchline: str

    sim.script("gpt-4.1", [Fault.status(500)] * 3)
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")
    for method in ("function_calling", "json_mode"):
        out = chat.with_structured_output(Joke, method=method).invoke(  # type: ignore[arg-type]
            "Tell me a joke about cats, as JSON with setup and punchline"
        )
        assert isinstance(out, Joke)


def test_all_routes_failed(sim: GatewaySimulator, make_chat: MakeChat) -> None:
    sim.script("gpt-4.1", [Fault.status(503)] * 3)
    sim.script("gemini-2.5-flash", [Fault.model_not_found()])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")
    with pytest.raises(AllRoutesFailedError) as info:
        chat.invoke("hi")
    err = info.value
    text = str(err)
    assert "[0] gpt-4.1" in text and "[1] gemini-2.5-flash" in text
    assert len(err.failures) == 4
    assert isinstance(err.__cause__, openai.NotFoundError)


def test_deadline_bounds_the_whole_call(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.latency(5)])
    sim.script("gemini-2.5-flash", [Fault.latency(5)])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", deadline=0.6)
    t0 = time.monotonic()
    with pytest.raises(AllRoutesFailedError) as info:
        chat.invoke("hi")
    assert time.monotonic() - t0 < 1.5
    assert "deadline" in str(info.value)


def test_sdk_retries_are_turned_off(
    sim: GatewaySimulator, openai_model: Callable[..., ChatOpenAI], make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.status(503)] * 9)
    noisy = Route.of(openai_model("gpt-4.1", max_retries=2), is_gateway=True)
    chat = make_chat(
        noisy, "gemini-2.5-flash", retry=RetryPolicy(max_attempts=2, initial=0.01)
    )
    chat.invoke("hi")
    assert sim.log.count("gpt-4.1") == 2  # ours only, never 2 x 3
    assert chat.router.max_upstream_attempts() == 4


def test_preferred_model_goes_first(sim: GatewaySimulator, make_chat: MakeChat) -> None:
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", "deepseek-v3.2")
    msg = chat.invoke("hi", preferred_model="deepseek-v3.2")
    assert meta(msg)["served_model"] == "deepseek-v3.2"
    assert meta(msg)["requested_model"] == "deepseek-v3.2"
    assert sim.log.count("gpt-4.1") == 0


def test_gateway_disabled_uses_non_gateway_routes(
    sim: GatewaySimulator, openai_model: Callable[..., ChatOpenAI], make_chat: MakeChat
) -> None:
    local = Route.of(openai_model("deepseek-v3.2"), is_gateway=False, name="local-vllm")
    chat = make_chat("gpt-4.1", local, gateway_enabled=False)
    m = meta(chat.invoke("hi"))
    assert m["served_model"] == "local-vllm"
    assert "HOLYSHEEP_ENABLED=false" in m["failures"][0]["reason"]
    assert sim.log.count("gpt-4.1") == 0


async def test_ainvoke_failover(sim: GatewaySimulator, make_chat: MakeChat) -> None:
    sim.script("gpt-4.1", [Fault.status(503), Fault.silent()])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", timeout=0.4)
    msg = await chat.ainvoke("hi")
    m = meta(msg)
    assert m["served_model"] == "gemini-2.5-flash"
    assert [f["reason"] for f in m["failures"]] == ["server error", "silent timeout"]


async def test_abatch_and_batch(sim: GatewaySimulator, make_chat: MakeChat) -> None:
    sim.script("gpt-4.1", [Fault.status(503)] * 3)
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")
    outs = await chat.abatch(["a", "b", "c"])
    assert all(meta(o)["served_model"] for o in outs)
    outs = chat.batch(["d", "e"])
    assert len(outs) == 2


async def test_async_generic_timeout_for_non_openai_models(make_chat: MakeChat) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    class Slow(FakeListChatModel):
        async def _agenerate(self, *a: Any, **k: Any) -> Any:
            import asyncio

            await asyncio.sleep(5)

    slow = Route(Slow(responses=["x"]), name="slow", timeout=0.2)
    fast = Route(FakeListChatModel(responses=["fast answer"]), name="fast")
    chat = make_chat(slow, fast)
    t0 = time.monotonic()
    msg = await chat.ainvoke("hi")
    assert msg.content == "fast answer"
    assert time.monotonic() - t0 < 1.0
    assert meta(msg)["failures"][0]["reason"] == "attempt timeout"


def test_deadline_helper_used_by_router() -> None:
    assert Deadline(1.0).remaining() <= 1.0
