"""The fault matrix: every scripted fault x every entry point of `ChatHolySheep`.

One chat model, `gpt-4.1` with `deepseek-v3.2` as its only fallback, against the
simulator. Each fault is scripted on gpt-4.1; `deepseek-v3.2` always answers.
Every case is checked against the simulator's log (ground truth), not against
the library's own metadata:

- how many requests gpt-4.1 and deepseek-v3.2 each received;
- that each call reached deepseek only after it was done with gpt-4.1: after the
  response *ended* when the simulator finished it (error statuses, reset, cut,
  malformed body), or, when the client gave up on a response still open
  (latency, silence, slow first token, stall), no earlier than the limit it
  gave up on allows (the simulator only notices the client leaving later, so
  "ended" would race with the next request there);
- the outcome: the served model and the *whole* answer, equal to what an
  unfaulted call returns (a stream continued after a break is the delivered
  prefix plus the fallback's reply, never a truncated answer), or the exact
  exception type with nothing delivered;
- `response_metadata["holysheep"]["attempts"]` equals the log's total.

Circuit breakers are kept out of the way (a fresh registry whose threshold no
case reaches): they have their own tests, and a breaker tripping halfway
through a concurrent batch would make the counts depend on thread timing.
Time limits are short only where a limit is meant to fire (see `Limits`), and
async cases open their event loop's connection pool before the clock starts
(see `warm_up`): a limit firing by accident would change the outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import reduce
from operator import add
from typing import Any, get_args

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_openai.chat_models.base import OpenAIInvalidRequestError

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.errors import GatewayAuthenticationError
from langchain_holysheep.resilience import (
    AllRoutesFailedError,
    BreakerConfig,
    BreakerRegistry,
    RetryPolicy,
)
from langchain_holysheep.simulator import Fault, GatewaySimulator, RequestRecord
from langchain_holysheep.simulator.faults import FaultKind
from langchain_holysheep.simulator.tokens import split_words
from tests.integration_tests.resilience import test_malformed_edges as malformed_edges
from tests.integration_tests.resilience import (
    test_malformed_replies as malformed_replies,
)

GPT, DS = "gpt-4.1", "deepseek-v3.2"
PROMPTS = ("hello there", "what does a circuit breaker do?")
DEADLINE = 5.0
AFTER_CHUNKS = 2  # content chunks delivered before a stream fault strikes
REASON = "The prompt asks for instructions to build a weapon."

# Outcomes that are not exceptions (each checked word for word).
OK_GPT = "gpt-4.1's unfaulted answer"
OK_DS = "deepseek-v3.2's unfaulted answer"
CONTINUED = (  # a stream continued on a route with assistant prefill
    f"gpt-4.1's first {AFTER_CHUNKS} chunks, then deepseek-v3.2's unfaulted answer"
)
# Outcomes that are exceptions (exact types; nothing delivered before them).
ALL_FAILED = AllRoutesFailedError
INVALID = OpenAIInvalidRequestError  # openai.BadRequestError + LangChain's type
AUTH = GatewayAuthenticationError
Outcome = str | type[BaseException]


@dataclass(frozen=True)
class Limits:
    timeout: float  # per attempt (non-stream: the read timeout)
    first_token: float  # streams: time to first content
    stall: float  # streams: longest gap between chunks


# Short limits where a case is about a limit firing on gpt-4.1 (silent, slow,
# stalled), so those cases stay fast. Everywhere else, and always for the
# healthy deepseek-v3.2, limits with headroom: this process's own GC pauses
# reach 0.2 s unloaded and 0.7 s on a loaded 2-core machine, and a limit that
# fires by accident changes the outcome (a 500 read as a first-token timeout;
# a first-token limit counts from before the request is sent, so at 0.3 s
# the request sometimes never reached the simulator). Hence 1 s, not 0.3 s,
# for the limits meant to fire before anything arrives.
RELAXED = Limits(timeout=3.0, first_token=2.0, stall=2.0)
SILENT_LIMITS = Limits(timeout=1.0, first_token=1.0, stall=RELAXED.stall)
STALL_LIMITS = Limits(timeout=1.0, first_token=RELAXED.first_token, stall=0.5)


@dataclass(frozen=True)
class Script:
    """What gpt-4.1 does: `faults` for its first requests, then `then` (None:
    normal replies), under `limits`."""

    faults: tuple[Fault, ...]
    then: Fault | None
    limits: Limits = RELAXED
    retry_after: float | None = None  # the retry must wait at least this long

    @property
    def gives_up(self) -> tuple[float, float] | None:
        """The limit after which the client leaves a gpt-4.1 response still open,
        (non-stream, stream); None: the simulator ends the response itself."""
        if self.limits is RELAXED:
            return None
        return self.limits.timeout, min(self.limits.first_token, self.limits.stall)


def once(fault: Fault, times: int = 1, **kw: Any) -> Script:
    return Script((fault,) * times, None, **kw)


def always(fault: Fault, **kw: Any) -> Script:
    return Script((), fault, **kw)


SCRIPTS: dict[str, Script] = {
    "503-once":        once(Fault.status(503)),
    "503-always":      always(Fault.status(503)),
    "429-retry-after": once(Fault.status(429, retry_after=0.2), retry_after=0.2),
    "500-twice":       once(Fault.status(500), times=2),
    "502-always":      always(Fault.status(502)),
    "408-once":        once(Fault.status(408)),
    "reset-once":      once(Fault.reset()),
    "context-length":  always(Fault.context_length_exceeded()),
    "model-not-found": always(Fault.model_not_found()),
    "content-policy":  always(Fault.content_policy(REASON)),
    "401":             always(Fault.status(401)),
    "400-invalid":     always(Fault.status(400)),
    "latency>timeout": always(Fault.latency(3.0), limits=SILENT_LIMITS),
    "silent":          always(Fault.silent(), limits=SILENT_LIMITS),
    "slow-1st-token":  always(Fault.slow_first_token(3.0), limits=SILENT_LIMITS),
    "stream-cut":      always(Fault.stream_cut(after_chunks=AFTER_CHUNKS)),
    "stream-stall":    always(Fault.stream_stall(AFTER_CHUNKS), limits=STALL_LIMITS),
    "malformed-chunk": always(Fault.malformed_chunk(after_chunks=AFTER_CHUNKS)),
    "no-done-hang":    always(Fault.no_done(hang=True)),
}  # fmt: skip

Expect = tuple[int, int, Outcome]  # (gpt-4.1 requests, deepseek requests, outcome)

# The policy at a glance. Batch: totals over its 2 concurrent calls.
#
# - Retryable (503, 429 honouring Retry-After, 500, 502, 408, reset): retried on
#   gpt-4.1, 3 attempts at most, then fall over to deepseek-v3.2.
# - Context length: fall over at once; but deepseek-v3.2's window (128000) is
#   not larger than gpt-4.1's, so it is skipped without a request.
# - Model not found: fall over at once.
# - Content policy (with the provider's reason), 401, 400: stop; the error
#   propagates and deepseek-v3.2 is never asked.
# - Silent-ish (latency beyond the timeout, silence, slow first token): one
#   attempt, never retried, then fall over. A non-stream request waits for the
#   whole reply, so a slow first token is plain latency there: the read
#   timeout fires.
# - Broken streams on non-stream requests: cut = a truncated body then a close
#   (a dropped connection: retried); stall = half a body then silence (a read
#   timeout: fall over); malformed = invalid JSON (fall over). On streams they
#   strike after content was delivered: gpt-4.1 is not retried, the stream is
#   continued on deepseek-v3.2, which supports assistant prefill (no
#   StreamInterruptedError).
# - No [DONE], connection held open: complete once the usage chunk arrived.
#
#                     invoke / ainvoke       stream / astream          batch
MATRIX: dict[str, tuple[Expect, Expect, Expect]] = {
    "503-once":        ((2, 0, OK_GPT),     (2, 0, OK_GPT),        (3, 0, OK_GPT)),
    "503-always":      ((3, 1, OK_DS),      (3, 1, OK_DS),         (6, 2, OK_DS)),
    "429-retry-after": ((2, 0, OK_GPT),     (2, 0, OK_GPT),        (3, 0, OK_GPT)),
    "500-twice":       ((3, 0, OK_GPT),     (3, 0, OK_GPT),        (4, 0, OK_GPT)),
    "502-always":      ((3, 1, OK_DS),      (3, 1, OK_DS),         (6, 2, OK_DS)),
    "408-once":        ((2, 0, OK_GPT),     (2, 0, OK_GPT),        (3, 0, OK_GPT)),
    "reset-once":      ((2, 0, OK_GPT),     (2, 0, OK_GPT),        (3, 0, OK_GPT)),
    "context-length":  ((1, 0, ALL_FAILED), (1, 0, ALL_FAILED),    (2, 0, ALL_FAILED)),
    "model-not-found": ((1, 1, OK_DS),      (1, 1, OK_DS),         (2, 2, OK_DS)),
    "content-policy":  ((1, 0, INVALID),    (1, 0, INVALID),       (2, 0, INVALID)),
    "401":             ((1, 0, AUTH),       (1, 0, AUTH),          (2, 0, AUTH)),
    "400-invalid":     ((1, 0, INVALID),    (1, 0, INVALID),       (2, 0, INVALID)),
    "latency>timeout": ((1, 1, OK_DS),      (1, 1, OK_DS),         (2, 2, OK_DS)),
    "silent":          ((1, 1, OK_DS),      (1, 1, OK_DS),         (2, 2, OK_DS)),
    "slow-1st-token":  ((1, 1, OK_DS),      (1, 1, OK_DS),         (2, 2, OK_DS)),
    "stream-cut":      ((3, 1, OK_DS),      (1, 1, CONTINUED),     (6, 2, OK_DS)),
    "stream-stall":    ((1, 1, OK_DS),      (1, 1, CONTINUED),     (2, 2, OK_DS)),
    "malformed-chunk": ((1, 1, OK_DS),      (1, 1, CONTINUED),     (2, 2, OK_DS)),
    "no-done-hang":    ((1, 0, OK_GPT),     (1, 0, OK_GPT),        (2, 0, OK_GPT)),
}  # fmt: skip

KINDS = (
    "invoke",
    "ainvoke",
    "invoke-plain",
    "ainvoke-plain",
    "stream",
    "astream",
    "batch",
)
COLUMN = {
    "invoke": 0,
    "ainvoke": 0,
    "invoke-plain": 0,
    "ainvoke-plain": 0,
    "stream": 1,
    "astream": 1,
    "batch": 2,
}
# With first-token / stall limits (the defaults), a non-streaming call reads
# its answer as a stream (the request asks for one); "-plain" kinds turn the
# limits off, so the request is a plain one and only `timeout` bounds it. The
# outcomes are the same either way.


def test_the_matrix_covers_every_fault_kind() -> None:
    """Every fault kind is here, or in the malformed-reply tests."""
    kinds = {
        f.kind
        for script in SCRIPTS.values()
        for f in (*script.faults, script.then)
        if f
    }
    elsewhere = malformed_replies.COVERED_KINDS | malformed_edges.COVERED_KINDS
    assert kinds | elsewhere == set(get_args(FaultKind)) - {"ok"}
    assert list(SCRIPTS) == list(MATRIX)


# -- reference answers ---------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    text: str  # the unfaulted answer
    prompt_tokens: int  # the prompt as the simulator counted it


@pytest.fixture(scope="module")
def reference() -> Iterator[dict[tuple[str, str], Reference]]:
    """What unfaulted calls return, per (model, prompt)."""
    out: dict[tuple[str, str], Reference] = {}
    with GatewaySimulator() as ref:
        for model in (GPT, DS):
            chat = ChatHolySheep(
                model=model,
                base_url=ref.base_url,
                api_key=ref.api_key,
                breaker=BreakerRegistry(),
            )
            for prompt in PROMPTS:
                text = chat.invoke(prompt).content
                record = ref.log.records()[-1]
                assert (record.model, record.status) == (model, 200)
                assert isinstance(text, str) and model in text
                out[model, prompt] = Reference(text, record.prompt_tokens)
    yield out


# -- running one case ------------------------------------------------------------------
def make_model(
    sim: GatewaySimulator,
    limits: Limits = RELAXED,
    plain: bool = False,
    **fallback: Any,
) -> ChatHolySheep:
    if plain:
        fallback = {"first_token_timeout": None, "stall_timeout": None, **fallback}
    return ChatHolySheep(
        model=GPT,
        fallbacks=[
            {
                "model": DS,
                "timeout": RELAXED.timeout,
                "first_token_timeout": RELAXED.first_token,
                "stall_timeout": RELAXED.stall,
                **fallback,
            }
        ],
        base_url=sim.base_url,
        api_key=sim.api_key,
        retry=RetryPolicy(max_attempts=3, initial=0.01, max_backoff=0.05),
        timeout=limits.timeout,
        first_token_timeout=None if plain else limits.first_token,
        stall_timeout=None if plain else limits.stall,
        deadline=DEADLINE,
        breaker=BreakerRegistry(
            BreakerConfig(failure_threshold=1000, minimum_requests=1000)
        ),
    )


@dataclass
class Result:
    """One call's outcome: a message or an exception, and what was delivered."""

    message: BaseMessage | None = None
    error: BaseException | None = None
    delivered: str = ""  # streams: content yielded before an exception


