"""Benchmark: the per-call cost of breakers and rate limits on each state store.

    python benchmarks/bench_shared_breakers.py            # 5,000 interleaved rounds
    python benchmarks/bench_shared_breakers.py -n 20000
    REDIS_URL=redis://host:6379/0 python benchmarks/bench_shared_breakers.py

One call = what the router does for a successful gateway call: the gateway
and model breakers checked (`rejects` + `allow`), a rate-limit slot taken
(requests and tokens per minute), the success recorded on both breakers.
A second measurement is the open-circuit skip (`rejects()` on an open
breaker), which must stay < 0.1 ms in-process. Contenders, timed round-robin
in one process (harness.run_interleaved): in-process objects (`memory://`,
the default and the baseline), a `MemoryStore` object, SQLite (WAL), Redis
on loopback through `open_store()` (the outage policy on top), and one bare
Redis PING (the floor for one round trip). Reported: median and p99 per call,
the paired median difference over in-process with the ratio's bootstrap
interval, and for Redis the round trips per call, counted on the client after
the timing (successes are batched into the breakers' sync, so the rate-limit
slot should be the one round trip per call). Targets: SQLite and
Redis <= 0.3 ms over in-process on loopback, one round trip per call; the
open-circuit skip < 0.1 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
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

from langchain_holysheep.resilience import (
    BreakerRegistry,
    RateLimit,
    RateLimiterRegistry,
)
from langchain_holysheep.state import MemoryStore, RedisStore, StateStore, open_store

BASE = "http://bench.invalid/v1"
LIMIT = RateLimit(requests_per_minute=1e9, tokens_per_minute=1e12)
SKIP_TARGET_MS = 0.1


def one_call(state: StateStore | str, model: str) -> Callable[[], None]:
    """A successful call's breaker and rate-limit work on `state`."""
    breakers = BreakerRegistry(state=state)
    limiter = RateLimiterRegistry(state=state).configure((BASE, model), LIMIT)
    key = (BASE, model)
    gateway, breaker = breakers.gateway(BASE), breakers.get(key)

    def call() -> None:
        if gateway.rejects() or breaker.rejects():
            raise AssertionError("closed breakers must not reject")
        gateway.allow()
        breaker.allow()
        limiter.acquire(1200)
        breakers.record_success(key)

    return call


def open_skip(state: StateStore | str, model: str) -> Callable[[], None]:
    """The router's check of an open circuit (the route is skipped)."""
    breaker = BreakerRegistry(state=state).get((BASE, model))
    breaker.force_open("benchmark")

    def skip() -> None:
        if not breaker.rejects():
            raise AssertionError("an open breaker must reject")

    return skip


def redis_state(url: str, prefix: str) -> StateStore:
    store = open_store(url, prefix=prefix)
    try:
        RedisStore(url, prefix=prefix).client().ping()
    except Exception as exc:
        raise Skip(f"no Redis at {url}: {exc}") from exc
    return store


def _clean(url: str, prefix: str) -> None:
    try:
        client = RedisStore(url, prefix=prefix).client()
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    except Exception:
        return


NAME = "shared_breakers"
BASE_NAME = "in-process (memory://)"
FLOOR = "redis: 1 x PING (floor)"
TARGET_MS = 0.3
MEASURED = ("sqlite", "redis via open_store")


def one_ping(url: str) -> Callable[[], None]:
    """The floor: one bare round trip (PING) on a redis-py client."""
    client = RedisStore(url).client()
    try:
        client.ping()
    except Exception as exc:
        raise Skip(f"no Redis at {url}: {exc}") from exc
    return client.ping


def _rows(
    samples: dict, what: str, trips: dict[str, float | None]
) -> tuple[list[str], list[list[str]], dict]:
    base = samples.get(BASE_NAME)
    floor = samples.get(FLOOR)
    limit = TARGET_MS if what == "call" else SKIP_TARGET_MS
    columns = [
        "state",
        "median µs",
        "p99 µs",
        "added over in-process, µs (paired median)",
        "x in-process (95% CI)",
        "Redis round trips per call",
        f"target {'<= ' + str(TARGET_MS) + ' ms over in-process' if what == 'call' else '< ' + str(SKIP_TARGET_MS) + ' ms'}",
    ]
    rows, summary = [], {}
    d = 1 if what == "call" else 2
    for name, s in samples.items():
        vals = ms(s.total)
        over = paired_median_diff(s.total, base.total) if base else float("nan")
        r, lo, hi = ratio_ci(vals, ms(base.total)) if base else (float("nan"),) * 3
        if name == FLOOR:
            target = None
        elif what == "call":
            target = over <= limit if name in MEASURED else None
        else:
            target = median(vals) < limit
        summary[name] = {
            "median_ms": median(vals),
            "p99_ms": pct(vals, 99),
            "over_in_process_ms": over,
            "over_floor_ms": (
                paired_median_diff(s.total, floor.total)
                if floor and name.startswith("redis") and name != FLOOR
                else None
            ),
            "ratio": [r, lo, hi],
            "target_met": target,
            "round_trips": trips.get(name),
            "errors": s.errors,
            "first_error": s.first_error,
        }
        rows.append(
            [
                name,
                fmt(median(vals) * 1000, d),
                fmt(pct(vals, 99) * 1000, d),
                "-" if name == BASE_NAME else fmt(over * 1000, d),
                "-"
                if name == BASE_NAME
                else f"{fmt(r, 2)} ({fmt(lo, 2)}-{fmt(hi, 2)})",
                "-" if trips.get(name) is None else fmt(trips[name], 2),
                {None: "-", True: "met", False: "**missed**"}[target],
            ]
        )
    return columns, rows, summary


