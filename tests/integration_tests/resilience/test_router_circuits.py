"""Circuit breakers, gateway outages, rate limits and callbacks through the router."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from langchain_openai import ChatOpenAI

from langchain_holysheep.resilience import (
    BreakerConfig,
    BreakerRegistry,
    BreakerState,
    RateLimit,
    RateLimiterRegistry,
    gateway_key,
)
from langchain_holysheep.resilience._routes import Route
from langchain_holysheep.simulator import Fault, GatewaySimulator
from tests.integration_tests.resilience.conftest import Recorder
from tests.integration_tests.resilience.routed import RoutedChat

MakeChat = Callable[..., RoutedChat]


def meta(msg: Any) -> dict[str, Any]:
    return msg.response_metadata["holysheep"]


class Clock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def test_open_circuit_is_skipped_without_a_request(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    clock = Clock()
    reg = BreakerRegistry(
        BreakerConfig(failure_threshold=2, minimum_requests=2, cooldown=60), clock=clock
    )
    sim.script("gpt-4.1", [Fault.status(503)] * 2, then=Fault.status(503))
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", breakers=reg)
    chat.invoke("one")  # 2 failures on gpt-4.1 (the 2nd opens it), then gemini
    key = (sim.base_url, "gpt-4.1")
    assert reg.get(key).state is BreakerState.OPEN
    before = sim.log.count("gpt-4.1")
    t0 = time.perf_counter()
    msg = chat.invoke("two")
    assert sim.log.count("gpt-4.1") == before  # skipped: no request
    assert meta(msg)["failures"][0]["reason"] == "circuit open"
    assert time.perf_counter() - t0 < 0.5
    # cooldown over: exactly one probe; it succeeds and closes the breaker
    sim.script("gpt-4.1", [Fault.ok()])
    clock.now += 61
    msg = chat.invoke("three")
    assert meta(msg)["served_model"] == "gpt-4.1"
    assert reg.get(key).state is BreakerState.CLOSED
    reg.get(key).force_open()
    reg.reset_all()
    assert meta(chat.invoke("four"))["served_model"] == "gpt-4.1"


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_gateway_outage_trips_one_breaker_and_goes_to_non_gateway(
    sim: GatewaySimulator,
    openai_model: Callable[..., ChatOpenAI],
    make_chat: MakeChat,
    recorder: Recorder,
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}/v1"
    reg = BreakerRegistry()
    gw_routes = [
        Route.of(openai_model(m, base_url=dead), is_gateway=True)
        for m in ("gpt-4.1", "gemini-2.5-flash", "deepseek-v3.2", "moonshot-v1-8k")
    ]
    local = Route.of(openai_model("deepseek-v3.2"), is_gateway=False, name="local")
    chat = make_chat(*gw_routes, local, breakers=reg)
    msg = chat.invoke("hi", config={"callbacks": [recorder]})
    m = meta(msg)
    assert m["served_model"] == "local"
    assert reg.gateway(dead).state is BreakerState.OPEN
    # gpt-4.1 burnt its 3 attempts (refused), the others were skipped at once
    reasons = [f["reason"] for f in m["failures"]]
    assert reasons.count("circuit open") == 3
    assert m["attempts"] == 4
    circuit = [d for n, d in recorder.events if n == "holysheep_circuit"]
    assert any(d["model"] == "*" and d["new"] == "open" for d in circuit)
    # the next call goes straight to the local route
    t0 = time.perf_counter()
    m = meta(chat.invoke("again"))
    assert m["attempts"] == 1 and m["served_model"] == "local"
    assert time.perf_counter() - t0 < 0.5
    assert gateway_key(dead) in reg.snapshot()


def test_http_errors_never_skip_an_untried_healthy_model(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    """503s are answers about two models: the third model of the gateway serves."""
    for m in ("gpt-4.1", "gemini-2.5-flash"):
        sim.script(m, [], then=Fault.status(503))
    reg = BreakerRegistry()
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", "deepseek-v3.2", breakers=reg)
    for _ in range(4):  # enough to open both failing models' breakers
        assert meta(chat.invoke("hi"))["served_model"] == "deepseek-v3.2"
    assert reg.get((sim.base_url, "gpt-4.1")).state is BreakerState.OPEN
    assert reg.get((sim.base_url, "gemini-2.5-flash")).state is BreakerState.OPEN
    assert reg.gateway(sim.base_url).state is BreakerState.CLOSED
    assert sim.log.count("deepseek-v3.2") == 4


def test_rate_limit_queues_within_deadline_and_falls_over_beyond(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    limits = RateLimiterRegistry()
    limits.configure(
        (sim.base_url, "gpt-4.1"), RateLimit(requests_per_minute=60, burst_requests=1)
    )
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", rate_limits=limits, deadline=5)
    t0 = time.monotonic()
    assert meta(chat.invoke("a"))["served_model"] == "gpt-4.1"
    assert meta(chat.invoke("b"))["served_model"] == "gpt-4.1"  # waited ~1 s
    assert 0.8 < time.monotonic() - t0 < 2.5
    assert sim.log.count("gpt-4.1") == 2
    tight = make_chat("gpt-4.1", "gemini-2.5-flash", rate_limits=limits, deadline=0.3)
    m = meta(tight.invoke("c"))
    assert m["served_model"] == "gemini-2.5-flash"
    assert m["failures"][0]["reason"] == "rate-limit wait beyond the deadline"


def test_retry_after_penalises_the_key(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    limits = RateLimiterRegistry()
    sim.script("gpt-4.1", [Fault.status(429, retry_after=20)])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash", rate_limits=limits, deadline=3)
    chat.invoke("a")  # Retry-After 20 s > cap? no: 20 <= 30 but > deadline: fall over
    limiter = limits.get((sim.base_url, "gpt-4.1"))
    assert limiter is not None and limiter.snapshot().blocked_for_s > 15
    m = meta(chat.invoke("b"))  # gpt-4.1 is not even tried
    assert m["served_model"] == "gemini-2.5-flash"
    assert sim.log.count("gpt-4.1") == 1


def test_callbacks_see_attempts_retries_fallbacks(
    sim: GatewaySimulator, make_chat: MakeChat, recorder: Recorder
) -> None:
    sim.script("gpt-4.1", [Fault.status(503)] * 3)
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")
    chat.invoke("hi", config={"callbacks": [recorder]})
    assert len(recorder.retries) == 2
    names = recorder.names()
    assert names.count("holysheep_attempt") == 4
    assert names.count("holysheep_fallback") == 1
    attempt = dict(recorder.events)["holysheep_attempt"]
    assert set(attempt) >= {"model", "attempt", "error", "action", "elapsed_ms"}
    fallback = next(d for n, d in recorder.events if n == "holysheep_fallback")
    assert (
        fallback["model"] == "gpt-4.1" and fallback["next_model"] == "gemini-2.5-flash"
    )
    assert recorder.run_ids == set(recorder.starts)  # all on the LLM run


@pytest.mark.parametrize("mode", ["stream", "astream", "ainvoke"])
async def test_callbacks_in_every_entry_point(
    sim: GatewaySimulator, make_chat: MakeChat, recorder: Recorder, mode: str
) -> None:
    sim.script("gpt-4.1", [Fault.status(503)] * 3)
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")
    cfg: Any = {"callbacks": [recorder]}
    if mode == "stream":
        list(chat.stream("hi", config=cfg))
    elif mode == "astream":
        [c async for c in chat.astream("hi", config=cfg)]
    else:
        await chat.ainvoke("hi", config=cfg)
    assert len(recorder.retries) == 2
    assert recorder.names().count("holysheep_fallback") == 1
    assert recorder.run_ids == set(recorder.starts)


async def test_astream_events_carries_custom_events(
    sim: GatewaySimulator, make_chat: MakeChat
) -> None:
    sim.script("gpt-4.1", [Fault.model_not_found()])
    chat = make_chat("gpt-4.1", "gemini-2.5-flash")
    names = [
        e["name"]
        async for e in chat.astream_events("hi", version="v2")
        if e["event"] == "on_custom_event"
    ]
    assert "holysheep_attempt" in names and "holysheep_fallback" in names