def stream_sync(model: ChatHolySheep, prompt: str) -> Result:
    chunks: list[Any] = []
    try:
        for chunk in model.stream(prompt):
            chunks.append(chunk)
    except Exception as exc:
        return Result(error=exc, delivered="".join(str(c.content) for c in chunks))
    return Result(message=reduce(add, chunks))


async def stream_async(model: ChatHolySheep, prompt: str) -> Result:
    chunks: list[Any] = []
    try:
        async for chunk in model.astream(prompt):
            chunks.append(chunk)
    except Exception as exc:
        return Result(error=exc, delivered="".join(str(c.content) for c in chunks))
    return Result(message=reduce(add, chunks))


def invoke_sync(model: ChatHolySheep, prompt: str) -> Result:
    try:
        return Result(message=model.invoke(prompt))
    except Exception as exc:
        return Result(error=exc)


async def invoke_async(model: ChatHolySheep, prompt: str) -> Result:
    try:
        return Result(message=await model.ainvoke(prompt))
    except Exception as exc:
        return Result(error=exc)


def batch_sync(model: ChatHolySheep) -> list[Result]:
    outs = model.batch(list(PROMPTS), return_exceptions=True)
    return [
        Result(error=o) if isinstance(o, BaseException) else Result(message=o)
        for o in outs
    ]


