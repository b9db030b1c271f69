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
on loopback through `open_store()` (the outage policy on top). Reported:
median and p99 per call, the paired median difference over in-process, and
for Redis the scripts the server ran per call (successes are batched into
the breakers' sync, so the rate-limit slot is the one round trip per call).
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
    Skip,
    build_contenders,
    count,
    fmt,
    median,
    ms,
    paired_median_diff,
    pct,
    print_table,
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


def redis_scripts_run(url: str) -> int | None:
    """Scripts the server has run (EVAL + EVALSHA calls)."""
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


def _clean(url: str, prefix: str) -> None:
    try:
        client = RedisStore(url, prefix=prefix).client()
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    except Exception:
        return


def _rows(samples: dict[str, object], base_name: str) -> tuple[list[list[str]], dict]:
    base = samples.get(base_name)
    rows, summary = [], {}
    for name, s in samples.items():
        vals = ms(s.total)  # type: ignore[attr-defined]
        over = (
            paired_median_diff(s.total, base.total)  # type: ignore[attr-defined]
            if base is not None
            else float("nan")
        )
        summary[name] = {
            "median_ms": median(vals),
            "p99_ms": pct(vals, 99),
            "over_in_process_ms": over,
        }
        rows.append(
            [
                name,
                fmt(median(vals) * 1000, 1),
                fmt(pct(vals, 99) * 1000, 1),
                "-" if name == base_name else fmt(over * 1000, 1),
            ]
        )
    return rows, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--iterations", type=int, default=count(5000, 200))
    parser.add_argument("--warmup", type=int, default=count(300, 20))
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench-breakers:{os.getpid()}:"
    tmp = Path(tempfile.mkdtemp(prefix="bench-breakers-"))
    sqlite_url = f"sqlite:///{tmp}/state.db"
    stores: dict[str, Callable[[], StateStore | str]] = {
        "in-process (memory://)": lambda: "memory://",
        "MemoryStore": MemoryStore,
        "sqlite": lambda: sqlite_url,
        "redis via open_store": lambda: redis_state(url, prefix),
    }
    results: dict[str, dict] = {}
    scripts: dict[str, float | None] = {}
    for what, build in (("call", one_call), ("open skip", open_skip)):
        builders = {
            name: (lambda make=make, m=f"m{i}-{what}", b=build: b(make(), m))
            for i, (name, make) in enumerate(stores.items())
        }
        contenders, skipped = build_contenders(builders)
        before = redis_scripts_run(url)
        samples, dropped = run_interleaved(
            contenders, args.iterations, args.warmup, progress=what
        )
        after = redis_scripts_run(url)
        rounds = args.iterations + args.warmup + 1
        scripts[what] = (
            None if before is None or after is None else (after - before) / rounds
        )
        rows, summary = _rows(samples, "in-process (memory://)")
        print_table(
            f"{what}: {args.iterations} interleaved rounds (µs per call)",
            ["state", "median", "p99", "over in-process"],
            rows,
        )
        for name, why in {**skipped, **dropped}.items():
            print(f"skipped {name}: {why}")
        results[what] = summary
    for what, per_call in scripts.items():
        if per_call is not None:
            print(f"Redis scripts per {what}: {per_call:.2f}")
    skip = results["open skip"].get("in-process (memory://)", {}).get("median_ms")
    met = skip is not None and skip < SKIP_TARGET_MS
    verdict = "met" if met else "MISSED"
    print(f"open-circuit skip in-process < {SKIP_TARGET_MS} ms: {verdict}")
    _clean(url, prefix)
    write_result(
        "shared_breakers",
        {
            "summary": results,
            "redis_scripts": scripts,
            "skip_target_met": met,
        },
        args,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
