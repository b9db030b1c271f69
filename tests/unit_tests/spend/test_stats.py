from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_holysheep.spend.tracking._stats import (
    LogHistogram,
    RecentHistogram,
    SlidingCounter,
)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: r.lognormvariate(4, 1.2),  # latency-like, ms
        lambda r: r.uniform(0.5, 30_000),
        lambda r: r.expovariate(1 / 200),
        lambda r: r.choice([1.0, 10.0, 100.0, 1000.0]),
    ],
)
def test_quantiles_within_two_percent(draw) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(42)
    values = [draw(rng) for _ in range(20_000)]
    h = LogHistogram()
    for v in values:
        h.add(v)
    for q in (0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        est, ref = h.quantile(q), exact(values, q)
        assert est is not None
        assert abs(est - ref) <= 0.02 * ref, (q, est, ref)
    assert h.count == len(values)
    assert h.mean == pytest.approx(sum(values) / len(values))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.01, 1e6), min_size=1, max_size=300), st.floats(0, 1))
def test_quantile_property(values: list[float], q: float) -> None:
    h = LogHistogram()
    for v in values:
        h.add(v)
    est, ref = h.quantile(q), exact(values, q)
    assert est is not None
    assert abs(est - ref) <= 0.02 * ref
    assert min(values) <= est <= max(values)


def test_memory_is_bounded() -> None:
    h = LogHistogram()
    assert h.quantile(0.5) is None and h.mean is None
    for i in range(200_000):
        h.add((i % 5000) * 1.37)
    size = len(h._counts or [])
    for v in (1e-9, 1e12, 0.0):
        h.add(v)
    assert len(h._counts or []) == size < 2_500  # fixed, whatever the sample count
    h.add(float("nan"))
    h.add(-1.0)
    assert h.count == 200_003


def test_merge_and_copy() -> None:
    a, b = LogHistogram(), LogHistogram()
    for v in range(1, 101):
        (a if v % 2 else b).add(float(v))
    c = a.copy()
    c.merge(b)
    c.merge(LogHistogram())
    assert c.count == 100 and c.min == 1 and c.max == 100
    assert c.quantile(0.5) == pytest.approx(50, rel=0.02)
    assert a.count == 50


def test_recent_histogram_rotates() -> None:
    now = [1000.0]
    h = RecentHistogram(period=60, clock=lambda: now[0])
    h.add(5.0)
    now[0] += 60
    h.add(7.0)
    assert h.snapshot().count == 2
    now[0] += 60
    assert h.snapshot().count == 1
    now[0] += 600
    assert h.snapshot().count == 0


def test_sliding_counter_forgets_old_slots() -> None:
    now = [10_000.0]
    c = SlidingCounter(span=3600, slots=60, clock=lambda: now[0])
    c.add(calls=1, cost=Decimal("0.5"))
    now[0] += 1800
    c.add(calls=2, cost=Decimal("0.25"))
    assert c.totals() == {"calls": 3, "cost": Decimal("0.75")}
    now[0] += 1800
    assert c.totals() == {"calls": 2, "cost": Decimal("0.25")}
    now[0] += 7200
    assert c.totals() == {}
