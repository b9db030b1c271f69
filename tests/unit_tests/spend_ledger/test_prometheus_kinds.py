"""Every token kind of a model is exposed, counted or not."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry

from langchain_holysheep.spend.monitoring._prometheus import PrometheusSink
from langchain_holysheep.spend.records import TokenUsage

from .conftest import make_record


def test_kinds_without_tokens_are_exposed_at_zero() -> None:
    reg = CollectorRegistry()
    sink = PrometheusSink(registry=reg)
    sink.record(make_record(served_model="m", usage=TokenUsage(input=7, output=0)))
    sink.record(make_record(served_model="m", usage=TokenUsage(input=-3, output=2)))
    seen = {
        kind: reg.get_sample_value(
            "holysheep_tokens_total", {"model": "m", "kind": kind}
        )
        for kind in ("input", "cached", "output", "reasoning")
    }
    assert seen == {"input": 7.0, "cached": 0.0, "output": 2.0, "reasoning": 0.0}
