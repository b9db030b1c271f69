from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest

from langchain_holysheep.spend.monitoring._alerts import (
    DEFAULT_RULES,
    Alert,
    AlertMonitor,
    AlertRule,
    WebhookHook,
    log_hook,
)
from langchain_holysheep.spend.records import CallRecord
from langchain_holysheep.spend.tracking._tracker import SpendTracker

D = Decimal


def call(
    t: SpendTracker,
    *,
    ok: bool = True,
    latency: float = 50.0,
    fallback: bool = False,
    cost: str = "0",
) -> None:
    base = {
        "timestamp": 0.0,
        "run_id": "r",
        "requested_model": "m",
        "served_model": "m",
    }
    recs = []
    if fallback:
        recs.append(CallRecord(**base, outcome="error", cost=D(0)))
    recs.append(
        CallRecord(
            **base,
            outcome="ok" if ok else "error",
            cost=D(cost),
            latency_ms=latency,
            is_fallback=fallback,
        )
    )
    t.record_call(recs)


def test_default_rules_are_the_documents_thresholds() -> None:
    rules = {r.name: r.describe() for r in DEFAULT_RULES}
    assert rules == {
        "success_rate_low": "success_rate < 0.99",
        "p99_latency_high": "p99_latency_ms > 500.0",
        "cost_per_hour_high": "cost_per_hour > 50",
        "error_rate_high": "error_rate > 0.01",
        "failover_rate_high": "failover_rate > 0.1",
        "latency_high": "mean_latency_ms > 1000.0",
    }


def test_fires_once_per_breach_and_rearms() -> None:
    t = SpendTracker()
    sent: list[Alert] = []
    rule = AlertRule("success", "success_rate", "<", 0.99, min_calls=10)
    m = AlertMonitor(t, [rule], hooks=[sent.append], notify_resolved=True)
    for _ in range(9):
        call(t, ok=False)
    assert m.evaluate() == []  # too few calls to judge
    call(t, ok=False)
    assert [a.state for a in m.evaluate()] == ["firing"]
    assert m.evaluate() == [] and m.firing == {"success"}  # once per breach
    for _ in range(2000):
        call(t)
    assert [a.state for a in m.evaluate()] == ["resolved"]
    for _ in range(1000):
        call(t, ok=False)
    assert [a.state for a in m.evaluate()] == ["firing"]  # re-armed
    assert [a.state for a in sent] == ["firing", "resolved", "firing"]
    assert "success_rate" in sent[0].message and "breached" in sent[0].message
    assert "recovered" in sent[1].message


def test_each_default_rule_can_fire() -> None:
    t = SpendTracker()
    m = AlertMonitor(t, hooks=[])
    for i in range(100):
        call(t, ok=i % 10 != 0, latency=2000.0, fallback=i % 4 == 0, cost="1")
    names = {a.rule.name for a in m.evaluate()}
    assert names == {r.name for r in DEFAULT_RULES}


def test_monitor_as_sink_rate_limits_and_hooks_are_safe(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    t = SpendTracker()

    def broken(alert: Alert) -> None:
        raise RuntimeError("hook down")

    m = AlertMonitor(
        t,
        [AlertRule("cost", "cost_per_hour", ">", D(1), min_calls=0)],
        hooks=[broken, log_hook()],
        min_interval=5,
        clock=lambda: now[0],
    )
    t.add_sink(m)
    with caplog.at_level(logging.WARNING):
        call(t, cost="2")  # evaluated: fires
        assert m.firing == {"cost"}
    assert "hook down" not in caplog.text or "alert hook" in caplog.text
    assert "HolySheep alert cost breached" in caplog.text
    m._firing.clear()
    call(t)  # within min_interval: not evaluated
    assert m.firing == set()
    now[0] = 10
    call(t)
    assert m.firing == {"cost"}


def test_bad_rules_rejected() -> None:
    t = SpendTracker()
    with pytest.raises(ValueError, match="unique"):
        AlertMonitor(t, [AlertRule("a", "error_rate", ">", 0.1)] * 2)
    with pytest.raises(ValueError, match="op"):
        AlertMonitor(t, [AlertRule("a", "error_rate", "=", 0.1)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http"):
        WebhookHook("file:///etc/passwd")


def test_webhook_posts_json_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Response:
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *a: object) -> None: ...

        def read(self) -> bytes:
            return b""

    def fake_urlopen(request: Any, timeout: float) -> Response:
        seen.update(
            url=request.full_url,
            body=json.loads(request.data),
            timeout=timeout,
            auth=request.get_header("Authorization"),
        )
        return Response()

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    hook = WebhookHook(
        "https://hooks.example/x", timeout=1.5, headers={"Authorization": "Bearer t"}
    )
    rule = AlertRule("cost", "cost_per_hour", ">", D(50), min_calls=0)
    hook(Alert(rule, "firing", D("75.5"))).join(5)
    assert seen["url"] == "https://hooks.example/x" and seen["timeout"] == 1.5
    assert seen["body"]["alert"] == "cost" and seen["body"]["value"] == "75.5"
    assert "breached" in seen["body"]["text"] and seen["auth"] == "Bearer t"


def test_webhook_failures_are_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(request: Any, timeout: float) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr("urllib.request.urlopen", refuse)
    rule = AlertRule("e", "error_rate", ">", 0.01)
    WebhookHook("http://127.0.0.1:9/")(Alert(rule, "firing", 0.5)).join(5)
    assert "webhook failed" in caplog.text
