"""Router logic with in-process fake models (no sockets)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.exceptions import ModelAPIError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import Field

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.resilience import (
    AllRoutesFailedError,
    BreakerRegistry,
    RateLimiterRegistry,
    RetryPolicy,
    Router,
)
from langchain_holysheep.resilience._routes import (
    Requirements,
    Route,
    estimate_tokens,
    sdk_retries,
    without_sdk_retries,
)
from tests.unit_tests.resilience.fakes import FakeClock

MSGS: list[BaseMessage] = [HumanMessage("hello")]


class Scripted(BaseChatModel):
    """Raises the scripted errors in turn, then answers."""

    script: list[Any] = Field(default_factory=list)
    answer: str = "ok"
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next(self) -> None:
        self.calls += 1
        if self.script:
            exc = self.script.pop(0)
            if exc is not None:
                raise exc

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._next()
        msg = AIMessage(self.answer, response_metadata={"model_name": self.answer})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self._next()
        for word in self.answer.split():
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
        yield ChatGenerationChunk(
            message=AIMessageChunk(content=""),
            generation_info={"finish_reason": "stop"},
        )


def router(
    *models: BaseChatModel | Route, clock: FakeClock | None = None, **kw: Any
) -> Router:
    clock = clock or FakeClock()
    kw.setdefault("retry", RetryPolicy(max_attempts=3, jitter=False))
    return Router(
        list(models),
        breakers=BreakerRegistry(clock=clock),
        rate_limits=RateLimiterRegistry(clock=clock),
        clock=clock,
        sleep=clock.sleep,
        asleep=clock.asleep,
        **kw,
    )


def test_retry_waits_are_injected_and_metadata_is_complete(clock: FakeClock) -> None:
    a = Scripted(script=[ModelAPIError("500"), ModelAPIError("500")], answer="primary")
    r = router(Route(a, name="a"), Route(Scripted(answer="b"), name="b"), clock=clock)
    result = r.generate(MSGS)
    meta = result.generations[0].message.response_metadata["holysheep"]
    assert meta["served_model"] == "a" and meta["retries"] == 2
    assert clock.sleeps == [0.5, 1.0]
    assert result.llm_output and result.llm_output["holysheep"] == meta


def test_unknown_exceptions_stop_without_fallback() -> None:
    a = Scripted(script=[KeyError("bug")])
    b = Scripted(answer="b")
    with pytest.raises(KeyError):
        router(Route(a, name="a"), Route(b, name="b")).generate(MSGS)
    assert b.calls == 0


def test_all_failed_lists_every_route() -> None:
    a = Scripted(script=[ModelAPIError("x")] * 3)
    b = Scripted(script=[TimeoutError("silent")])
    with pytest.raises(AllRoutesFailedError) as info:
        router(Route(a, name="a"), Route(b, name="b")).generate(MSGS)
    assert [f.model for f in info.value.failures] == ["a", "a", "a", "b"]
    assert isinstance(info.value.__cause__, TimeoutError)


def test_preferred_model(clock: FakeClock) -> None:
    r = router(
        Route(Scripted(answer="a"), name="a"), Route(Scripted(answer="b"), name="b")
    )
    assert [route.name for _, route in r.plan("b")] == ["b", "a"]
    with pytest.raises(ConfigurationError, match="not in this model's routes"):
        r.plan("zzz")
    r.route_factory = lambda name: Route(Scripted(answer=name), name=name)
    result = r.generate(MSGS, preferred_model="zzz")
    assert result.generations[0].message.content == "zzz"


class NoStream(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "no-stream"

    def _generate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage("whole answer"))]
        )


def test_stream_on_a_non_streaming_model_yields_one_chunk() -> None:
    r = router(Route(NoStream(), name="f"))
    chunks = list(r.stream(MSGS, live=True))
    assert chunks[0].message.content == "whole answer"
    assert chunks[-1].message.response_metadata["holysheep"]["served_model"] == "f"


def test_live_stream_retries_before_content(clock: FakeClock) -> None:
    a = Scripted(script=[ModelAPIError("x")], answer="one two three")
    chunks = list(router(Route(a, name="a"), clock=clock).stream(MSGS, live=True))
    assert "".join(str(c.message.content) for c in chunks) == "one two three "
    assert chunks[-1].message.response_metadata["holysheep"]["retries"] == 1


async def test_async_paths(clock: FakeClock) -> None:
    a = Scripted(script=[ModelAPIError("x")] * 3)
    r = router(Route(a, name="a"), Route(Scripted(answer="b c"), name="b"), clock=clock)
    result = await r.agenerate(MSGS)
    assert (
        result.generations[0].message.response_metadata["holysheep"]["served_model"]
        == "b"
    )
    chunks = [c async for c in r.astream(MSGS, live=True)]
    assert chunks[-1].message.response_metadata["holysheep"]["served_model"] == "a"


def test_max_upstream_attempts() -> None:
    slow = ChatOpenAI(model="gpt-4.1", api_key="k", base_url="http://x/v1")  # SDK: 2
    assert sdk_retries(slow) == 2
    raw = Route(slow, name="raw")  # not via Route.of: SDK retries stay on
    r = router(
        Route.of(slow), raw, Route(Scripted(), name="s", retry=RetryPolicy.none())
    )
    assert r.max_upstream_attempts() == 3 + 3 * 3 + 1


def test_without_sdk_retries_copies_clients() -> None:
    m = ChatOpenAI(model="gpt-4.1", api_key="k", base_url="http://x/v1", max_retries=5)
    c = without_sdk_retries(m)
    assert c is not m and sdk_retries(c) == 0
    assert c.root_client.max_retries == 0 and c.root_async_client.max_retries == 0
    assert m.root_client.max_retries == 5
    assert without_sdk_retries(c) is c


def test_route_of_reads_the_catalogue() -> None:
    m = ChatOpenAI(model="moonshot-v1-8k", api_key="k", base_url="http://x/v1/")
    route = Route.of(m, is_gateway=True)
    assert route.name == "moonshot-v1-8k" and route.base_url == "http://x/v1"
    assert route.context_window == 8192 and route.supports_prefill
    assert route.key == ("http://x/v1", "moonshot-v1-8k")
    assert route.cannot_serve(Requirements(prompt_tokens=10_000)) is not None
    assert route.cannot_serve(Requirements(structured_output=True)) == (
        "no structured output"
    )


def test_requirements_and_estimate() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    req = Requirements.of(MSGS, {"tools": tools, "max_tokens": 100})
    assert req.tools and not req.structured_output and req.max_tokens == 100
    assert req.rate_tokens == req.prompt_tokens + 100
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert Requirements.of(MSGS, {"response_format": fmt}).structured_output
    assert not Requirements.of(
        MSGS, {"response_format": {"type": "json_object"}}
    ).structured_output
    assert estimate_tokens([HumanMessage("x" * 4000)], {}) == 1000 + 4


def test_router_needs_routes() -> None:
    with pytest.raises(ConfigurationError):
        Router([])
