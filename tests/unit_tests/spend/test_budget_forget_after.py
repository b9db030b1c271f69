"""`Budget(forget_after=...)`: a short-lived budget is forgotten by its store."""

from __future__ import annotations

from decimal import Decimal

import pytest

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.spend import Budget
from langchain_holysheep.state import MemoryStore


def test_a_total_window_is_forgotten_after_its_last_write() -> None:
    now = [1_000_000.0]
    store = MemoryStore(clock=lambda: now[0])
    budget = Budget("1", key="job-7", store=store, forget_after=600, lease=60)
    budget.reserve(Decimal("0.5")).settle(Decimal("0.4"))
    now[0] += 599
    assert budget.spent() == Decimal("0.4")
    now[0] += 2
    assert budget.spent() == 0
    kept = Budget("1", key="job-8", store=store, lease=60)  # "total": kept
    kept.reserve(Decimal("0.5")).settle(Decimal("0.4"))
    now[0] += 10**8
    assert kept.spent() == Decimal("0.4")


@pytest.mark.parametrize("bad", [0, -1, float("inf"), True, "600"])
def test_forget_after_is_checked(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="forget_after must be"):
        Budget("1", forget_after=bad)  # type: ignore[arg-type]
