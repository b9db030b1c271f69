"""The route loop core, offline: classification once, ops, stream rescue, middleware."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.exceptions import ModelAPIError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from langchain_holysheep.catalogue import Capabilities
from langchain_holysheep.resilience import (
    Action,
    AllRoutesFailedError,
    BreakerRegistry,
    Decision,
    ErrorPolicy,
    RateLimiterRegistry,
    RetryPolicy,
    Route,
    Router,
    StreamInterruptedError,
)
from langchain_holysheep.resilience._deadline import Deadline
from langchain_holysheep.resilience._loop import answer_loop
from langchain_holysheep.resilience._ops import Send, Sleep
from langchain_holysheep.resilience._rescue import StreamRescue
from langchain_holysheep.resilience._router import continue_with_prefill
from langchain_holysheep.resilience._streams import StreamWatch
from tests.unit_tests.resilience.fakes import FakeClock

MSGS: list[BaseMessage] = [HumanMessage("hello")]
PREFILL = Capabilities(
    tools=True, structured_output=True, vision=False, assistant_prefill=True
)


class CountingPolicy(ErrorPolicy):
    """An `ErrorPolicy` that records every exception it classifies."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "seen", [])

    def classify(self, exc: BaseException, *, gateway: bool = True) -> Decision:
        self.seen.append(exc)  # type: ignore[attr-defined]
        return super().classify(exc, gateway=gateway)


