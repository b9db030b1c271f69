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
round trips per call, counted on the client after the timing (one script per
operation: 2 round trips per reserve + settle), with two bare PINGs as the
floor for two round trips. Targets: SQLite and Redis <= 0.3 ms
over memory on loopback, one round trip per store operation.

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
    REDIS_URL,
    Skip,
    build_contenders,
    count,
    doc_without_usage,
    fmt,
    median,
    ms,
    paired_median_diff,
    pct,
    print_table,
    ratio_ci,
    round_trips_per_call,
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


NAME = "state"
MEASURED = ("sqlite", "redis", "redis via open_store")
REDIS_NAMES = ("redis", "redis via open_store", "budget on redis")
FLOOR = "redis: 2 x PING (floor)"


def split_round_trips(store: StateStore, key: str, calls: int = 200) -> dict:
    """Round trips of `reserve` alone and of `settle` alone on `store`."""
    out = {}
    reservations: list[Reservation] = []

    def reserve() -> None:
        reservations.append(store.reserve(key, "2026-11-30", AMOUNT, CAP, 60))

    def settle() -> None:
        store.settle(reservations.pop(), ACTUAL)

    out["reserve"] = round_trips_per_call(reserve, calls)
    out["settle"] = round_trips_per_call(settle, calls)
    return out


def reading(summary: dict, trips: dict, split: dict, skipped: dict) -> str:
    parts = []
    mem = summary.get("memory")
    if mem:
        parts.append(
            f"A reserve + settle on the memory store takes {mem['median_ms'] * 1000:.1f} µs median."
        )
    for name in ("sqlite", "sqlite durable", "redis", "redis via open_store"):
        v = summary.get(name)
        if not v:
            continue
        r, lo, hi = v["ratio"]
        target = (
            f"; target <= {TARGET_MS} ms over memory: {'meets' if v['target_met'] else 'misses'}"
            if v["target_met"] is not None
            else " (no target: fsync per commit)"
        )
        parts.append(
            f"{name}: {v['median_ms'] * 1000:.1f} µs, +{v['over_memory_ms'] * 1000:.1f} µs over memory "
            f"(x{r:.1f}, 95% CI {lo:.1f}-{hi:.1f}){target}."
        )
    floor = summary.get(FLOOR)
    if floor:
        parts.append(
            f"Two bare PINGs on the same connection (the floor for two round trips on this machine's loopback) "
            f"take {floor['median_ms'] * 1000:.1f} µs"
        )
        red = summary.get("redis")
        if red and red.get("over_floor_ms") is not None:
            parts[-1] += (
                f"; the Redis store's reserve + settle is +{red['over_floor_ms'] * 1000:.1f} µs above it "
                "(script execution, serialisation, Decimal parsing)"
            )
        parts[-1] += "."
    sp = split.get("redis")
    if sp:
        parts.append(
            f"Redis round trips, counted on the client: reserve {fmt(sp['reserve'], 2)}, "
            f"settle {fmt(sp['settle'], 2)} (one script each)"
        )
        t = {k: v for k, v in trips.items() if v is not None}
        if t:
            parts[-1] += "; per reserve + settle: " + ", ".join(
                f"{k} {v:.2f}" for k, v in t.items()
            )
        parts[-1] += (
            ". A budgeted model call reserves before the request and settles after it, so it pays "
            "two round trips: one per store operation."
        )
    bud = {k: v for k, v in summary.items() if k.startswith("budget on")}
    if bud:
        parts.append(
            "Through `Budget` (reserve_routes of a two-route bound, then settle): "
            + ", ".join(
                f"{k[10:]} {v['median_ms'] * 1000:.1f} µs (+{v['over_memory_ms'] * 1000:.1f} over the bare memory store)"
                for k, v in bud.items()
            )
            + "."
        )
    for name, why in skipped.items():
        parts.append(f"Not measured: {name} ({why}).")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--iterations", type=int, default=count(5000, 200))
    parser.add_argument("--warmup", type=int, default=count(300, 20))
    args = parser.parse_args(argv)
    url = REDIS_URL
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
        FLOOR: lambda: two_pings(url),
        "budget on memory": lambda: budget_call(MemoryStore(), "b-memory"),
        "budget on sqlite": lambda: budget_call(
            kept("budget sqlite", SQLiteStore(tmp / "budget.db")), "b-sqlite"
        ),
        "budget on redis": lambda: budget_call(
            kept("budget redis", redis_store(url, prefix, guarded=True)), "b-redis"
        ),
    }
    contenders, skipped = build_contenders(builders)
    samples, dropped = run_interleaved(
        contenders, args.iterations, args.warmup, progress=NAME
    )
    skipped.update(dropped)
    # Round trips, counted after the timing (the counter wraps redis-py's send).
    trips = {
        n: round_trips_per_call(contenders[n])
        for n in (*REDIS_NAMES, FLOOR)
        if n in samples
    }
    split = {
        n: split_round_trips(stores[n], f"{n}-split")
        for n in ("redis", "redis via open_store")
        if n in stores and n in samples
    }

    base = samples.get("memory")
    floor = samples.get(FLOOR)
    columns = [
        "store",
        "median µs",
        "p99 µs",
        "added over memory, µs (paired median)",
        "x memory (95% CI)",
        "Redis round trips per call",
        f"target <= {TARGET_MS} ms over memory",
    ]
    rows, summary = [], {}
    for name, s in samples.items():
        vals = ms(s.total)
        over = paired_median_diff(s.total, base.total) if base else float("nan")
        ratio, lo, hi = ratio_ci(vals, ms(base.total)) if base else (0, 0, 0)
        target = over <= TARGET_MS if name in MEASURED else None
        over_floor = (
            paired_median_diff(s.total, floor.total)
            if floor and name.startswith("redis") and name != FLOOR
            else None
        )
        summary[name] = {
            "median_ms": median(vals),
            "p99_ms": pct(vals, 99),
            "over_memory_ms": over,
            "over_floor_ms": over_floor,
            "ratio": [ratio, lo, hi],
            "target_met": target,
            "round_trips": trips.get(name),
            "errors": s.errors,
            "first_error": s.first_error,
        }
        rows.append(
            [
                name,
                fmt(median(vals) * 1000, 1),
                fmt(pct(vals, 99) * 1000, 1),
                "-" if name == "memory" else fmt(over * 1000, 1),
                "-"
                if name == "memory"
                else f"{fmt(ratio, 2)} ({fmt(lo, 2)}-{fmt(hi, 2)})",
                "-" if trips.get(name) is None else fmt(trips[name], 2),
                {None: "-", True: "met", False: "**missed**"}[target],
            ]
        )
    print_table(
        f"reserve + settle, {args.iterations} interleaved rounds (µs per call)",
        columns,
        rows,
    )
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    write_result(
        NAME,
        {
            "title": "7. State stores: a budget's reserve + settle per store",
            "doc": doc_without_usage(__doc__ or ""),
            "config": {
                "iterations": args.iterations,
                "warmup": args.warmup,
                "redis": url,
            },
            "tables": [
                {
                    "title": f"reserve + settle, {args.iterations} calls per contender, interleaved",
                    "columns": columns,
                    "rows": rows,
                }
            ],
            "summary": summary,
            "redis_round_trips": trips,
            "redis_round_trips_split": split,
            "skipped": skipped,
            "reading": reading(summary, trips, split, skipped),
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
