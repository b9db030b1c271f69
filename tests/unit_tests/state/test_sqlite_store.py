"""What only the SQLite store does: a file that outlives processes, and its locks."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest

from langchain_holysheep.state import (
    BreakerSpec,
    GuardedStore,
    Reservation,
    SQLiteStore,
    StateStoreUnavailableError,
    StoreEvent,
)

D = Decimal


def test_a_new_store_on_the_same_file_sees_the_days_spend(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "deep" / "state.db")
    res = first.reserve("team", "2026-11-30", D("0.4"), D("5"), 60, window_ttl=90000)
    assert isinstance(res, Reservation)
    first.settle(res, D("0.25"))
    first.close()
    again = SQLiteStore(tmp_path / "deep" / "state.db")
    assert again.spent("team", "2026-11-30") == D("0.25")
    assert again.url == f"sqlite:///{tmp_path}/deep/state.db"
    mode = sqlite3.connect(tmp_path / "deep" / "state.db").execute(
        "PRAGMA journal_mode"
    )
    assert mode.fetchone()[0] == "wal"


def test_a_held_write_lock_makes_the_store_unavailable_then_it_recovers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    events: list[StoreEvent] = []
    store = GuardedStore(
        SQLiteStore(path, timeout=0.1), on_alert=events.append, retry_interval=0.01
    )
    assert store.reserve("b", "w", D("0.1"), D("1"), 60).admitted
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process stuck in a transaction
    with pytest.raises(StateStoreUnavailableError) as err:
        store.reserve("b", "w", D("0.1"), D("1"), 60)
    assert "database is locked" in str(err.value) and "writable" in str(err.value)
    assert store.record_failure("k", BreakerSpec()).failures == 1  # local breaker
    blocker.execute("ROLLBACK")
    blocker.close()
    deadline = time.monotonic() + 5
    while not store.available:  # tried again every 10 ms; no fixed sleep
        assert time.monotonic() < deadline, "no recovery within 5 s"
        with contextlib.suppress(StateStoreUnavailableError):
            store.reserve("b", "w", D("0.1"), D("1"), 60)
    assert [e.available for e in events] == [False, True]
    assert store.usage("b", "w").reserved == D("0.2")


def test_an_unusable_path_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    store = SQLiteStore(tmp_path / "file" / "state.db")
    with pytest.raises(StateStoreUnavailableError):
        store.usage("b", "w")


def test_close_and_reopen(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    store.charge("b", "w", D("1"))
    store.close()
    assert store.spent("b", "w") == D("1")  # reconnects on use
