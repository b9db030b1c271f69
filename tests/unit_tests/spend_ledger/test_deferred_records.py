"""Calls whose records the ledger's writer thread builds (`record_deferred`)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from langchain_holysheep.spend.ledger import SQLiteLedger
from langchain_holysheep.spend.ledger.queued import QueuedLedger
from langchain_holysheep.spend.records import CallRecord
from langchain_holysheep.spend.tracking._tracker import SpendTracker

from .conftest import make_record


class Later:
    """A call whose records are built when asked for; notes who asked."""

    def __init__(self, *records: CallRecord, fail: bool = False) -> None:
        self._records, self.fail = records, fail
        self.asked_in: list[str] = []

    def records(self) -> Sequence[CallRecord]:
        self.asked_in.append(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("no price for this one")
        return self._records


def test_the_writer_thread_builds_and_stores_them(any_ledger: QueuedLedger) -> None:
    first, second, plain = make_record(), make_record(), make_record()
    calls = [Later(first), Later(second)]
    for call in calls:
        any_ledger.record_deferred(call)
    any_ledger.record(plain)
    assert [r.run_id for r in any_ledger.query()] == [
        first.run_id,
        second.run_id,
        plain.run_id,
    ]
    assert [call.asked_in for call in calls] == [["holysheep-ledger-writer"]] * 2


def test_one_that_cannot_be_built_is_logged_and_skipped(
    any_ledger: QueuedLedger, caplog: pytest.LogCaptureFixture
) -> None:
    kept = make_record()
    with caplog.at_level(logging.ERROR):
        any_ledger.record_deferred(Later(make_record(), fail=True))
        any_ledger.record_deferred(Later(kept))
        assert [r.run_id for r in any_ledger.query()] == [kept.run_id]
    assert "could not be built" in caplog.text and "no price" in caplog.text


def test_write_through_builds_and_commits_them_at_once(tmp_path: Path) -> None:
    path = tmp_path / "through.sqlite3"
    with SQLiteLedger(path, write_through=True) as ledger:
        call = Later(make_record())
        ledger.record_deferred(call)
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 1
        assert call.asked_in == [threading.current_thread().name]


def test_a_tracker_hands_them_over_only_if_every_sink_takes_them(
    ledger: SQLiteLedger, make_ledger: Callable[..., QueuedLedger]
) -> None:
    class Plain:
        def __init__(self) -> None:
            self.records: list[CallRecord] = []

        def record(self, rec: CallRecord) -> None:
            self.records.append(rec)

    tracker = SpendTracker()
    assert tracker.takes_deferred  # no sink
    tracker.add_sink(ledger)
    assert tracker.takes_deferred
    tracker.record_deferred(call := Later(make_record()))
    assert [r.run_id for r in ledger.query()] == [call._records[0].run_id]
    assert tracker.report().calls == 1
    tracker.add_sink(plain := Plain())
    assert not tracker.takes_deferred
    tracker.remove_sink(plain)
    assert tracker.takes_deferred and plain.records == []
