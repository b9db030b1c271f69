from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest

from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.records import CallRecord, TokenUsage
from langchain_holysheep.spend.tracking._sinks import ListSink, RecordSink, close_sink
from langchain_holysheep.spend.tracking._summary import SpendReport
from langchain_holysheep.spend.tracking._tracker import (
    SpendTracker,
    global_tracker,
    reset_global_tracker,
)

D = Decimal


def rec(model: str, outcome: str = "ok", **kw) -> CallRecord:  # type: ignore[no-untyped-def]
    base = {
        "timestamp": 0.0,
        "run_id": "r",
        "requested_model": "gpt-4.1",
        "served_model": model,
        "outcome": outcome,
    }
    return CallRecord(**{**base, **kw})


def test_record_sink_protocol() -> None:
    sink = ListSink()
    assert isinstance(sink, RecordSink)
    close_sink(sink)  # no close(): fine

    class Closing:
        closed = False

        def record(self, rec: CallRecord) -> None: ...

        def close(self) -> None:
            self.closed = True

    c = Closing()
    close_sink(c)
    assert c.closed


def test_aggregates_and_report() -> None:
    sink = ListSink()
    t = SpendTracker(sinks=[sink])
    assert t.failover_rate is None and t.cost_per_1k_requests is None
    # call 1: ok on gpt-4.1
    t.record_call(
        [
            rec(
                "gpt-4.1",
                usage=TokenUsage(1000, 500, 200, 50),
                cost=D("0.02"),
                latency_ms=100.0,
                ttft_ms=20.0,
            )
        ]
    )
    # call 2: two failed attempts (one retry), then a fallback answers
    t.record_call(
        [
            rec("gpt-4.1", "error", cost=D(0), error="APIError (503)", attempt=1),
            rec("gpt-4.1", "error", cost=D(0), attempt=2, is_retry=True),
            rec(
                "deepseek-v3.2",
                usage=TokenUsage(100, 10),
                cost=D("0.0000588"),
                attempt=3,
                is_fallback=True,
                latency_ms=300.0,
            ),
        ]
    )
    # call 3: fails; call 4: unpriced model
    t.record_call([rec("gpt-4.1", "error", cost=D(0))])
    t.record_call(
        [rec("mystery", usage=TokenUsage(10, 10), cost=None, latency_ms=50.0)]
    )
    t.record_rejected(2)
    r = t.report()
    assert isinstance(r, SpendReport)
    assert (r.calls, r.successes, r.failures, r.rejected) == (4, 3, 1, 2)
    assert (r.attempts, r.failed_attempts, r.retries, r.fallbacks) == (6, 3, 1, 1)
    assert r.cost == D("0.0200588") == t.total_cost
    assert r.unpriced_calls == 1 and r.unpriced_tokens == 20
    assert (r.input_tokens, r.cached_tokens, r.output_tokens, r.reasoning_tokens) == (
        1110,
        200,
        520,
        50,
    )
    assert r.success_rate == 0.75 and r.error_rate == 0.5
    assert r.failover_rate == 0.25 == t.failover_rate
    assert r.cost_per_1k_requests == D("5.0147") == t.cost_per_1k_requests
    assert r.latency_ms.count == 3 and r.ttft_ms.count == 1
    assert [m.model for m in r.models] == ["gpt-4.1", "deepseek-v3.2", "mystery"]
    gpt = r.model("gpt-4.1")
    assert gpt is not None
    assert (gpt.requests, gpt.successes, gpt.failures, gpt.retries) == (4, 1, 3, 1)
    assert r.model("deepseek-v3.2").fallbacks == 1  # type: ignore[union-attr]
    mystery = r.model("mystery")
    assert mystery is not None and mystery.cost is None and not mystery.priced
    assert r.model("nope") is None
    assert len(sink.records) == 6
    assert r.cost_settlement == r.cost  # ¥1 = $1
    data = r.to_dict()
    json.dumps(data)
    assert data["cost"] == "0.0200588" and data["models"][2]["cost"] is None
    recent = t.recent()
    assert (recent.calls, recent.failures, recent.fallbacks) == (4, 1, 1)
    assert recent.cost == D("0.0200588") and recent.cost_per_hour == recent.cost
    assert recent.success_rate == 0.75 and recent.error_rate == 0.5
    assert recent.failover_rate == 0.25
    t.reset()
    assert t.report().calls == 0 and t.sinks == [sink]


def test_render_plain_and_rich() -> None:
    t = SpendTracker()
    t.record_call(
        [
            rec(
                "gpt-4.1",
                usage=TokenUsage(1234, 56),
                cost=D("0.011216"),
                latency_ms=12.5,
            )
        ]
    )
    t.record_call([rec("mystery", usage=TokenUsage(1, 1), cost=None)])
    r = t.report()
    plain = r.render(use_rich=False)
    assert "gpt-4.1" in plain and "1,234" in plain and "$0.011216" in plain
    assert "TOTAL" in plain and "unpriced: 1 calls" in plain and "¥0.0112" in plain
    assert "success rate 100.00%" in plain
    fancy = str(r)
    assert "gpt-4.1" in fancy and "HolySheep spend" in fancy
    empty = SpendTracker().report().render(use_rich=False)
    assert "calls 0" in empty


def test_sink_errors_do_not_break_tracking(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def record(self, rec: CallRecord) -> None:
            raise RuntimeError("disk full")

        def close(self) -> None:
            raise RuntimeError("close failed")

    t = SpendTracker()
    t.add_sink(Broken())
    t.add_sink(ok := ListSink())
    t.record_call([rec("gpt-4.1", cost=D(1))])
    assert t.total_cost == 1 and len(ok.records) == 1
    assert "spend sink" in caplog.text
    t.close()
    assert "closing spend sink" in caplog.text
    t.remove_sink(ok, close=True)
    assert ok not in t.sinks


def test_concurrent_recording_is_exact() -> None:
    t = SpendTracker(PriceBook())

    def work() -> None:
        for _ in range(1000):
            t.record_call(
                [
                    rec(
                        "gpt-4.1",
                        usage=TokenUsage(3, 2),
                        cost=D("0.000072"),
                        latency_ms=1.0,
                    )
                ]
            )

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    r = t.report()
    assert r.calls == 8000 and r.input_tokens == 24000
    assert r.cost == D("0.000072") * 8000


def test_global_tracker_is_shared() -> None:
    assert global_tracker() is global_tracker()
    global_tracker().record_call([rec("gpt-4.1", cost=D(1))])
    reset_global_tracker()
    assert global_tracker().report().calls == 0
    assert "SpendTracker" in repr(global_tracker())
