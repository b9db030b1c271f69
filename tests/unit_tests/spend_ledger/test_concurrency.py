"""Many threads and asyncio tasks record at once: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

from langchain_holysheep.spend.ledger import SQLiteLedger
from langchain_holysheep.spend.records import CallRecord, TokenUsage

THREADS, PER_THREAD = 8, 5_000
TASKS, PER_TASK = 50, 200


def _rec(who: str, i: int) -> CallRecord:
    return CallRecord(
        timestamp=1_735_689_600.0 + i,
        run_id=f"{who}-{i}",
        requested_model="gpt-4.1",
        served_model="gpt-4.1",
        outcome="ok",
        usage=TokenUsage(input=i, output=1),
        cost=Decimal(i).scaleb(-9),
        tags=(who,),
    )


def test_threads_and_tasks_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite3"
    ledger = SQLiteLedger(path, batch_size=256, max_pending=2_000)
    start = threading.Barrier(THREADS + 1)

    def worker(t: int) -> None:
        start.wait()
        for i in range(PER_THREAD):
            if i % 500 == 0:
                ledger.record_many(
                    [_rec(f"m{t}", i + j) for j in range(PER_THREAD, PER_THREAD + 3)]
                )
            ledger.record(_rec(f"t{t}", i))
            if i == PER_THREAD // 2:
                ledger.flush()  # concurrent flushes are fine too

    async def task(k: int) -> None:
        for i in range(PER_TASK):
            ledger.record(_rec(f"a{k}", i))
            if i % 20 == 0:
                await asyncio.sleep(0)

    async def many_tasks() -> None:
        await asyncio.gather(*(task(k) for k in range(TASKS)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    start.wait()
    asyncio.run(many_tasks())
    for th in threads:
        th.join()
    ledger.close()

    batched = THREADS * (PER_THREAD // 500) * 3
    expected = THREADS * PER_THREAD + TASKS * PER_TASK + batched
    with sqlite3.connect(path) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT run_id) FROM calls"
        ).fetchone()
        tags = conn.execute("SELECT count(*) FROM call_tags").fetchone()[0]
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        pico = conn.execute(
            "SELECT SUM(cost_pico) FROM calls WHERE run_id LIKE 't%'"
        ).fetchone()[0]
    assert (total, distinct, tags) == (expected, expected, expected)
    assert ok == "ok"
    assert pico == THREADS * sum(range(PER_THREAD)) * 1000  # 1e-9 USD = 1000 pico
