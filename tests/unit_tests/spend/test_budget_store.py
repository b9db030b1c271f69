"""Budgets on a state store: by argument or HOLYSHEEP_STATE_URL, shared by key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from langchain_holysheep.spend.budgets import (
    Budget,
    BudgetExceededError,
    ThresholdEvent,
)
from langchain_holysheep.state import (
    STATE_URL_ENV,
    MemoryStore,
    Reservation,
    StateStore,
    open_store,
)
from tests.unit_tests.spend.conftest import FakeChat

D = Decimal


def test_memory_by_default_one_store_per_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(STATE_URL_ENV, raising=False)
    a, b = Budget("1"), Budget("1")
    assert isinstance(a.store, MemoryStore) and a.store is not b.store
    a.reserve(D("1"))
    b.reserve(D("1"))  # same name, separate caps: nothing shared by accident


def test_state_url_env_chooses_the_store_with_no_code_change(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(STATE_URL_ENV, f"sqlite:///{tmp_path / 'state.db'}")
    a, b = Budget("1", name="team"), Budget("1", name="team")
    assert a.store.kind == "sqlite" and a.store is b.store  # one per URL
    a.reserve(D("0.6")).settle(D("0.6"))
    assert b.spent() == D("0.6")  # one cap, shared by name
    with pytest.raises(BudgetExceededError, match=r"spent \$0\.60"):
        b.reserve(D("0.5"))
    other = Budget("1", name="other", key="team")
    assert other.spent() == D("0.6")  # key= names the shared budget
    assert Budget("1", name="team2").spent() == 0


def test_thresholds_fire_once_across_budgets_sharing_a_store() -> None:
    store = MemoryStore()
    events: list[ThresholdEvent] = []
    a = Budget("1", key="k", store=store, thresholds=(0.5,), on_threshold=events.append)
    b = Budget("1", key="k", store=store, thresholds=(0.5,), on_threshold=events.append)
    a.reserve(D("0.3")).settle(D("0.3"))
    b.reserve(D("0.3")).settle(D("0.3"))  # crosses 0.5 here
    a.reserve(D("0.3")).settle(D("0.3"))  # already crossed: no second event
    assert [(e.threshold, e.spent, e.window) for e in events] == [
        (0.5, D("0.6"), "total")
    ]


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def test_a_reservation_lapses_with_its_lease_unless_extended() -> None:
    clock = Clock()
    budget = Budget("1", store=MemoryStore(clock=clock), lease=10)
    held = budget.reserve(D("0.4"))
    lapsing = budget.reserve(D("0.4"))
    clock.t += 8
    held.extend()  # renewed for 10 s from now
    clock.t += 5  # 13 s after both: the second one lapsed
    assert budget.reserved() == D("0.4")
    lapsing.settle(D("0.1"))  # a settle after its lease still counts the spend
    assert budget.spent() == D("0.1")


class CountingStore(MemoryStore):
    """A real memory store that counts lease renewals."""

    def __init__(self) -> None:
        super().__init__()
        self.extended = 0

    def extend(
        self, reservation: Reservation, lease_seconds: float
    ) -> Reservation | None:
        self.extended += 1
        return super().extend(reservation, lease_seconds)


def test_streams_renew_their_lease_as_chunks_arrive(fake: FakeChat) -> None:
    store = CountingStore()
    budget = Budget("1", store=store, lease=1e-9)  # every chunk is a third of it
    from langchain_holysheep import get_holysheep_callback

    with get_holysheep_callback(budget=budget):
        list(fake.stream("x"))
    assert store.extended >= 2 and budget.reserved() == 0 and budget.spent() > 0


def test_a_store_that_raises_refuses_the_call_cleanly(fake: FakeChat) -> None:
    from langchain_holysheep import get_holysheep_callback
    from langchain_holysheep.spend.budgets import BudgetCheckError

    class Broken(MemoryStore):
        def reserve(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
            raise OSError("disk full")

    budget = Budget("1", store=Broken(), name="team")
    with (
        get_holysheep_callback(budget=budget),
        pytest.raises(
            BudgetCheckError, match=r"Budget 'team' \(window: total\).*disk full"
        ),
    ):
        fake.invoke("x")
    assert fake.calls == 0


def test_open_store_result_is_accepted(tmp_path: Path) -> None:
    store: StateStore = open_store(f"sqlite:///{tmp_path / 's.db'}")
    budget = Budget("1", store=store, window="day", name="daily")
    budget.reserve(D("0.2")).settle(D("0.2"))
    again = Budget(
        "1",
        store=open_store(f"sqlite:///{tmp_path / 's.db'}"),
        window="day",
        name="daily",
    )
    assert again.spent() == D("0.2")  # a new store on the same file: a restart
    assert "sqlite" in repr(again) and "window='day'" in repr(again)
