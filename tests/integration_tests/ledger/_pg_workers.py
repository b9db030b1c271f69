"""Child processes of the PostgreSQL ledger tests (spawned: import-safe)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from langchain_holysheep.spend.ledger import PostgresLedger
from langchain_holysheep.spend.records import CallRecord, TokenUsage

PER_WORKER = 3_000  # record() calls per worker; every 10th also a record_many of 3


def worker_record(worker: int, i: int) -> CallRecord:
    """The i-th record of a worker: a cost of i nano-dollars, one tag, a key."""
    return CallRecord(
        timestamp=1_735_689_600.0 + i,
        run_id=f"w{worker}-{i}",
        requested_model="gpt-4.1",
        served_model="gpt-4.1",
        outcome="ok",
        usage=TokenUsage(input=i, output=1),
        cost=Decimal(i).scaleb(-9),
        tags=(f"worker:{worker}",),
        key_name=f"key-{worker}",
        model_group="fast",
    )


def expected_records(workers: int) -> list[CallRecord]:
    """Every record the workers write, in no particular order."""
    out = []
    for w in range(workers):
        for i in range(PER_WORKER):
            out.append(worker_record(w, i))
            if i % 10 == 0:
                out += [worker_record(w, PER_WORKER + i + j) for j in range(3)]
    return out


def write_concurrently(url: str, worker: int, barrier: Any) -> None:
    """Open the (new) ledger together with the others, then record."""
    barrier.wait()  # every worker creates-or-finds the schema at once
    ledger = PostgresLedger(url, batch_size=200, flush_interval=0.01)
    for i in range(PER_WORKER):
        if i % 10 == 0:
            extra = range(PER_WORKER + i, PER_WORKER + i + 3)
            ledger.record_many([worker_record(worker, j) for j in extra])
        ledger.record(worker_record(worker, i))
        if i == PER_WORKER // 2:
            ledger.flush()
    ledger.close()
