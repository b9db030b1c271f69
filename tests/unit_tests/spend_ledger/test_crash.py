"""SIGKILL a recording process: what was committed is there, the file opens cleanly.

One child process (importing the package costs ~2 s) records into two ledgers
at once: a `write_through=True, durable=True` one (committed inside `record()`)
and a default queued one (committed by `flush()` every 500 records). It prints
what it knows to be committed; the test kills it mid-write with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_holysheep.spend.ledger import SQLiteLedger

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

_RECORDER = """
import sys
from decimal import Decimal
from langchain_holysheep.spend.ledger import SQLiteLedger
from langchain_holysheep.spend.records import CallRecord, TokenUsage

sync = SQLiteLedger(sys.argv[1], write_through=True, durable=True)
queued = SQLiteLedger(sys.argv[2], flush_interval=0.02)
i = 0
while True:  # record until killed, printing what is committed
    for j in range(i * 50, i * 50 + 50):
        queued.record(CallRecord(float(j), f"r{j}", "m", "m", "ok", TokenUsage(j, 1),
                                 cost=Decimal(j).scaleb(-12)))
    if i % 10 == 9:
        queued.flush()
        print("queued", i * 50 + 50, flush=True)
    sync.record(CallRecord(float(i), f"r{i}", "m", "m", "ok", TokenUsage(i, 1),
                           cost=Decimal(i).scaleb(-12)))
    i += 1
    print("sync", i, flush=True)  # committed when record() returned
"""


def _check(path: Path, acked: int) -> None:
    # The killed writer left its WAL behind; opening the file recovers it.
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n, distinct, low, high = conn.execute(
            "SELECT count(*), count(DISTINCT run_id), MIN(input_tokens), "
            "MAX(input_tokens) FROM calls"
        ).fetchone()
    assert n >= acked  # everything acknowledged is there (and maybe more)
    assert distinct == n and low == 0 and high == n - 1  # a gap-free prefix
    with SQLiteLedger(path) as ledger:  # reopens cleanly and keeps appending
        ledger.record(next(iter(ledger.query(until=1.0))))
        assert ledger.count() == n + 1


def test_sigkill_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    sync_path, queued_path = tmp_path / "sync.sqlite3", tmp_path / "queued.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", _RECORDER, str(sync_path), str(queued_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    acked = {"sync": 0, "queued": 0}
    assert child.stdout is not None
    try:
        for line in child.stdout:
            which, n = line.split()
            acked[which] = int(n)
            if acked["sync"] >= 100 and acked["queued"] >= 5_000:
                break
        os.kill(child.pid, signal.SIGKILL)  # mid-write: no atexit, no close
    finally:
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert acked["sync"] >= 100 and acked["queued"] >= 5_000
    _check(sync_path, acked["sync"])
    _check(queued_path, acked["queued"])