def reading(results: dict, skipped: dict) -> str:
    parts = []
    call = results.get("call", {})
    base = call.get(BASE_NAME)
    if base:
        parts.append(
            f"In-process breakers and limiter: {base['median_ms'] * 1000:.1f} µs per successful call's checks, "
            "rate-limit slot and success records."
        )
    for name, v in call.items():
        if name in (BASE_NAME, FLOOR):
            continue
        r, lo, hi = v["ratio"]
        verdict = (
            f"; target <= {TARGET_MS} ms over in-process: {'meets' if v['target_met'] else 'misses'}"
            if v["target_met"] is not None
            else ""
        )
        trip = (
            f", {v['round_trips']:.2f} Redis round trips per call"
            if v.get("round_trips") is not None
            else ""
        )
        parts.append(
            f"{name}: {v['median_ms'] * 1000:.1f} µs, +{v['over_in_process_ms'] * 1000:.1f} µs "
            f"(x{r:.1f}, 95% CI {lo:.1f}-{hi:.1f}){trip}{verdict}."
        )
    floor = call.get(FLOOR)
    red = call.get("redis via open_store")
    if floor:
        parts.append(
            f"One bare PING (one round trip on this machine's loopback) takes {floor['median_ms'] * 1000:.1f} µs"
            + (
                f"; the Redis-backed call is +{red['over_floor_ms'] * 1000:.1f} µs above it"
                if red and red.get("over_floor_ms") is not None
                else ""
            )
            + "."
        )
    skip = results.get("open skip", {})
    if skip:
        parts.append(
            "Open-circuit skip (`rejects()` on an open breaker): "
            + ", ".join(f"{k} {v['median_ms'] * 1000:.2f} µs" for k, v in skip.items())
            + f"; target < {SKIP_TARGET_MS} ms: "
            + (
                "met on every store."
                if all(v["target_met"] for v in skip.values())
                else "missed on "
                + ", ".join(k for k, v in skip.items() if not v["target_met"])
                + "."
            )
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
    prefix = f"bench-breakers:{os.getpid()}:"
    tmp = Path(tempfile.mkdtemp(prefix="bench-breakers-"))
    sqlite_url = f"sqlite:///{tmp}/state.db"
    stores: dict[str, Callable[[], StateStore | str]] = {
        BASE_NAME: lambda: "memory://",
        "MemoryStore": MemoryStore,
        "sqlite": lambda: sqlite_url,
        "redis via open_store": lambda: redis_state(url, prefix),
    }
    results: dict[str, dict] = {}
    tables: list[dict] = []
    trips_all: dict[str, dict] = {}
    skipped_all: dict[str, str] = {}
    for what, build in (("call", one_call), ("open skip", open_skip)):
        builders = {
            name: (lambda make=make, m=f"m{i}-{what}", b=build: b(make(), m))
            for i, (name, make) in enumerate(stores.items())
        }
        if what == "call":
            builders[FLOOR] = lambda: one_ping(url)
        contenders, skipped = build_contenders(builders)
        samples, dropped = run_interleaved(
            contenders, args.iterations, args.warmup, progress=what
        )
        skipped.update(dropped)
        trips = {
            n: round_trips_per_call(contenders[n], 500)
            for n in samples
            if n.startswith("redis")
        }
        columns, rows, summary = _rows(samples, what, trips)
        title = (
            f"{what}: {args.iterations} interleaved rounds per contender (µs per call)"
        )
        print_table(title, columns, rows)
        tables.append({"title": title, "columns": columns, "rows": rows})
        for name, why in skipped.items():
            print(f"skipped {name}: {why}")
            skipped_all[f"{name} ({what})"] = why
        results[what] = summary
        trips_all[what] = trips
    _clean(url, prefix)
    text = reading(results, skipped_all)
    print(text)
    write_result(
        NAME,
        {
            "title": "8. Breakers and rate limits on each state store",
            "doc": doc_without_usage(__doc__ or ""),
            "config": {
                "iterations": args.iterations,
                "warmup": args.warmup,
                "redis": url,
            },
            "tables": tables,
            "summary": results,
            "redis_round_trips": trips_all,
            "skipped": skipped_all,
            "reading": text,
        },
        args,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
