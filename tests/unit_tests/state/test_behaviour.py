"""The behavioural suite on the memory and SQLite stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_holysheep.state import MemoryStore, SQLiteStore, StateStore
from tests.unit_tests.state._suite import ManualClock, StoreBehaviour


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "sqlite"])
def store(
    request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> Iterator[StateStore]:
    if request.param == "memory":
        yield MemoryStore(clock=clock)
        return
    store = SQLiteStore(tmp_path / "state.db", clock=clock)
    yield store
    store.close()


class TestStoreBehaviour(StoreBehaviour):
    pass