async def warm_up(model: ChatHolySheep, sim: GatewaySimulator) -> None:
    """Open this event loop's HTTP transport before the clock starts.

    The async transport is one per event loop, and every test has its own loop:
    building it and connecting takes 30-300 ms (more on a loaded machine), which
    would eat into the first attempt's first-token limit. An application pays
    it once per loop. `GET /models` is not a chat request: the log stays empty.
    """
    client = model.http_async_client
    assert client is not None
    reply = await client.get(
        f"{sim.base_url}/models", headers={"Authorization": f"Bearer {sim.api_key}"}
    )
    assert reply.status_code == 200


async def run(kind: str, model: ChatHolySheep) -> list[Result]:
    """The results of the entry point, one per prompt sent."""
    prompt = PROMPTS[0]
    if kind in ("invoke", "invoke-plain"):
        return [await asyncio.to_thread(invoke_sync, model, prompt)]
    if kind in ("ainvoke", "ainvoke-plain"):
        return [await invoke_async(model, prompt)]
    if kind == "stream":
        return [await asyncio.to_thread(stream_sync, model, prompt)]
    if kind == "astream":
        return [await stream_async(model, prompt)]
    assert kind == "batch"
    return await asyncio.to_thread(batch_sync, model)


# -- checks --------------------------------------------------------------------------
def check_order(
    gpt: list[RequestRecord],
    ds: list[RequestRecord],
    per_call: int,
    held: float | None,
    started: float,
) -> None:
    """Each call asked deepseek-v3.2 only once it was done with gpt-4.1.

    Calls of a batch overlap, so the log cannot say which request belongs to
    which call; counting is enough: when the i-th deepseek request arrives, at
    least i calls must be done with their `per_call` gpt-4.1 requests.

    "Done" is the end of the response when the simulator finished it. When the
    client gave up on a response still open (`held`: the limit it waited), the
    simulator notices the client leaving only later, racing with the next
    request; so there: the gpt-4.1 requests had arrived, and no deepseek request
    came before the limit could have passed (the client's clock for it starts
    after `started`; 0.9: clock granularity).
    """
    for i, arrival in enumerate(sorted(r.arrived for r in ds), start=1):
        if held is None:
            done = [r for r in gpt if r.ended is not None and r.ended <= arrival]
        else:
            assert arrival >= started + 0.9 * held, "gave up before the limit"
            done = [r for r in gpt if r.arrived <= arrival]
        assert len(done) >= i * per_call, (
            f"deepseek request #{i} arrived before {i} call(s) were done with "
            f"gpt-4.1: {gpt} / {ds}"
        )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", list(MATRIX))
