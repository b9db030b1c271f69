"""Which calls a tracking block sees: threads, executors, tasks, `batch`, process scope.

Real `ChatHolySheep` calls against the simulator from real threads, executors
and asyncio tasks; every count is compared with the simulator's billing.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import pytest
from pydantic import SecretStr

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.simulator import GatewaySimulator
from langchain_holysheep.simulator.log import RequestRecord
from langchain_holysheep.spend import (
    SpendReport,
    TokenUsage,
    get_holysheep_callback,
    global_tracker,
    reset_global_tracker,
)
from langchain_holysheep.spend.tracking import _context as context

from .conftest import BOOK, assert_matches_simulator

N_THREADS = 4
PER_THREAD = 8
PER_POOL = 10


def model(sim: GatewaySimulator, name: str = "gpt-4.1") -> ChatHolySheep:
    return ChatHolySheep(  # type: ignore[call-arg]
        model=name,
        max_tokens=20,
        max_retries=0,
        base_url=sim.base_url,
        api_key=SecretStr(sim.api_key),
    )


def call(llm: ChatHolySheep, i: int) -> None:
    """One call; every other one streamed."""
    if i % 2:
        for _ in llm.stream(f"streamed question {i}"):
            pass
    else:
        llm.invoke(f"question {i}")


def run_threads(target: Callable[[int], None], n: int = N_THREADS) -> None:
    threads = [threading.Thread(target=target, args=(t,)) for t in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def assert_model_matches(report: SpendReport, sim: GatewaySimulator, name: str) -> None:
    """The report has exactly `name`'s billing, and nothing else."""
    billed = sim.log.billed(name)
    assert [m.model for m in report.models] == [name]
    assert report.calls == report.attempts == sim.log.count(name) == billed.requests
    assert (report.input_tokens, report.output_tokens) == (
        billed.prompt_tokens,
        billed.completion_tokens,
    )


def assert_records_match(report: SpendReport, records: list[RequestRecord]) -> None:
    """The report holds exactly these simulator records (all gpt-4.1)."""
    assert {r.model for r in records} == {"gpt-4.1"}
    assert report.calls == report.attempts == len(records)
    usage = TokenUsage(
        input=sum(r.prompt_tokens for r in records),
        output=sum(r.completion_tokens for r in records),
        cached=sum(r.cached_tokens for r in records),
        reasoning=sum(r.reasoning_tokens for r in records),
    )
    assert (
        report.input_tokens,
        report.output_tokens,
        report.cached_tokens,
        report.reasoning_tokens,
    ) == (usage.input, usage.output, usage.cached, usage.reasoning)
    assert report.cost == BOOK.cost("gpt-4.1", usage, warn=False)


@pytest.fixture
def pool_before() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(3) as pool:
        pool.submit(int).result()  # its worker threads exist before any block
        yield pool


def test_block_sees_threads_executors_tasks_and_batch(
    sim: GatewaySimulator, pool_before: ThreadPoolExecutor
) -> None:
    llm = model(sim)

    def worker(t: int) -> None:
        for i in range(PER_THREAD):
            call(llm, t * 100 + i)

    async def tasks() -> None:
        await asyncio.gather(*(llm.ainvoke(f"task {i}") for i in range(PER_POOL)))

    with get_holysheep_callback(pricebook=BOOK) as cb:
        run_threads(worker)
        for f in [pool_before.submit(call, llm, i) for i in range(PER_POOL)]:
            f.result()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: call(llm, i), range(PER_POOL)))
            # copying the context and carrying it: still one count per call
            ctx = contextvars.copy_context()
            pool.submit(ctx.run, call, llm, 1).result()
        asyncio.run(tasks())
        llm.batch([f"batch {i}" for i in range(PER_POOL)], {"max_concurrency": 4})

    expected = N_THREADS * PER_THREAD + 4 * PER_POOL + 1
    assert sim.log.count() == expected
    assert cb.report().calls == expected
    assert_matches_simulator(cb.report(), sim)


def test_threads_started_by_threads_of_the_block(sim: GatewaySimulator) -> None:
    llm = model(sim)

    def outer(t: int) -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda i: call(llm, i), range(3)))
        run_threads(lambda i: call(llm, i), 2)

    with get_holysheep_callback(pricebook=BOOK) as cb:
        run_threads(outer, 3)
    assert cb.report().calls == sim.log.count() == 3 * 5
    assert_matches_simulator(cb.report(), sim)


def test_concurrent_blocks_in_two_threads_see_only_their_own(
    sim: GatewaySimulator,
) -> None:
    names = ["gpt-4.1", "deepseek-v3.2"]
    outsider = model(sim, "claude-sonnet-4.5")
    both_open = threading.Barrier(3)
    done = threading.Barrier(3)
    reports: dict[str, SpendReport] = {}
    pool = ThreadPoolExecutor(4)  # shared by both blocks

    def block(name: str) -> None:
        llm = model(sim, name)
        with get_holysheep_callback(pricebook=BOOK) as cb:
            both_open.wait()
            run_threads(lambda t: call(llm, t), 3)
            for f in [pool.submit(call, llm, i) for i in range(6)]:
                f.result()
            done.wait()
        reports[name] = cb.report()

    def not_started_by_a_block() -> None:
        both_open.wait()
        for i in range(5):
            call(outsider, i)
        for f in [pool.submit(call, outsider, i) for i in range(3)]:
            f.result()
        done.wait()

    with pool:
        threads = [threading.Thread(target=block, args=(n,)) for n in names]
        threads.append(threading.Thread(target=not_started_by_a_block))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sim.log.count() == 2 * 9 + 8
    for name in names:
        assert reports[name].calls == 9
        assert_model_matches(reports[name], sim, name)