class Flaky(BaseChatModel):
    """Raises the scripted errors, then answers; streams `answer` word by word.

    `cut_after`: a stream raises `cut_error` after this many content chunks.
    """

    script: list[Any] = Field(default_factory=list)
    answer: str = "ok"
    cut_after: int | None = None
    cut_error: Any = None
    calls: int = 0
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "flaky"

    def _next(self, messages: list[BaseMessage]) -> None:
        self.calls += 1
        self.seen.append(list(messages))
        if self.script:
            exc = self.script.pop(0)
            if exc is not None:
                raise exc

    def _generate(self, messages: Any, stop: Any = None, **kw: Any) -> ChatResult:
        self._next(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.answer))])

    def _stream(
        self, messages: Any, stop: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        self._next(messages)
        for i, word in enumerate(self.answer.split()):
            if self.cut_after is not None and i == self.cut_after:
                raise self.cut_error
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
        yield ChatGenerationChunk(
            message=AIMessageChunk(content=""),
            generation_info={"finish_reason": "stop"},
        )


def make_router(*routes: Route, policy: ErrorPolicy | None = None, **kw: Any) -> Router:
    clock = FakeClock()
    kw.setdefault("retry", RetryPolicy(max_attempts=3, jitter=False))
    return Router(
        list(routes),
        error_policy=policy,
        breakers=BreakerRegistry(clock=clock),
        rate_limits=RateLimiterRegistry(clock=clock),
        clock=clock,
        sleep=clock.sleep,
        asleep=clock.asleep,
        **kw,
    )


# -- classification happens once, with the user's policy -------------------------------
def test_each_failure_is_classified_exactly_once() -> None:
    errors = [ModelAPIError("500 a"), ModelAPIError("500 b"), ModelAPIError("500 c")]
    a = Flaky(script=list(errors))
    b = Flaky(answer="from b")
    policy = CountingPolicy()
    result = make_router(
        Route(a, name="a"), Route(b, name="b"), policy=policy
    ).generate(MSGS)
    assert result.generations[0].message.content == "from b"
    assert a.calls == 3
    assert policy.seen == errors  # once each, in order, nothing else
    meta = result.generations[0].message.response_metadata["holysheep"]
    assert [f["action"] for f in meta["failures"]] == ["retry", "retry", "fallback"]


def test_the_users_overrides_decide_retry_and_fallover() -> None:
    a = Flaky(script=[ModelAPIError("500")])
    b = Flaky(answer="from b")
    policy = CountingPolicy(overrides={ModelAPIError: "fallback"})
    result = make_router(
        Route(a, name="a"), Route(b, name="b"), policy=policy
    ).generate(MSGS)
    assert a.calls == 1  # the override: no retry on the same route
    assert len(policy.seen) == 1
    failure = result.generations[0].message.response_metadata["holysheep"]["failures"]
    assert failure[0]["reason"] == "ModelAPIError (override)"


def test_a_stop_override_ends_the_call_with_the_error_itself() -> None:
    boom = ModelAPIError("500")
    a = Flaky(script=[boom])
    b = Flaky(answer="never")
    policy = CountingPolicy(overrides={ModelAPIError: Action.STOP})
    with pytest.raises(ModelAPIError) as info:
        make_router(Route(a, name="a"), Route(b, name="b"), policy=policy).generate(
            MSGS
        )
    assert info.value is boom
    assert b.calls == 0 and policy.seen == [boom]


def test_a_broken_stream_is_classified_once() -> None:
    cut = ConnectionResetError("reset")
    a = Flaky(answer="one two three", cut_after=1, cut_error=cut)
    b = Flaky(answer="two three")
    policy = CountingPolicy()
    router = make_router(
        Route(a, name="a"), Route(b, name="b", capabilities=PREFILL), policy=policy
    )
    text = "".join(c.message.content for c in router.stream(MSGS, live=True))  # type: ignore[misc]
    assert text == "one two three "
    assert len(policy.seen) == 1  # the wrapped stream failure, once


# -- the loop is a generator of operations (no I/O inside) ----------------------------
def test_the_loop_yields_operations_for_a_driver() -> None:
    a = Flaky()
    router = make_router(
        Route(a, name="a"), retry=RetryPolicy(max_attempts=2, jitter=False)
    )
    call = router.new_call(MSGS, {})
    loop = answer_loop(router, call, MSGS, {})
    op = next(loop)
    assert isinstance(op, Send) and op.route.name == "a" and a.calls == 0
    op = loop.throw(ModelAPIError("503"))
    assert isinstance(op, Sleep) and op.seconds == pytest.approx(0.5)
    op = loop.send(None)
    assert isinstance(op, Send)
    reply = ChatResult(generations=[ChatGeneration(message=AIMessage("done"))])
    with pytest.raises(StopIteration) as stop:
        loop.send(reply)
    idx, route, value = stop.value.value
    assert (idx, route.name, value) == (0, "a", reply)
    assert call.attempts == 2 and call.retries == 1
    assert a.calls == 0  # the loop itself never called the model


def test_no_route_left_returns_none_and_final_error_lists_them() -> None:
    a = Flaky(script=[ModelAPIError("500")] * 3)
    router = make_router(
        Route(a, name="a"), Route(Flaky(script=[ModelAPIError("x")] * 3), name="b")
    )
    call = router.new_call(MSGS, {})
    loop = answer_loop(router, call, MSGS, {})
    op = next(loop)
    with pytest.raises(StopIteration) as stop:
        while True:
            if isinstance(op, Send):
                op = loop.throw(ModelAPIError("500"))
            else:
                op = loop.send(None)
    assert stop.value.value is None
    err = call.final_error()
    assert isinstance(err, AllRoutesFailedError) and len(err.failures) == 6


# -- stream rescue --------------------------------------------------------------------
def _watch_with(text: list[str]) -> StreamWatch:
    watch = StreamWatch(
        "a",
        Deadline(None),
        first_token=None,
        stall=None,
        tail=0.1,
        early_finish=True,
        require_finish=True,
    )
    for t in text:
        watch.saw(ChatGenerationChunk(message=AIMessageChunk(content=t)))
    return watch


def test_rescue_builds_the_continuation_and_names_where_it_broke() -> None:
    rescue = StreamRescue(MSGS, continue_with_prefill)
    assert rescue.messages() is MSGS and not rescue.active
    cut = ConnectionResetError("reset")
    rescue.broke("a", cut, _watch_with(["Hello ", "wor"]))
    assert rescue.active
    msgs = rescue.messages()
    assert msgs[-1] == AIMessage("Hello wor") and msgs[:-1] == MSGS
    rescue.trying("b")
    refusal = ValueError("400 prefill not supported")
    rescue.refused(refusal)
    err = rescue.error([])
    assert err.model == "a" and err.cause is cut and err.partial_text == "Hello wor"
    assert err.continuation_errors == [("b", refusal)]
    assert "'a' broke" in str(err) and "Continuation on 'b' failed" in str(err)


def test_a_refused_continuation_names_the_broken_route() -> None:
    cut = ConnectionResetError("reset")
    a = Flaky(answer="one two three", cut_after=1, cut_error=cut)
    refusal = ModelAPIError("400 bad request")
    b = Flaky(script=[refusal], answer="unused")
    router = make_router(
        Route(a, name="a"),
        Route(b, name="b", capabilities=PREFILL),
        policy=ErrorPolicy(overrides={ModelAPIError: "stop"}),
    )
    got: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in router.stream(MSGS, live=True):
            got.append(chunk.message.content)  # type: ignore[arg-type]
    err = info.value
    assert got == ["one "] and err.partial_text == "one "
    assert err.model == "a"  # where the stream broke, not the refusing route
    assert [name for name, _ in err.continuation_errors] == ["b"]
    assert err.continuation_errors[0][1] is refusal
    assert b.seen[0][-1] == AIMessage("one ")  # b was asked to continue the text


# -- agent middleware, offline --------------------------------------------------------
def test_middleware_retries_then_falls_over_with_one_classification() -> None:
    pytest.importorskip("langchain.agents")
    from langchain.agents.middleware import ModelRequest, ModelResponse

    from langchain_holysheep.middleware import ResilienceMiddleware

    primary = Flaky(answer="primary")
    backup = Flaky(answer="backup")
    clock = FakeClock()
    seen: list[BaseException] = []

    def count(exc: BaseException) -> bool:  # an override that never matches
        seen.append(exc)
        return False

    policy = ErrorPolicy(overrides=[(count, "stop")])
    mw = ResilienceMiddleware(
        backup,
        max_retries=1,
        error_policy=policy,
        breakers=BreakerRegistry(clock=clock),
        rate_limits=RateLimiterRegistry(clock=clock),
        sleep=clock.sleep,
    )
    calls: list[str] = []
    err = ModelAPIError("503")

    def handler(request: ModelRequest) -> ModelResponse:
        name = request.model.answer  # type: ignore[attr-defined]
        calls.append(name)
        if name == "primary":
            raise err
        return ModelResponse(result=[AIMessage("from " + name)])

    response = mw.wrap_model_call(ModelRequest(model=primary, messages=MSGS), handler)
    assert calls == ["primary", "primary", "backup"]
    message = response.result[0]
    assert message.content == "from backup"
    meta = message.response_metadata["holysheep"]
    assert meta["served_model"] == "Flaky" and meta["route_index"] == 1
    assert [f["route_index"] for f in meta["failures"]] == [0, 0]
    assert meta["attempts"] == 3 and meta["retries"] == 1 and meta["fallbacks"] == 1
    assert seen == [err, err]  # the user's policy, once per failure
    assert len(clock.sleeps) == 1
