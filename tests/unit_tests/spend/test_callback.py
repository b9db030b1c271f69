from __future__ import annotations

import asyncio
import contextvars
import copy
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from uuid import uuid4

import pytest
from langchain_core.callbacks.manager import ahandle_event
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers.context import _configure_hooks

from langchain_holysheep.spend import (
    Budget,
    BudgetExceededError,
    HolySheepCallbackHandler,
    PriceBook,
    SpendTracker,
    allowed_routes,
    get_holysheep_callback,
)
from langchain_holysheep.spend.budgets import _inflight as inflight
from langchain_holysheep.spend.tracking._sinks import ListSink

from .conftest import FakeChat

D = Decimal
COST = D("0.02")  # gpt-4.1: 1000 in x $8/M + 500 out x $24/M
# usage consistent with the prompt estimate ("x": 8 tokens) and max_tokens=100,
# as a real server's: 5 in x $8/M + 100 out x $24/M; worst case ~$0.00246
SMALL = D("0.00244")


@pytest.fixture
def small() -> FakeChat:
    return FakeChat(input_tokens=5, output_tokens=100, max_tokens=100)


def test_hook_registered_once_at_import() -> None:
    before = len(_configure_hooks)
    for _ in range(5):
        with get_holysheep_callback():
            pass
    assert len(_configure_hooks) == before
    names = [var.name for var, *_ in _configure_hooks]
    assert names.count("holysheep_callback") == 1
    assert names.count("holysheep_track_spend") == 1


def test_prices_every_call_with_no_callbacks_passed(fake: FakeChat) -> None:
    with get_holysheep_callback() as cb:
        fake.invoke("hi")
        "".join(c.content for c in fake.stream("hi"))  # type: ignore[misc]
        fake.batch(["a", "b", "c"])
        RunnableLambda(lambda x: x).pipe(fake).invoke("chain")
    fake.invoke("outside the block")
    r = cb.report()
    assert r.calls == 6 and r.successes == 6
    assert r.cost == COST * 6 == cb.total_cost
    assert r.input_tokens == 6000 and r.output_tokens == 3000
    assert r.ttft_ms.count == 1  # only the stream has a first token
    assert cb.tracker is not None and "HolySheepCallbackHandler" in repr(cb)


async def test_async_and_tasks(fake: FakeChat) -> None:
    with get_holysheep_callback() as cb:
        await asyncio.gather(*(fake.ainvoke(str(i)) for i in range(20)))
        async for _ in fake.astream("s"):
            pass
        await asyncio.gather(
            *(asyncio.create_task(fake.ainvoke("t")) for _ in range(5))
        )
    assert cb.report().calls == 26
    assert cb.report().cost == COST * 26


def test_threads_that_copy_the_context(fake: FakeChat) -> None:
    with get_holysheep_callback() as cb, ThreadPoolExecutor(8) as pool:
        ctx = [contextvars.copy_context() for _ in range(40)]
        list(pool.map(lambda c: c.run(fake.invoke, "x"), ctx))
    assert cb.report().calls == 40


def test_cached_and_reasoning_tokens_and_served_model() -> None:
    book = PriceBook(
        {"r1": {"input": "1", "output": "2", "cached_input": "0.1", "reasoning": "4"}}
    )
    model = FakeChat(
        model="asked",
        served="r1",
        input_tokens=100,
        cached=60,
        output_tokens=50,
        reasoning=20,
    )
    with get_holysheep_callback(pricebook=book) as cb:
        model.invoke("x")
    r = cb.report()
    assert [m.model for m in r.models] == ["r1"]  # spend goes to who answered
    assert r.cached_tokens == 60 and r.reasoning_tokens == 20
    assert r.cost == (D(40) * 1 + 60 * D("0.1") + 30 * 2 + 20 * 4) / 10**6


def test_router_metadata_attempts_retries_fallbacks() -> None:
    hs = {
        "requested_model": "gpt-4.1",
        "served_model": "deepseek-v3.2",
        "route_index": 1,
        "attempts": 3,
        "retries": 1,
        "fallbacks": 1,
        "failures": [
            {
                "model": "gpt-4.1",
                "error": "APIStatusError",
                "status": 503,
                "action": "retry",
                "elapsed_ms": 12.0,
            },
            {
                "model": "gpt-4.1",
                "error": "APIStatusError",
                "status": 503,
                "action": "fallback",
                "elapsed_ms": 15.0,
            },
        ],
    }
    model = FakeChat(model="gpt-4.1", served="deepseek-v3.2", holysheep=hs)
    sink = ListSink()
    with get_holysheep_callback(ledger=sink) as cb:
        model.invoke("x")
    r = cb.report()
    assert (r.calls, r.successes, r.attempts, r.failed_attempts) == (1, 1, 3, 2)
    assert (r.retries, r.fallbacks, r.failover_rate) == (1, 1, 1.0)
    assert r.model("gpt-4.1").failures == 2  # type: ignore[union-attr]
    assert r.model("deepseek-v3.2").successes == 1  # type: ignore[union-attr]
    assert r.cost == (D(1000) * D("0.42") + 500 * D("1.68")) / 10**6
    assert [x.outcome for x in sink.records] == ["error", "error", "ok"]
    assert sink.records[0].error == "APIStatusError (503)"
    assert sink.records[2].attempt == 3 and sink.records[2].is_fallback


