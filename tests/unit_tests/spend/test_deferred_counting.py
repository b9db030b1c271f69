"""A tracker counts calls in batches: what a read, an alert and memory see.

A call is queued when it ends and folded into the totals by the next read (or
once `FOLD_AT` calls wait); these tests hold the guarantees that must not
change: every read sees every call that ended before it, in any thread; an
alert fires at the call that breaches its rule; the queue stays bounded; the
recent window counts a call where it ended.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from langchain_holysheep.spend import (
    AlertMonitor,
    AlertRule,
    HolySheepCallbackHandler,
    PriceBook,
    SpendTracker,
    UnpricedModelWarning,
)
from langchain_holysheep.spend.ledger import SQLiteLedger
from langchain_holysheep.spend.records import CallRecord, TokenUsage
from langchain_holysheep.spend.tracking._sinks import ListSink
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


def _without_clocks(tracker: SpendTracker) -> dict[str, object]:
    report = tracker.report().to_dict()
    for row in [report, *report["models"]]:
        row.pop("latency_ms"), row.pop("ttft_ms")
    return report


@pytest.mark.parametrize(
    "chat",
    [
        FakeChat(),
        FakeChat(served="r1", input_tokens=100, cached=60, output_tokens=50),
        FakeChat(served="r1", output_tokens=40, reasoning=30),
    ],
)
def test_an_answer_recorded_when_counted_is_the_answer_recorded_at_once(
    chat: FakeChat,
) -> None:
    """A tracker with a sink gets the record at the call's end; one without
    builds it when it counts the call: the same record, the same totals."""
    book = PriceBook({"r1": {"input": "1.1", "output": "4.4", "cached_input": "0.275"}})
    later, at_once, sink = SpendTracker(book), SpendTracker(book), ListSink()
    at_once.add_sink(sink)
    handlers = [HolySheepCallbackHandler(tracker=t) for t in (later, at_once)]
    for _ in range(3):
        chat.invoke("x", config={"callbacks": handlers})  # type: ignore[arg-type]
    assert _without_clocks(later) == _without_clocks(at_once)
    assert later.usage_metadata == at_once.usage_metadata
    later.add_sink(seen := ListSink())
    chat.invoke("x", config={"callbacks": handlers})  # type: ignore[arg-type]
    assert _without_clocks(later) == _without_clocks(at_once)
    latest = dataclasses.replace(sink.records[-1], timestamp=0, latency_ms=0)
    assert dataclasses.replace(seen.records[0], timestamp=0, latency_ms=0) == latest
    assert latest.cost == book.cost(latest.served_model, latest.usage)


def test_an_answer_is_counted_as_it_was_when_the_call_ended() -> None:
    tracker = SpendTracker()
    answer = FakeChat().invoke(
        "x", config={"callbacks": [HolySheepCallbackHandler(tracker=tracker)]}
    )
    usage = answer.usage_metadata  # type: ignore[attr-defined]
    usage["input_tokens"] = 0  # the caller's copy, changed before any read
    usage["input_token_details"]["cache_read"] = 7
    usage["cost_usd"] = 0.02
    assert tracker.report().input_tokens == 1000 and tracker.total_cost == COST
    summed = tracker.usage_metadata["gpt-4.1"]
    assert summed["input_tokens"] == 1000 and "cost_usd" not in summed
    assert summed["input_token_details"] == {"cache_read": 0}


def test_an_unpriced_model_warns_when_its_call_ends() -> None:
    tracker = SpendTracker()
    config = {"callbacks": [HolySheepCallbackHandler(tracker=tracker)]}
    with pytest.warns(UnpricedModelWarning, match="no-such-model"):
        FakeChat(model="no-such-model").invoke("x", config=config)  # type: ignore[arg-type]
    report = tracker.report()
    assert report.calls == 1 and report.unpriced_calls == 1 and report.cost == 0


def test_a_ledger_stores_what_a_sink_gets_at_the_calls_end(tmp_path: Path) -> None:
    """With a ledger, the record is built by its writer thread: the same one."""
    sink = ListSink()
    ledger = SQLiteLedger(tmp_path / "spend.sqlite3")
    built_later = HolySheepCallbackHandler(ledger=ledger)
    assert built_later.tracker.takes_deferred
    at_once = HolySheepCallbackHandler(ledger=sink)
    chat = FakeChat(input_tokens=100, cached=60, output_tokens=50, reasoning=20)
    for _ in range(3):
        chat.invoke("x", config={"callbacks": [built_later, at_once]})
    stored = list(ledger.query())  # flushes first
    ledger.close()
    assert len(stored) == len(sink.records) == 3

    def comparable(rec: CallRecord) -> CallRecord:
        return dataclasses.replace(rec, timestamp=0, latency_ms=0)

    assert [comparable(r) for r in stored] == [comparable(r) for r in sink.records]
    assert _without_clocks(built_later.tracker) == _without_clocks(at_once.tracker)
