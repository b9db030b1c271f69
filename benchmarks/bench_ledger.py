"""Benchmark: the SQLite spend ledger (standalone; not part of run.sh).

    python benchmarks/bench_ledger.py            # 1,000,000 records (~1-2 min)
    python benchmarks/bench_ledger.py -n 100000  # quicker

A. Caller-thread cost of `record()`: each call timed alone (perf_counter_ns),
   median and p99, for the queued default, `write_through=True` (NORMAL) and
   `write_through=True, durable=True` (FULL: fsync per record); and
   `PrometheusSink.record()` for comparison.
B. Throughput to disk: N records produced by one thread through the queued
   ledger, until `flush()` returns (records/s), with process RSS before, at
   peak and after; the producer builds each record on the fly (nothing is kept).
C. tracemalloc: live Python memory after N/5 records through the ledger
   (tracemalloc slows every allocation, so a shorter run).
D. Reports over the N-row ledger: `ledger_report` by model, day and tag.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

from langchain_holysheep.spend.ledger import SQLiteLedger
from langchain_holysheep.spend.records import CallRecord, TokenUsage
from langchain_holysheep.spend.report import ledger_report

MODELS = ("gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2")
T0 = 1_735_689_600.0


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make(i: int) -> CallRecord:
    model = MODELS[i % 4]
    return CallRecord(
        timestamp=T0 + i * 0.25,  # 1M records span ~3 days
        run_id=f"run-{i:08d}-{i * 2654435761 % 2**32:08x}",
        requested_model=model,
        served_model=model,
        outcome="ok" if i % 50 else "error",
        usage=TokenUsage(input=1200 + i % 800, output=300 + i % 200, cached=i % 100),
        cost=Decimal(16_800 + i % 9_999).scaleb(-9),
        latency_ms=200.0 + (i * 37) % 3000,
        attempt=1 + (i % 50 == 1),
        is_retry=i % 50 == 1,
        tags=("team:search",) if i % 3 else ("team:chat", "batch"),
        metadata=(("user", f"user-{i % 20}"),),
    )


def per_call_ns(record, n: int, offset: int = 0) -> list[int]:  # type: ignore[no-untyped-def]
    recs = [make(offset + i) for i in range(n)]
    times = [0] * n
    clock = time.perf_counter_ns
    for i, rec in enumerate(recs):
        t = clock()
        record(rec)
        times[i] = clock() - t
    return times


def us(ns: float) -> str:
    return f"{ns / 1000:,.2f} µs"


def bench_caller(tmp: Path, rows: list[list[str]]) -> None:
    ledger = SQLiteLedger(tmp / "a.sqlite3")
    per_call_ns(ledger.record, 20_000)  # warm up
    ledger.flush()
    times = per_call_ns(ledger.record, 200_000, 20_000)
    ledger.close()
    rows.append(
        [
            "A",
            "record(), queued (default)",
            f"median {us(statistics.median(times))}",
            f"p99 {us(sorted(times)[int(len(times) * 0.99)])}",
        ]
    )
    for name, kw, n in (
        ("record(), write_through (NORMAL)", {"write_through": True}, 5_000),
        (
            "record(), write_through + durable (FULL)",
            {"write_through": True, "durable": True},
            500,
        ),
    ):
        ledger = SQLiteLedger(tmp / f"{len(rows)}.sqlite3", **kw)
        times = per_call_ns(ledger.record, n)
        ledger.close()
        rows.append(
            [
                "A",
                name,
                f"median {us(statistics.median(times))}",
                f"p99 {us(sorted(times)[int(len(times) * 0.99)])}",
            ]
        )
    try:
        from prometheus_client import CollectorRegistry

        from langchain_holysheep.spend.monitoring._prometheus import PrometheusSink
    except ImportError:
        return
    sink = PrometheusSink(CollectorRegistry())
    times = per_call_ns(sink.record, 50_000)
    rows.append(
        [
            "A",
            "PrometheusSink.record()",
            f"median {us(statistics.median(times))}",
            f"p99 {us(sorted(times)[int(len(times) * 0.99)])}",
        ]
    )


def reset_peak_rss() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)


def bench_throughput(path: Path, n: int, rows: list[list[str]]) -> None:
    gc.collect()
    reset_peak_rss()
    before = rss_mib()
    ledger = SQLiteLedger(path)
    t = time.perf_counter()
    record = ledger.record
    for i in range(n):
        record(make(i))
    produced = time.perf_counter() - t
    ledger.flush()
    total = time.perf_counter() - t
    ledger.close()
    gc.collect()
    after = rss_mib()
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    rows.append(
        [
            "B",
            f"{n:,} records to disk",
            f"{n / total:,.0f} records/s",
            f"{total:.1f} s (producer {produced:.1f} s)",
        ]
    )
    rows.append(
        [
            "B",
            "RSS before / peak / after",
            f"{before:.0f} / {peak_rss_mib():.0f} / {after:.0f} MiB",
            f"file {size:.0f} MiB ({size * 2**20 / n:.0f} B/record)",
        ]
    )


def bench_tracemalloc(tmp: Path, n: int, rows: list[list[str]]) -> None:
    ledger = SQLiteLedger(tmp / "tm.sqlite3")
    for i in range(1_000):  # warm caches (JSON, statement cache)
        ledger.record(make(i))
    ledger.flush()
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for i in range(n):
        ledger.record(make(i))
    ledger.flush()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ledger.close()
    rows.append(
        [
            "C",
            f"tracemalloc after {n:,} records",
            f"live +{(current - base) / 2**10:,.0f} KiB",
            f"peak +{(peak - base) / 2**20:,.1f} MiB",
        ]
    )


def bench_reports(path: Path, n: int, rows: list[list[str]]) -> None:
    for by in ("model", "day", "tag", ("day", "model")):
        took = []
        for pct in (True, False):
            t = time.perf_counter()
            report = ledger_report(path, by=by, percentiles=pct)
            took.append(time.perf_counter() - t)
            assert report.total.requests == n, report.total
        label = by if isinstance(by, str) else "+".join(by)
        rows.append(
            [
                "D",
                f"ledger_report(by={label!r}), {n:,} rows",
                f"{took[0]:.2f} s",
                f"{took[1]:.2f} s with percentiles=False; {len(report.rows)} groups",
            ]
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=1_000_000)
    args = ap.parse_args()
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        big = tmp / "big.sqlite3"
        bench_throughput(big, args.n, rows)  # first: RSS not yet grown by others
        bench_reports(big, args.n, rows)
        bench_caller(tmp, rows)
        bench_tracemalloc(tmp, max(args.n // 5, 1_000), rows)
    import sqlite3

    print(
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs\n"
    )
    print("| | measurement | result | detail |")
    print("|---|---|---|---|")
    for row in sorted(rows, key=lambda r: r[0]):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
