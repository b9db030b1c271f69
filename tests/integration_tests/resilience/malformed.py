"""Running one faulted call of `ChatHolySheep` and checking it against the log.

Shared by `test_malformed_replies.py` and `test_malformed_edges.py`: `gpt-4.1`
with `deepseek-v3.2` as its only fallback, against the simulator; the fault is
scripted on gpt-4.1 (every request), deepseek-v3.2 always answers. What is
checked comes from the simulator's log (ground truth): how many requests each
model received, that deepseek-v3.2 was asked only once gpt-4.1 was done, what
was billed, and that the library's attempt count equals the log's.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import reduce
from operator import add
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from pydantic import SecretStr

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.resilience import BreakerConfig, BreakerRegistry, RetryPolicy
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.simulator.tokens import split_words

GPT, DS = "gpt-4.1", "deepseek-v3.2"
PROMPT = "hello there"
AFTER_CHUNKS = 2  # content chunks delivered before a mid-stream fault
DEADLINE = 8.0
GUARD = DEADLINE + 4.0  # a call still running by then has hung: the test fails

FALLBACK = "deepseek-v3.2's unfaulted answer"
CONTINUED = f"gpt-4.1's first {AFTER_CHUNKS} chunks, then deepseek-v3.2's answer"

KINDS = (
    "invoke",
    "ainvoke",
    "stream",
    "astream",
    "invoke-streamed",
    "ainvoke-streamed",
)
NON_STREAM = ("invoke", "ainvoke")  # plain requests (no first-token/stall limits)
STREAM = ("stream", "astream")
# Non-streaming calls under first-token/stall limits (the defaults) read the
# answer as a stream: the stream's expectation, but nothing is delivered before
# the fallback answers, so a stream that would be continued falls over whole.
STREAMED_INVOKE = ("invoke-streamed", "ainvoke-streamed")


@dataclass(frozen=True)
class Limits:
    """gpt-4.1's limits (deepseek-v3.2 always gets `RELAXED`)."""

    timeout: float = 3.0
    first_token: float = 2.0
    stall: float = 2.0


RELAXED = Limits()


@dataclass(frozen=True)
class Expect:
    """What a call does when gpt-4.1 has the fault.

    Attributes:
        gpt: requests gpt-4.1 receives.
        reasons: the router's reason for each failed gpt-4.1 attempt, in order
            (`None`: not checked).
        outcome: `FALLBACK`, `CONTINUED`, or the exception type raised (then
            deepseek-v3.2 is never asked).
        held: the limit after which the client leaves a gpt-4.1 response that
            is still open (`None`: the simulator ends the response itself).
    """

    gpt: int
    reasons: tuple[str, ...] | None
    outcome: str | type[BaseException] = FALLBACK
    held: float | None = None


@dataclass(frozen=True)
class Case:
    """A fault on gpt-4.1, its limits, and the expectation per entry point."""

    fault: Fault
    expect: dict[str, Expect]
    limits: Limits = RELAXED


def per_kind(
    non_stream: Expect | None = None, stream: Expect | None = None
) -> dict[str, Expect]:
    """The same expectation for invoke/ainvoke and for stream/astream."""
    out: dict[str, Expect] = {}
    if non_stream is not None:
        out.update(dict.fromkeys(NON_STREAM, non_stream))
    if stream is not None:
        out.update(dict.fromkeys(STREAM, stream))
        whole = FALLBACK if stream.outcome == CONTINUED else stream.outcome
        invoke = Expect(stream.gpt, None, whole, stream.held)
        out.update(dict.fromkeys(STREAMED_INVOKE, invoke))
    return out


def make_model(
    sim: GatewaySimulator, limits: Limits = RELAXED, plain: bool = False
) -> ChatHolySheep:
    """gpt-4.1 with deepseek-v3.2 as its fallback, fast retries, no breaker trips.

    `plain`: no first-token/stall limits on gpt-4.1 (non-streaming calls then
    send plain requests).
    """
    return ChatHolySheep(
        model=GPT,
        fallbacks=[
            {
                "model": DS,
                "timeout": RELAXED.timeout,
                "first_token_timeout": RELAXED.first_token,
                "stall_timeout": RELAXED.stall,
            }
        ],
        api_key=SecretStr(sim.api_key),
        base_url=sim.base_url,
        retry=RetryPolicy(max_attempts=3, initial=0.01, max_backoff=0.05),
        timeout=limits.timeout,
        first_token_timeout=None if plain else limits.first_token,
        stall_timeout=None if plain else limits.stall,
        deadline=DEADLINE,
        breaker=BreakerRegistry(
            BreakerConfig(failure_threshold=1000, minimum_requests=1000)
        ),
    )


def reference_answers() -> dict[str, str]:
    """Each model's unfaulted answer to `PROMPT` (on a simulator of its own)."""
    out: dict[str, str] = {}
    with GatewaySimulator() as ref:
        for model in (GPT, DS):
            chat = ChatHolySheep(
                model=model,
                base_url=ref.base_url,
                api_key=SecretStr(ref.api_key),
                breaker=BreakerRegistry(),
            )
            text = chat.invoke(PROMPT).content
            assert isinstance(text, str) and model in text
            out[model] = text
    return out


@dataclass
class Result:
    """A call's outcome: a message or an exception, and what was delivered."""

    message: BaseMessage | None = None
    error: BaseException | None = None
    delivered: str = ""  # streams: content yielded before an exception


def _stream_sync(model: ChatHolySheep) -> Result:
    chunks: list[Any] = []
    try:
        for chunk in model.stream(PROMPT):
            chunks.append(chunk)
    except Exception as exc:
        return Result(error=exc, delivered="".join(str(c.content) for c in chunks))
    return Result(message=reduce(add, chunks))


