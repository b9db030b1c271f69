"""The SQLite store agrees with the memory store on random operation sequences."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings

from langchain_holysheep.state import MemoryStore, SQLiteStore
from tests.unit_tests.state._differential import OPERATIONS, next_tag, run
from tests.unit_tests.state._suite import ManualClock


def test_sqlite_agrees_with_memory(tmp_path: Path) -> None:
    clock = ManualClock()
    reference = MemoryStore(clock=clock)
    sqlite = SQLiteStore(tmp_path / "state.db", clock=clock)

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(OPERATIONS)
    def check(ops: list[tuple[object, ...]]) -> None:
        start = clock.now
        expected = run(reference, clock, ops, next_tag())
        clock.now = start
        assert run(sqlite, clock, ops, next_tag()) == expected
        clock.advance(10_000)

    check()
    sqlite.close()
