"""Fixtures of the resilience unit tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_holysheep.state import MemoryStore, SQLiteStore, StateStore
from tests.unit_tests.resilience.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["local", "memory-store", "sqlite-store"])
def state(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> Iterator[StateStore | str]:
    """Where breakers and limits live: in-process objects, or a store on `clock`.

    The same breaker and rate-limit tests run on each: the store decides
    where the state lives, never what it means. (The Redis run of these
    tests is in `tests/integration_tests/resilience/test_shared_state_redis.py`.)
    """
    if request.param == "local":
        yield "memory://"
    elif request.param == "memory-store":
        yield MemoryStore(clock=clock)
    else:
        store = SQLiteStore(tmp_path / "state.db", clock=clock)
        yield store
        store.close()
