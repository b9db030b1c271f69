"""Several OS processes share one PostgreSQL ledger; one is killed with SIGKILL.

Four spawned processes open a new ledger at the same moment (the schema is
created once, under an advisory lock) and record concurrently: no record is
lost or doubled and the totals are exact. A process killed with `kill -9` while
it writes loses only what it had not committed: every acknowledged record is
there, the rows form a gap-free prefix, and no row is partial.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from collections import Counter
from decimal import Decimal

import pytest

from langchain_holysheep.spend.ledger import PostgresLedger
from langchain_holysheep.spend.records import CallRecord, TokenUsage
from langchain_holysheep.spend.report import ledger_report
from tests._postgres import Schemas

from ._pg_workers import expected_records, write_concurrently

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

WORKERS = 4


def test_four_processes_lose_and_duplicate_nothing(pg_schemas: Schemas) -> None:
    url = pg_schemas.new_url()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    procs = [
        ctx.Process(target=write_concurrently, args=(url, w, barrier))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=110)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    want = expected_records(WORKERS)
    with PostgresLedger(url) as ledger:
        got = list(ledger.query())
        report = ledger_report(ledger, by="key")
    assert len(got) == len(want) == WORKERS * 3_900
    assert Counter(r.run_id for r in got) == Counter(r.run_id for r in want)
    assert sorted(got, key=lambda r: r.run_id) == sorted(want, key=lambda r: r.run_id)
    total = sum((r.cost for r in want if r.cost is not None), Decimal(0))
    assert report.total.cost == total and report.total.requests == len(want)
    for row in report:  # one key per worker, each exact
        (key,) = row.key
        mine = [r for r in want if r.key_name == key]
        assert row.requests == len(mine)
        assert row.cost == sum((r.cost for r in mine if r.cost), Decimal(0))


_RECORDER = """
import sys
from decimal import Decimal
from langchain_holysheep.spend.ledger import PostgresLedger
from langchain_holysheep.spend.records import CallRecord, TokenUsage
from langchain_holysheep.spend.records import CallRecord, TokenUsage

ledger = PostgresLedger(sys.argv[1], batch_size=500, flush_interval=0.01)
j = 0
while True:  # record until killed, printing what is committed
    for _ in range(1000):
        ledger.record(CallRecord(float(j), f"r{j}", "m", "m", "ok",
                                 TokenUsage(j, 1), cost=Decimal(j).scaleb(-12),
                                 tags=("crash",), key_name="k"))
        j += 1
    ledger.flush()
    print(j, flush=True)
"""


def _crash_record(j: int) -> CallRecord:
    """The j-th record of the child, as `_RECORDER` makes it."""
    return CallRecord(
        float(j), f"r{j}", "m", "m", "ok", TokenUsage(j, 1),
        cost=Decimal(j).scaleb(-12), tags=("crash",), key_name="k",
    )  # fmt: skip


def test_sigkill_mid_batch_loses_only_uncommitted_records(pg_schemas: Schemas) -> None:
    url = pg_schemas.new_url()
    PostgresLedger(url).close()  # the schema exists before the child starts
    child = subprocess.Popen(
        [sys.executable, "-c", _RECORDER, url], stdout=subprocess.PIPE, text=True
    )
    acked = 0
    assert child.stdout is not None
    try:
        for line in child.stdout:
            acked = int(line)
            if acked >= 20_000:
                break
        os.kill(child.pid, signal.SIGKILL)  # while it keeps writing batches
    finally:
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert acked >= 20_000

    with PostgresLedger(url) as ledger:
        got = list(ledger.query())
    n = len(got)
    assert n >= acked  # everything acknowledged is there (and maybe more)
    want = [_crash_record(j) for j in range(n)]  # a gap-free prefix ...
    assert got == want  # ... of whole rows, every field as recorded
    with PostgresLedger(url) as again:  # the ledger keeps working
        again.record(next(again.query(until=1.0)))
        assert again.count() == n + 1
