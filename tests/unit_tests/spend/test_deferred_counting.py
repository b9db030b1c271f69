"""A tracker counts calls in batches: what a read, an alert and memory see.

A call is queued when it ends and folded into the totals by the next read (or
once `FOLD_AT` calls wait); these tests hold the guarantees that must not
change: every read sees every call that ended before it, in any thread; an
alert fires at the call that breaches its rule; the queue stays bounded; the
recent window counts a call where it ended.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

import pytest

from langchain_holysheep.spend import (
    AlertMonitor,
    AlertRule,
    HolySheepCallbackHandler,
    SpendTracker,
)
from langchain_holysheep.spend.records import CallRecord, TokenUsage
from langchain_holysheep.spend.tracking._tracker import FOLD_AT

from .conftest import FakeChat

COST = Decimal("0.02")  # gpt-4.1: 1000 in x $8/M + 500 out x $24/M


def record(cost: str = "1", latency_ms: float | None = 5.0) -> CallRecord:
    return CallRecord(
        timestamp=0.0,
        run_id="r",
        requested_model="m",
        served_model="m",
        outcome="ok",
        usage=TokenUsage(3, 2),
        cost=Decimal(cost),
        latency_ms=latency_ms,
    )


def test_each_read_sees_every_call_that_ended_before_it(fake: FakeChat) -> None:
    tracker = SpendTracker()
    config = {"callbacks": [HolySheepCallbackHandler(tracker=tracker)]}
    for i in range(1, 2 * FOLD_AT + 2):
        fake.invoke("x", config=config)  # type: ignore[arg-type]
        assert tracker.report().calls == i
        assert tracker.total_cost == COST * i
        assert tracker.usage_metadata["gpt-4.1"]["input_tokens"] == 1000 * i
        assert tracker.recent().calls == i


def test_reads_from_many_threads_are_exact_and_consistent(fake: FakeChat) -> None:
    tracker = SpendTracker()
    config = {"callbacks": [HolySheepCallbackHandler(tracker=tracker)]}
    per_thread, writers = 150, 6
    failures: list[str] = []
    done = threading.Event()

    def write() -> None:
        for i in range(1, per_thread + 1):
            fake.invoke("x", config=config)  # type: ignore[arg-type]
            seen = tracker.report().calls  # other threads only add calls
            if seen < i:
                failures.append(f"a writer's read saw {seen} calls after its {i}th")

    def read() -> None:
        last = 0
        while not done.is_set():
            r = tracker.report()  # one snapshot: no call half counted
            if r.calls < last or r.cost != COST * r.calls:
                failures.append(f"{r.calls} calls after {last}, cost {r.cost}")
            if r.input_tokens != 1000 * r.calls:
                failures.append(f"{r.input_tokens} input tokens, {r.calls} calls")
            last = r.calls

    readers = [threading.Thread(target=read) for _ in range(2)]
    threads = [threading.Thread(target=write) for _ in range(writers)]
    for t in readers + threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    for t in readers:
        t.join()
    assert failures == []
    total = per_thread * writers
    r = tracker.report()
    assert (r.calls, r.successes, r.cost) == (total, total, COST * total)
    assert r.latency_ms.count == total and tracker.recent().calls == total
    assert tracker.usage_metadata["gpt-4.1"]["output_tokens"] == 500 * total


@pytest.mark.parametrize("failing", [False, True])
def test_an_alert_fires_at_the_call_that_breaches_it(failing: bool) -> None:
    tracker = SpendTracker()
    sent: list[str] = []
    rule = (
        AlertRule("errors", "error_rate", ">", 0.5, min_calls=5)
        if failing
        else AlertRule("spend", "cost_per_hour", ">", COST * 4, min_calls=0)
    )
    monitor = AlertMonitor(
        tracker, [rule], hooks=[lambda a: sent.append(a.state)], min_interval=0
    )
    tracker.add_sink(monitor)
    config = {"callbacks": [HolySheepCallbackHandler(tracker=tracker)]}
    model = FakeChat(fail=failing)
    for i in range(1, 8):
        if failing:
            with pytest.raises(RuntimeError):
                model.invoke("x", config=config)  # type: ignore[arg-type]
        else:
            model.invoke("x", config=config)  # type: ignore[arg-type]
        assert sent == ([] if i < 5 else ["firing"]), i


def test_waiting_calls_stay_bounded() -> None:
    tracker = SpendTracker()
    for _ in range(10 * FOLD_AT + 3):
        tracker.record_call([record()])
        assert len(tracker._pending) < FOLD_AT
    assert tracker.report().calls == 10 * FOLD_AT + 3
    assert len(tracker._pending) == 0


def test_the_recent_window_counts_a_call_where_it_ended() -> None:
    now = [100_000.0]
    tracker = SpendTracker(clock=lambda: now[0])
    tracker.record_call([record("2")])  # waits, unread, while time passes
    now[0] += 120
    recent = tracker.recent()
    assert (recent.calls, recent.cost, recent.latency_ms.count) == (1, 2, 1)
    now[0] += 1680  # latency covers the last 5 to 10 minutes, counts the hour
    recent = tracker.recent()
    assert (recent.calls, recent.cost, recent.latency_ms.count) == (1, 2, 0)
    now[0] += 1860  # the minute it ended is out of the hour
    assert tracker.recent().calls == 0
    tracker.record_call([record("3")])
    now[0] += 7200  # folded only after its hour has passed: totals only
    recent = tracker.recent()
    assert (recent.calls, recent.cost, recent.latency_ms.count) == (0, 0, 0)
    assert tracker.report().calls == 2 and tracker.total_cost == 5


def test_usage_metadata_that_cannot_be_added_is_skipped_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = SpendTracker()
    good = {
        "input_tokens": 5,
        "output_tokens": 2,
        "total_tokens": 7,
        "input_token_details": {"cache_read": 1},
    }
    bad = {
        "input_tokens": 5,
        "output_tokens": 2,
        "total_tokens": 7,
        "input_token_details": {"cache_read": "one"},
    }
    with caplog.at_level(logging.ERROR):
        for usage in (good, bad, good):
            tracker.record_usage_metadata("m", usage)  # type: ignore[arg-type]
        summed = tracker.usage_metadata["m"]
    assert summed == {
        "input_tokens": 10,
        "output_tokens": 4,
        "total_tokens": 14,
        "input_token_details": {"cache_read": 2},
    }
    assert "Cannot add usage values" in caplog.text