def test_pooled_threads_do_not_keep_a_closed_block(sim: GatewaySimulator) -> None:
    llm = model(sim)
    with ThreadPoolExecutor(2) as pool:
        with get_holysheep_callback(pricebook=BOOK) as cb:
            # the pool and its worker threads are created inside the block
            inside = {f.result() for f in [pool.submit(_called, llm) for _ in range(6)]}
        after = {f.result() for f in [pool.submit(_called, llm) for _ in range(6)]}
    assert after <= inside  # the same worker threads made the later calls
    assert sim.log.count() == 12
    assert_records_match(cb.report(), sim.log.records()[:6])


def _called(llm: ChatHolySheep) -> int:
    llm.invoke("pooled")
    return threading.get_ident()


def test_a_thread_started_in_a_block_belongs_to_it_for_its_life(
    sim: GatewaySimulator,
) -> None:
    llm = model(sim)
    go = threading.Event()

    def later() -> None:
        go.wait()
        llm.invoke("after the block closed")

    with get_holysheep_callback(pricebook=BOOK) as cb:
        thread = threading.Thread(target=later)
        thread.start()
    go.set()
    thread.join()
    # like an asyncio task created in the block
    assert cb.report().calls == sim.log.count() == 1
    assert_matches_simulator(cb.report(), sim)


def test_process_scope_sees_a_thread_started_before_it(sim: GatewaySimulator) -> None:
    llm = model(sim)
    jobs: queue.Queue[int | None] = queue.Queue()
    finished: queue.Queue[int] = queue.Queue()

    def server_thread() -> None:
        while (n := jobs.get()) is not None:
            for i in range(n):
                call(llm, i)
            finished.put(n)

    def send(n: int) -> None:
        jobs.put(n)
        assert finished.get(timeout=60) == n

    thread = threading.Thread(target=server_thread)
    thread.start()
    with ThreadPoolExecutor(2) as pool:
        send(3)  # before the block: not counted
        with get_holysheep_callback(scope="process", pricebook=BOOK) as cb:
            send(5)
            list(pool.map(lambda i: call(llm, i), range(4)))
            llm.invoke("from the block's own thread")
            with get_holysheep_callback(pricebook=BOOK) as inner:
                run_threads(lambda i: call(llm, i), 2)
                send(2)  # seen by the process block, not by the inner one
        send(4)  # after the block: not counted
    jobs.put(None)
    thread.join()

    assert sim.log.count() == 3 + 5 + 4 + 1 + 2 + 2 + 4
    assert cb.report().calls == 5 + 4 + 1 + 2 + 2
    assert inner.report().calls == 2
    # the calls of the block are the simulator's 4th to 17th, in this order
    assert_records_match(cb.report(), sim.log.records()[3:17])


def test_nested_process_blocks_count_each_call_once(sim: GatewaySimulator) -> None:
    llm = model(sim)
    with get_holysheep_callback(scope="process", pricebook=BOOK) as outer:
        run_threads(lambda i: call(llm, i), 2)
        with (
            get_holysheep_callback(scope="process", pricebook=BOOK) as inner,
            get_holysheep_callback(pricebook=BOOK) as local,
        ):
            run_threads(lambda i: call(llm, i), 3)
        llm.batch(["a", "b"])
    assert sim.log.count() == 7
    assert local.report().calls == inner.report().calls == 3
    assert_matches_simulator(outer.report(), sim)


@pytest.mark.parametrize("in_block", [False, True])
def test_env_tracking_sees_every_thread(
    sim: GatewaySimulator,
    monkeypatch: pytest.MonkeyPatch,
    pool_before: ThreadPoolExecutor,
    in_block: bool,
) -> None:
    monkeypatch.setattr(context, "_atexit_registered", True)  # no report at exit
    monkeypatch.setenv(context.TRACK_SPEND_ENV, "1")
    reset_global_tracker()
    llm = model(sim)
    go = threading.Event()

    def started_before() -> None:
        go.wait()
        call(llm, 7)

    earlier = threading.Thread(target=started_before)
    earlier.start()
    block = get_holysheep_callback(pricebook=BOOK) if in_block else nullcontext()
    try:
        with block as cb:
            go.set()
            earlier.join()
            run_threads(lambda i: call(llm, i), 3)
            for f in [pool_before.submit(call, llm, i) for i in range(4)]:
                f.result()
            asyncio.run(llm.ainvoke("async"))
        assert sim.log.count() == 1 + 3 + 4 + 1
        report = global_tracker().report()
        assert report.calls == report.attempts == sim.log.count()
        billed = sim.log.billed()
        assert (report.input_tokens, report.output_tokens) == (
            billed.prompt_tokens,
            billed.completion_tokens,
        )
        if cb is not None:  # the block saw its calls, not the earlier thread's
            assert_records_match(cb.report(), sim.log.records()[1:])
    finally:
        reset_global_tracker()
