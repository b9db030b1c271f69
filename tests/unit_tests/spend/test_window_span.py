"""`WindowSpan`: the current window's id, remembered while the clock is inside it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_holysheep.spend.budgets import Budget
from langchain_holysheep.spend.budgets._windows import WindowSpan, window_id

ZONES = [
    timezone.utc,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-8)),
    ZoneInfo("Europe/Paris"),
    ZoneInfo("America/New_York"),
]
WINDOWS = ["hour", "day", "month", "total"]
NEW_YEAR = datetime(2027, 1, 1, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("tz", ZONES, ids=str)
@pytest.mark.parametrize("window", WINDOWS)
def test_it_agrees_with_window_id_across_boundaries(window: str, tz: object) -> None:
    span = WindowSpan(window, tz)  # type: ignore[arg-type]
    # around a new year, a month end and both 2026 daylight-saving changes
    for start in (NEW_YEAR, 1_785_542_400.0, 1_774_746_000.0, 1_793_509_200.0):
        for step in range(-400, 400):
            t = start + step * 0.0004 + (step % 7) * 900.0
            assert span.id(t) == window_id(window, t, tz)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(
    times=st.lists(st.floats(0, 4_102_444_800, allow_nan=False), max_size=20),
    window=st.sampled_from(WINDOWS),
    tz=st.sampled_from(ZONES),
)
def test_any_clock_gets_window_ids(times: list[float], window: str, tz: object) -> None:
    span = WindowSpan(window, tz)  # type: ignore[arg-type]
    for t in sorted(times) + times:  # forwards, then jumping about
        assert span.id(t) == window_id(window, t, tz)  # type: ignore[arg-type]


def test_a_budget_follows_its_clock_and_a_new_time_zone() -> None:
    now = [NEW_YEAR - 0.0001]
    budget = Budget("1", window="day", clock=lambda: now[0])
    budget.reserve(Decimal("0.25")).settle(Decimal("0.25"))
    assert budget.spent() == Decimal("0.25")
    now[0] = NEW_YEAR  # a new day: nothing spent yet
    assert budget.spent() == 0
    budget.tz = timezone(timedelta(hours=-1))  # still 2026-12-31 there
    assert budget._window_id(None) == "2026-12-31"
    assert budget.spent() == Decimal("0.25")