async def test_attempt_custom_events_are_recorded() -> None:
    class Routed(FakeChat):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
            async def emit(name: str, data: dict) -> None:
                # how a router reports attempts: run_id is the chat-model run
                await ahandle_event(
                    run_manager.handlers,
                    "on_custom_event",
                    "ignore_custom_event",  # type: ignore[union-attr]
                    name,
                    data,
                    run_id=run_manager.run_id,  # type: ignore[union-attr]
                )

            failed = {
                "model": "gpt-4.1",
                "attempt": 1,
                "outcome": "error",
                "error": "ModelRateLimitError",
                "status": 429,
                "elapsed_ms": 3.0,
            }
            await emit("holysheep_attempt", failed)
            await emit("holysheep_attempt", {"model": "gpt-4.1", "outcome": "ok"})
            await emit("other", {})
            return self._generate(messages)

    sink = ListSink()
    with get_holysheep_callback(ledger=sink) as cb:
        await Routed().ainvoke("x")
    assert [x.outcome for x in sink.records] == ["error", "ok"]
    assert sink.records[1].is_retry and cb.report().retries == 1


def test_failure_is_recorded_and_stream_partial_usage(fake: FakeChat) -> None:
    fake.fail = True
    with get_holysheep_callback() as cb:
        with pytest.raises(RuntimeError):
            fake.invoke("x")
        with pytest.raises(RuntimeError):
            list(fake.stream("x"))
    r = cb.report()
    assert (r.calls, r.failures) == (2, 2)
    # the invoke delivered nothing (free); the stream delivered "hello world"
    # before breaking: billed, so its tokens are estimated, never zero
    assert r.cost > 0 and r.output_tokens == 4  # 2 words at 3 letters a token
    assert r.model("gpt-4.1").failures == 2  # type: ignore[union-attr]
    assert r.ttft_ms.count == 0


def test_budget_refuses_before_the_call_and_releases(small: FakeChat) -> None:
    budget = Budget("0.006", window="total")
    with get_holysheep_callback(budget=budget) as cb:
        for _ in range(2):
            small.invoke("x")  # reserves ~$0.00246, settles at $0.00244
        with pytest.raises(BudgetExceededError, match="No request was sent"):
            small.invoke("x")  # $0.00112 left
    assert small.calls == 2, "the refused call never reached the model"
    assert budget.spent() == SMALL * 2 and budget.reserved() == 0
    assert cb.report().rejected == 1 and cb.report().calls == 2


def test_budget_error_in_a_chain_and_failures_release(fake: FakeChat) -> None:
    budget = Budget("1", window="total")
    handler = HolySheepCallbackHandler(budget)
    fake.fail = True
    with pytest.raises(RuntimeError):
        fake.invoke("x", config={"callbacks": [handler]})
    assert budget.reserved() == 0 and budget.spent() == 0
    fake.fail = False
    fake.max_tokens = 10**9  # worst case far above the limit
    chain = RunnableLambda(lambda x: x) | fake
    with pytest.raises(BudgetExceededError):
        chain.invoke("x", config={"callbacks": [handler]})
    assert budget.reserved() == 0


def test_budget_from_run_metadata_and_scope(small: FakeChat) -> None:
    fake = small
    per_user = Budget("0.004", window="day", scope="user")  # worst case ~$0.00305
    cfg = {"metadata": {"holysheep_budget": per_user, "user": "alice"}}
    with get_holysheep_callback() as cb:
        fake.invoke("x", config=cfg)
        with pytest.raises(BudgetExceededError, match="alice"):
            fake.invoke("x", config=cfg)
        fake.invoke(
            "x", config={"metadata": {"holysheep_budget": [per_user], "user": "bob"}}
        )
    assert per_user.spent("alice") == SMALL and per_user.spent("bob") == SMALL
    assert cb.report().rejected == 1


def test_one_budget_seen_by_two_handlers_is_reserved_once(small: FakeChat) -> None:
    fake = small
    budget = Budget("0.05", window="total")
    cfg = {"metadata": {"holysheep_budget": budget}}
    outer = HolySheepCallbackHandler()
    with get_holysheep_callback():  # a second handler sees the same metadata
        fake.invoke("x", config={**cfg, "callbacks": [outer]})
    assert budget.spent() == SMALL and budget.reserved() == 0


def test_second_budget_refusal_releases_the_first(fake: FakeChat) -> None:
    roomy = Budget("10", window="total")
    tight = Budget("0.0001", window="total")
    with pytest.raises(BudgetExceededError):
        fake.invoke(
            "x", config={"callbacks": [HolySheepCallbackHandler([roomy, tight])]}
        )
    assert roomy.reserved() == 0 and fake.calls == 0


