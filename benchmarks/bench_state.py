"""Benchmark: the per-call cost of each state store on a budget's happy path.

    python benchmarks/bench_state.py              # 5,000 interleaved rounds
    python benchmarks/bench_state.py -n 20000     # more rounds
    REDIS_URL=redis://host:6379/0 python benchmarks/bench_state.py

One call = `reserve` + `settle` of one reservation (what a budgeted model call
costs in state operations). Contenders, timed round-robin in one process with
the order shuffled per round (harness.run_interleaved), so load drifts hit all
alike: the memory store (the baseline), SQLite (WAL, synchronous=NORMAL:
survives a killed process), SQLite durable (synchronous=FULL: survives power
loss), Redis on loopback, and Redis through `open_store()` (the `GuardedStore`
outage policy on top). Reported: median and p99 per call, the paired median
difference over memory with the ratio's bootstrap interval, and for Redis the
server-side commands per call (one script per operation: 2 round trips per
reserve + settle). Targets: SQLite and Redis <= 0.3 ms over memory.

The "budget on ..." lines time the same through a `Budget` (what a budgeted
model call pays: `reserve_routes` of a two-route call's bound, then `settle`),
per store; they carry no target of their own.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Skip,
    build_contenders,
    count,
    fmt,
    median,
    ms,
    paired_median_diff,
    pct,
    print_table,
    ratio_ci,
    run_interleaved,
    write_result,
)

from langchain_holysheep.state import (
    MemoryStore,
    RedisStore,
    Reservation,
    SQLiteStore,
    StateStore,
    open_store,
)

CAP = Decimal("1000000")
AMOUNT = Decimal("0.0123")
ACTUAL = Decimal("0.0081")
TARGET_MS = 0.3


def call(store: StateStore, key: str) -> Callable[[], None]:
    def reserve_and_settle() -> None:
        res = store.reserve(key, "2026-11-30", AMOUNT, CAP, 60)
        assert isinstance(res, Reservation)
        store.settle(res, ACTUAL)

    return reserve_and_settle


def budget_call(store: StateStore, key: str) -> Callable[[], None]:
    """A budgeted call's reserve + settle through `Budget`, on `store`."""
    from langchain_holysheep.spend.budgets import Budget

    budget = Budget(CAP, key=key, store=store, thresholds=())
    routes = [("gpt-4.1", AMOUNT), ("deepseek-v3.2", Decimal("0.0004"))]

    def reserve_and_settle() -> None:
        budget.reserve_routes(routes, combine="sum").settle(ACTUAL)

    return reserve_and_settle


def redis_store(url: str, prefix: str, guarded: bool) -> StateStore:
    store: StateStore
    if guarded:
        store = open_store(url, prefix=prefix)
    else:
        store = RedisStore(url, prefix=prefix)
    try:
        store.usage("ping", "ping")
    except Exception as exc:
        raise Skip(f"no Redis at {url}: {exc}") from exc
    return store


def redis_scripts_run(url: str) -> int | None:
    """Scripts the server has run (EVAL + EVALSHA calls): one per operation."""
    try:
        import redis

        client = redis.Redis.from_url(url)
        stats = client.info("commandstats")
        client.close()
    except Exception:
        return None
    return sum(
        int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("eval", "evalsha")
    )


def two_pings(url: str) -> Callable[[], None]:
    """The floor: two bare round trips on the same client (no script)."""
    store = RedisStore(url)
    client = store.client()
    try:
        client.ping()
    except Exception as exc:
        raise Skip(f"no Redis at {url}: {exc}") from exc

    def ping_ping() -> None:
        client.ping()
        client.ping()

    return ping_ping


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--iterations", type=int, default=count(5000, 200))
    parser.add_argument("--warmup", type=int, default=count(300, 20))
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench-state:{os.getpid()}:"
    tmp = Path(tempfile.mkdtemp(prefix="bench-state-"))
    stores: dict[str, StateStore] = {}

    def keep(name: str, store: StateStore) -> Callable[[], None]:
        stores[name] = store
        return call(store, name)

    def kept(name: str, store: StateStore) -> StateStore:
        stores[name] = store
        return store

    builders = {
        "memory": lambda: keep("memory", MemoryStore()),
        "sqlite": lambda: keep("sqlite", SQLiteStore(tmp / "state.db")),
        "sqlite durable": lambda: keep(
            "sqlite durable", SQLiteStore(tmp / "durable.db", durable=True)
        ),
        "redis": lambda: keep("redis", redis_store(url, prefix, guarded=False)),
        "redis via open_store": lambda: keep(
            "redis via open_store", redis_store(url, prefix, guarded=True)
        ),
        "redis: 2 x PING (floor)": lambda: two_pings(url),
        "budget on memory": lambda: budget_call(MemoryStore(), "b-memory"),
        "budget on sqlite": lambda: budget_call(
            kept("budget sqlite", SQLiteStore(tmp / "budget.db")), "b-sqlite"
        ),
        "budget on redis": lambda: budget_call(
            kept("budget redis", redis_store(url, prefix, guarded=True)), "b-redis"
        ),
    }
    contenders, skipped = build_contenders(builders)
    before = redis_scripts_run(url)
    samples, dropped = run_interleaved(
        contenders, args.iterations, args.warmup, progress="state"
    )
    after = redis_scripts_run(url)
    redis_calls = sum(
        len(samples[n].total) + args.warmup + 1
        for n in ("redis", "redis via open_store", "budget on redis")
        if n in samples
    )
    per_call = (
        (after - before) / redis_calls
        if before is not None and after is not None and redis_calls
        else None
    )

    base = samples.get("memory")
    rows, summary = [], {}
    for name, s in samples.items():
        vals = ms(s.total)
        over = paired_median_diff(s.total, base.total) if base else float("nan")
        ratio, lo, hi = ratio_ci(vals, ms(base.total)) if base else (0, 0, 0)
        measured = name in ("sqlite", "redis", "redis via open_store")
        target = over <= TARGET_MS if measured else None
        summary[name] = {
            "median_ms": median(vals),
            "p99_ms": pct(vals, 99),
            "over_memory_ms": over,
            "ratio": [ratio, lo, hi],
            "target_met": target,
            "errors": s.errors,
        }
        rows.append(
            [
                name,
                fmt(median(vals) * 1000, 1),
                fmt(pct(vals, 99) * 1000, 1),
                "-" if name == "memory" else fmt(over * 1000, 1),
                "-"
                if name == "memory"
                else f"{fmt(ratio, 1)} [{fmt(lo, 1)}, {fmt(hi, 1)}]",
                {None: "-", True: "met", False: "MISSED"}[target],
            ]
        )
    print_table(
        f"reserve + settle, {args.iterations} interleaved rounds (µs per call)",
        ["store", "median", "p99", "over memory", "x memory [95% CI]", "<= 300 µs"],
        rows,
    )
    if per_call is not None:
        print(
            f"\nRedis scripts per reserve+settle: {per_call:.2f} "
            "(2 = one round trip each)"
        )
    for name, why in {**skipped, **dropped}.items():
        print(f"skipped {name}: {why}")
    write_result(
        "state",
        {
            "summary": summary,
            "redis_scripts_per_call": per_call,
            "skipped": {**skipped, **dropped},
        },
        args,
    )
    for store in stores.values():
        inner = getattr(store, "store", store)
        if isinstance(inner, RedisStore):
            client = inner.client()
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
