"""PrometheusSink: counters and histograms equal the records fed to it."""

from __future__ import annotations

import builtins
import importlib
import sys
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from langchain_holysheep.spend.monitoring._prometheus import PrometheusSink
from langchain_holysheep.spend.tracking._sinks import RecordSink

from .conftest import make_record, random_records


def _value(reg: CollectorRegistry, name: str, **labels: str) -> float:
    return reg.get_sample_value(name, labels) or 0.0


def test_counters_equal_the_records() -> None:
    reg = CollectorRegistry()
    sink = PrometheusSink(registry=reg)
    assert isinstance(sink, RecordSink)
    recs = random_records(1_000, seed=3)
    sink.record_many(recs[:10])
    for rec in recs[10:]:
        sink.record(rec)

    by_outcome = Counter((r.served_model, r.outcome) for r in recs)
    for (model, outcome), n in by_outcome.items():
        assert (
            _value(reg, "holysheep_requests_total", model=model, outcome=outcome) == n
        )
    for model in {r.served_model for r in recs}:
        mine = [r for r in recs if r.served_model == model]
        for kind in ("input", "cached", "output", "reasoning"):
            want = sum(getattr(r.usage, kind) for r in mine)
            assert _value(reg, "holysheep_tokens_total", model=model, kind=kind) == want
        assert _value(reg, "holysheep_unpriced_requests_total", model=model) == sum(
            r.cost is None for r in mine
        )
        assert _value(reg, "holysheep_retries_total", model=model) == sum(
            r.is_retry for r in mine
        )
        for cur in ("USD", "CNY"):
            exact = sum(
                (r.cost for r in mine if r.cost is not None and r.currency == cur),
                Decimal(0),
            )
            assert sink.cost(model, cur) == exact
            assert _value(
                reg, "holysheep_cost_total", model=model, currency=cur
            ) == float(exact)
        lat = [r.latency_ms / 1000 for r in mine if r.latency_ms is not None]
        assert _value(reg, "holysheep_latency_seconds_count", model=model) == len(lat)
        assert _value(
            reg, "holysheep_latency_seconds_sum", model=model
        ) == pytest.approx(sum(lat))
        under_1s = sum(x <= 1.0 for x in lat)
        assert (
            _value(reg, "holysheep_latency_seconds_bucket", model=model, le="1.0")
            == under_1s
        )
        ttft = [r for r in mine if r.ttft_ms is not None]
        assert _value(reg, "holysheep_ttft_seconds_count", model=model) == len(ttft)
    fallbacks = Counter(
        (r.requested_model, r.served_model) for r in recs if r.is_fallback
    )
    for (requested, model), n in fallbacks.items():
        assert (
            _value(
                reg, "holysheep_fallbacks_total", requested_model=requested, model=model
            )
            == n
        )
    # the exposition parses
    names = {
        f.name for f in text_string_to_metric_families(generate_latest(reg).decode())
    }
    assert {
        "holysheep_requests",
        "holysheep_cost",
        "holysheep_latency_seconds",
    } <= names


def test_unpriced_is_not_zero_cost() -> None:
    reg = CollectorRegistry()
    sink = PrometheusSink(registry=reg, namespace="hs")
    sink.record(make_record(served_model="mystery", cost=None))
    assert _value(reg, "hs_unpriced_requests_total", model="mystery") == 1
    assert (
        reg.get_sample_value("hs_cost_total", {"model": "mystery", "currency": "USD"})
        is None
    )


def test_budget_gauges_are_read_at_scrape() -> None:
    reg = CollectorRegistry()
    sink = PrometheusSink(registry=reg)
    state: dict[str, Any] = {"spent": Decimal("1.25")}
    sink.track_budget("daily", lambda: (state["spent"], Decimal("10")))
    sink.track_budget("open", lambda: (Decimal("3"), None))
    sink.track_budget("broken", lambda: 1 / 0)  # type: ignore[arg-type, return-value]
    assert _value(reg, "holysheep_budget_spent", budget="daily") == 1.25
    assert _value(reg, "holysheep_budget_remaining", budget="daily") == 8.75
    state["spent"] = Decimal("9.5")
    assert _value(reg, "holysheep_budget_remaining", budget="daily") == 0.5
    assert _value(reg, "holysheep_budget_spent", budget="open") == 3
    assert reg.get_sample_value("holysheep_budget_limit", {"budget": "open"}) is None
    assert reg.get_sample_value("holysheep_budget_spent", {"budget": "broken"}) is None
    sink.untrack_budget("daily")
    assert reg.get_sample_value("holysheep_budget_spent", {"budget": "daily"}) is None


def test_one_sink_per_registry_and_close_unregisters() -> None:
    reg = CollectorRegistry()
    sink = PrometheusSink(registry=reg)
    with pytest.raises(ValueError, match="already registered"):
        PrometheusSink(registry=reg)
    sink.close()
    again = PrometheusSink(registry=reg)  # the names are free again
    again.record(make_record())
    assert _value(reg, "holysheep_requests_total", model="gpt-4.1", outcome="ok") == 1


def test_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_prometheus(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("prometheus_client"):
            raise ImportError("No module named 'prometheus_client'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_prometheus)
    monkeypatch.delitem(sys.modules, "langchain_holysheep.spend.monitoring._prometheus")
    with pytest.raises(
        ImportError, match=r"pip install 'langchain-holysheep\[metrics\]'"
    ):
        importlib.import_module("langchain_holysheep.spend.monitoring._prometheus")