def test_run_window_budget_caps_one_top_level_run(small: FakeChat) -> None:
    fake = small
    budget = Budget("0.006", window="run")
    twice = RunnableLambda(lambda x: x) | fake | (lambda m: m.content) | fake
    with get_holysheep_callback(budget=budget):
        twice.invoke("x")  # $0.00488 in one run
        twice.invoke("x")  # a new run: a new window
        three = twice | (lambda m: m.content) | fake
        with pytest.raises(BudgetExceededError):
            three.invoke("x")
    assert budget.store._windows == {}  # type: ignore[attr-defined]  # runs forgotten


def test_nested_blocks_both_count(small: FakeChat) -> None:
    fake = small
    outer_budget = Budget("0.006", window="total")
    with get_holysheep_callback(budget=outer_budget) as outer:
        fake.invoke("x")
        with get_holysheep_callback() as inner:
            fake.invoke("x")  # the outer budget applies inside too
            with pytest.raises(BudgetExceededError):
                fake.invoke("x")
    assert outer.report().calls == 2 and inner.report().calls == 1


def test_downgrade_exposes_allowed_routes() -> None:
    budget = Budget("0.01", on_exceeded="downgrade", window="total")
    seen: list[tuple[str, ...] | None] = []

    class Routed(FakeChat):
        @property
        def _identifying_params(self):  # type: ignore[no-untyped-def]
            return {
                **super()._identifying_params,
                "holysheep_routes": ["gpt-4.1", "deepseek-v3.2"],
            }

        def _generate(self, messages, stop=None, run_manager=None, **kw):  # type: ignore[no-untyped-def]
            seen.append(allowed_routes(run_manager.run_id))  # type: ignore[union-attr]
            return super()._generate(messages)

    Routed(max_tokens=1000).invoke(
        "x", config={"callbacks": [HolySheepCallbackHandler(budget)]}
    )
    assert seen == [("deepseek-v3.2",)]
    assert allowed_routes(uuid4()) is None


def test_handler_internal_errors_never_break_the_call(
    fake: FakeChat, caplog: pytest.LogCaptureFixture
) -> None:
    class BadBook(PriceBook):
        def cost(self, *a, **k):  # type: ignore[no-untyped-def]
            raise RuntimeError("bug")

    caplog.set_level(logging.ERROR, logger="langchain_holysheep.spend")
    handler = HolySheepCallbackHandler(tracker=SpendTracker(BadBook()))
    answer = fake.invoke("x", config={"callbacks": [handler]})
    assert answer.content == "hello world" and fake.calls == 1
    assert "could not record run" in caplog.text and "RuntimeError: bug" in caplog.text
    assert handler.report().calls == 0 and handler._runs == {}

    stray = HolySheepCallbackHandler()  # events of runs it never saw start
    stray.on_llm_end(None, run_id=uuid4())
    stray.on_llm_new_token("x", run_id=uuid4())
    stray.on_custom_event("holysheep_attempt", "junk", run_id=uuid4())
    assert stray.report().calls == 0 and stray.usage_metadata == {}
    assert stray._runs == {} and stray._roots == {}


def test_usage_metadata_is_a_copy_and_copies_of_the_handler_are_it(
    fake: FakeChat,
) -> None:
    with get_holysheep_callback() as cb:
        fake.invoke("x")
    assert copy.copy(cb) is cb and copy.deepcopy(cb) is cb
    fake.invoke("x", config=copy.deepcopy({"callbacks": [cb]}))  # still feeds cb
    usage = cb.usage_metadata
    assert usage["gpt-4.1"]["input_tokens"] == 2000 == cb.prompt_tokens
    usage["gpt-4.1"]["input_tokens"] = 0
    assert cb.usage_metadata["gpt-4.1"]["input_tokens"] == 2000
    cb.tracker.reset()
    assert cb.usage_metadata == {} and cb.prompt_tokens == 0


def test_handler_state_is_cleaned(fake: FakeChat) -> None:
    handler = HolySheepCallbackHandler(Budget("100", window="run"))
    chain = RunnableLambda(lambda x: x) | fake
    chain.batch(["a"] * 10, config={"callbacks": [handler]})
    assert handler._runs == {} and handler._roots == {}
    assert handler._root_budgets == {}
    assert inflight.RESERVATIONS._runs == {}


def test_answers_without_usage_are_unknown_not_free(fake: FakeChat) -> None:
    class NoUsage(FakeChat):
        def _usage(self):  # type: ignore[no-untyped-def]
            return None

    budget = Budget("1", window="total")
    with get_holysheep_callback(budget=budget) as cb:
        NoUsage().invoke("x")
    r = cb.report()
    assert r.unpriced_calls == 1 and r.cost == 0
    assert r.model("gpt-4.1").cost is None  # type: ignore[union-attr]
    assert budget.spent() > 0  # settled at the worst case, to be safe


def test_thread_safety_many_threads(fake: FakeChat) -> None:
    tracker = SpendTracker()
    handler = HolySheepCallbackHandler(Budget("1000"), tracker=tracker)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                fake.invoke("x", config={"callbacks": [handler]})
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert tracker.report().calls == 200 and tracker.total_cost == COST * 200