async def test_fault_matrix(
    sim: GatewaySimulator,
    reference: dict[tuple[str, str], Reference],
    fault: str,
    kind: str,
) -> None:
    script = SCRIPTS[fault]
    want_gpt, want_ds, outcome = MATRIX[fault][COLUMN[kind]]
    streaming = kind in ("stream", "astream")
    plain = kind.endswith("-plain")
    sim.script(GPT, list(script.faults), then=script.then)
    model = make_model(sim, script.limits, plain=plain)
    if kind in ("ainvoke", "astream", "ainvoke-plain"):
        await warm_up(model, sim)

    started = time.monotonic()
    results = await run(kind, model)
    elapsed = time.monotonic() - started

    # -- ground truth: the requests each model received (all of them ended) ----
    try:
        gpt = await sim.log.wait_for_async(want_gpt, model=GPT, finished=True)
        ds = await sim.log.wait_for_async(want_ds, model=DS, finished=True)
    except TimeoutError as exc:
        pytest.fail(f"{exc}; outcome {results}; log {sim.log.records()}")
    assert (len(gpt), len(ds)) == (want_gpt, want_ds), (
        f"requests (gpt-4.1, deepseek-v3.2): got {(len(gpt), len(ds))}, expected "
        f"{(want_gpt, want_ds)}; outcome {results}"
    )
    assert sim.log.count() == want_gpt + want_ds  # nothing else was asked
    assert all(r.stream == (not plain) for r in gpt + ds)
    calls = len(results)
    if want_ds:
        assert want_gpt % calls == 0
        held = None
        if script.gives_up is not None:
            held = (
                script.gives_up[0]
                if plain
                else script.gives_up[1]
                if streaming
                else min(script.gives_up)
            )
        check_order(gpt, ds, want_gpt // calls, held, started)
    if script.retry_after is not None:
        limited = next(r for r in gpt if r.status == 429)
        assert limited.ended is not None
        later = max(r.arrived for r in gpt)  # the retry, or a request after it
        assert later - limited.ended >= 0.75 * script.retry_after, "too early"
    assert elapsed < DEADLINE - 1.0  # well within the deadline, whatever happened

    # -- the outcome -------------------------------------------------------------
    succeeded = [r for r in results if r.error is None]
    # each answer billed exactly once, nothing billed for broken attempts
    assert sum(r.billed for r in gpt + ds) == len(succeeded)
    if isinstance(outcome, type):
        for res in results:
            assert type(res.error) is outcome, res
            assert res.delivered == ""  # nothing was yielded before the error
        if outcome is ALL_FAILED:
            err = results[0].error
            assert isinstance(err, AllRoutesFailedError)
            assert [f.reason for f in err.failures] == [
                "context length exceeded",
                "context window 128000 not larger than the one that overflowed",
            ]
        if fault == "content-policy":
            assert all(REASON in str(res.error) for res in results)
        return

    served = GPT if outcome == OK_GPT else DS
    serving = gpt if served == GPT else ds
    attempts = 0
    for res, prompt in zip(results, PROMPTS, strict=False):
        assert res.error is None, f"unexpected {res.error!r}"
        msg = res.message
        assert msg is not None
        meta = msg.response_metadata["holysheep"]
        attempts += meta["attempts"]
        assert msg.response_metadata["model_name"] == served
        assert meta["served_model"] == served
        answer = reference[served, prompt].text
        if outcome == CONTINUED:
            prefix = "".join(split_words(reference[GPT, prompt].text)[:AFTER_CHUNKS])
            answer = prefix + answer
            assert meta["continued_from"] == [GPT]
            # the delivered text went to deepseek as a trailing assistant message
            assert ds[0].prompt_tokens > reference[DS, prompt].prompt_tokens
        else:
            assert "continued_from" not in meta
        assert msg.content == answer  # the whole answer, never a truncated one
        # usage is the serving request's, as the simulator billed it
        assert isinstance(msg, AIMessage) and msg.usage_metadata is not None
        assert msg.usage_metadata["output_tokens"] in {
            r.completion_tokens for r in serving if r.billed
        }
    assert attempts == want_gpt + want_ds  # the library's count = the log's


async def test_context_length_falls_over_at_once_to_a_larger_window(
    sim: GatewaySimulator,
) -> None:
    """Companion of the "context-length" row: a larger fallback is used at once."""
    sim.script(GPT, [], then=Fault.context_length_exceeded())
    model = make_model(sim, context_window=2_000_000)  # > gpt-4.1's 1,047,576
    msg = await model.ainvoke(PROMPTS[0])
    assert msg.response_metadata["model_name"] == DS
    gpt = sim.log.records(GPT)
    ds = sim.log.records(DS)
    assert (len(gpt), len(ds)) == (1, 1)
    assert gpt[0].ended is not None and gpt[0].ended <= ds[0].arrived
    assert msg.response_metadata["holysheep"]["attempts"] == 2