async def _stream_async(model: ChatHolySheep) -> Result:
    chunks: list[Any] = []
    try:
        async for chunk in model.astream(PROMPT):
            chunks.append(chunk)
    except Exception as exc:
        return Result(error=exc, delivered="".join(str(c.content) for c in chunks))
    return Result(message=reduce(add, chunks))


def _invoke_sync(model: ChatHolySheep) -> Result:
    try:
        return Result(message=model.invoke(PROMPT))
    except Exception as exc:
        return Result(error=exc)


async def _invoke_async(model: ChatHolySheep) -> Result:
    try:
        return Result(message=await model.ainvoke(PROMPT))
    except Exception as exc:
        return Result(error=exc)


async def warm_up(model: ChatHolySheep, sim: GatewaySimulator) -> None:
    """Open this event loop's connection pool before the clock starts.

    (`GET /models` is not a chat request: the log stays empty.)
    """
    client = model.http_async_client
    assert client is not None
    reply = await client.get(
        f"{sim.base_url}/models", headers={"Authorization": f"Bearer {sim.api_key}"}
    )
    assert reply.status_code == 200


def _in_thread(fn: Callable[[], Result]) -> asyncio.Future[Result]:
    """Run a sync call in a daemon thread of its own.

    Not `asyncio.to_thread`: closing the event loop waits for the default
    executor, so a call that hangs would hang the test's teardown too (the
    simulator, which would cut it, is stopped after the loop is closed).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Result] = loop.create_future()

    def settle(result: Result) -> None:
        if not future.done():
            future.set_result(result)

    def work() -> None:
        result = fn()
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            loop.call_soon_threadsafe(settle, result)

    threading.Thread(target=work, daemon=True, name="malformed-call").start()
    return future


async def call(kind: str, model: ChatHolySheep) -> Result:
    """One call through the entry point `kind`; fails the test if it hangs."""
    runs: dict[str, Callable[[], Awaitable[Result]]] = {
        "invoke": lambda: _in_thread(lambda: _invoke_sync(model)),
        "ainvoke": lambda: _invoke_async(model),
        "invoke-streamed": lambda: _in_thread(lambda: _invoke_sync(model)),
        "ainvoke-streamed": lambda: _invoke_async(model),
        "stream": lambda: _in_thread(lambda: _stream_sync(model)),
        "astream": lambda: _stream_async(model),
    }
    try:
        return await asyncio.wait_for(runs[kind](), GUARD)
    except asyncio.TimeoutError:
        pytest.fail(f"{kind} still running after {GUARD} s (deadline {DEADLINE} s)")


async def run_case(
    sim: GatewaySimulator, answers: dict[str, str], case: Case, kind: str
) -> Result:
    """Script the fault, make the call, and check it against the log."""
    expect = case.expect[kind]
    plain = kind in NON_STREAM
    sim.script(GPT, [], then=case.fault)
    model = make_model(sim, case.limits, plain=plain)
    if kind in ("ainvoke", "astream", "ainvoke-streamed"):
        await warm_up(model, sim)
    started = time.monotonic()
    result = await call(kind, model)
    elapsed = time.monotonic() - started

    want_ds = 0 if isinstance(expect.outcome, type) else 1
    try:
        # A response the client left may stay open a while (a sync stream's
        # reader thread notices only at its next chunk): not waited for.
        gpt = await sim.log.wait_for_async(
            expect.gpt, model=GPT, finished=expect.held is None
        )
        ds = await sim.log.wait_for_async(want_ds, model=DS, finished=True)
    except TimeoutError as exc:
        pytest.fail(f"{exc}; outcome {result}; log {sim.log.records()}")
    assert (len(gpt), len(ds)) == (expect.gpt, want_ds), (
        f"requests (gpt-4.1, deepseek-v3.2): {(len(gpt), len(ds))}, expected "
        f"{(expect.gpt, want_ds)}; outcome {result}"
    )
    assert sim.log.count() == expect.gpt + want_ds  # nothing else was asked
    assert all(r.stream for r in ds)  # deepseek-v3.2 always has limits
    assert all(r.stream == (not plain) for r in gpt)
    assert elapsed < DEADLINE
    for arrival in (r.arrived for r in ds):  # deepseek only once done with gpt-4.1
        if expect.held is None:
            assert all(r.ended is not None and r.ended <= arrival for r in gpt)
        else:  # the client left an open response: not before the limit passed
            assert arrival >= started + 0.9 * expect.held
    assert not any(r.billed for r in gpt)  # a broken reply is never billed

    if isinstance(expect.outcome, type):
        assert type(result.error) is expect.outcome, result
        assert result.delivered == ""
        return result
    assert result.error is None, f"unexpected {result.error!r}"
    msg = result.message
    assert isinstance(msg, AIMessage)
    assert msg.response_metadata["model_name"] == DS
    meta = msg.response_metadata["holysheep"]
    assert meta["served_model"] == DS
    assert meta["attempts"] == expect.gpt + want_ds  # the library's count = the log's
    failures = meta["failures"]
    assert [f["model"] for f in failures] == [GPT] * expect.gpt
    if expect.reasons is not None:
        assert tuple(f["reason"] for f in failures) == expect.reasons
    answer = answers[DS]
    if expect.outcome == CONTINUED:
        answer = "".join(split_words(answers[GPT])[:AFTER_CHUNKS]) + answer
        assert meta["continued_from"] == [GPT]
    else:
        assert "continued_from" not in meta
    assert msg.content == answer  # the whole answer, never a truncated one
    [served] = ds
    assert served.billed
    assert msg.usage_metadata is not None
    assert msg.usage_metadata["output_tokens"] == served.completion_tokens
    return result
