"""A store's budget answers are the frozen values their classes describe."""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal

import pytest

from langchain_holysheep.state import MemoryStore, Reservation, Settlement


def test_answers_are_whole_frozen_dataclasses() -> None:
    store = MemoryStore(clock=lambda: 100.0)
    res = store.reserve("k", "w", Decimal("0.5"), Decimal("1"), 30.0, window_ttl=9.0)
    assert isinstance(res, Reservation)
    assert res == Reservation("k", "w", res.id, Decimal("0.5"), 30.0, 130.0, 30.0)
    every = {f.name: getattr(res, f.name) for f in dataclasses.fields(res)}
    assert vars(res) == every  # every field set, fallback included
    assert pickle.loads(pickle.dumps(res)) == res and hash(res) == hash(
        dataclasses.replace(res)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.amount = Decimal(0)  # type: ignore[misc]
    done = store.settle(res, Decimal("0.2"))
    assert done == Settlement(Decimal("0.2"), Decimal(0), Decimal("0.2"))
    assert vars(done) == dataclasses.asdict(done) and not done.deferred
    assert done.spent_before == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        done.late = True  # type: ignore[misc]


def test_bad_arguments_are_refused_in_order() -> None:
    store = MemoryStore()
    one = Decimal(1)
    with pytest.raises(ValueError, match="non-empty str"):
        store.reserve("", "w", Decimal("-1"), one, 0)
    with pytest.raises(ValueError, match="amount must be"):
        store.reserve("k", "w", Decimal("-1"), one, 0, window_ttl=-1)
    with pytest.raises(ValueError, match="window_ttl"):
        store.reserve("k", "w", one, Decimal("NaN"), 0, window_ttl=-1)
    with pytest.raises(ValueError, match="cap must be"):
        store.reserve("k", "w", one, Decimal("NaN"), 0)
    with pytest.raises(ValueError, match="lease_seconds"):
        store.reserve("k", "w", one, one, float("inf"))
    with pytest.raises(ValueError, match="lease_seconds"):
        store.reserve("k", "w", one, one, True)  # type: ignore[arg-type]
