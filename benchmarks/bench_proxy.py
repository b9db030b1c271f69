"""Benchmark 11: `holysheep serve` against LiteLLM's proxy, in front of the simulator.

Four processes: the simulator; `holysheep serve` (one process, memory state,
SQLite ledger, one group of two routes `gpt-4.1` then `deepseek-v3.2`, one
virtual key with a budget, so every call reserves, settles and writes its
ledger record); LiteLLM's proxy (`litellm --config`, one worker, the same two
models as a fallback chain, its master key, no database); and the load
generator (aiohttp, `benchmarks/_proxy_load.py`). The contenders are called
the same way in one run: straight to the simulator (the floor), through
`holysheep serve` (its default first-token/stall limits: a non-streaming
request is read from the simulator as a stream), through `holysheep serve`
with those limits off (plain requests), through LiteLLM's proxy, and through a
bare relay (`_bare_relay.py`: uvicorn, uvloop, httptools and an aiohttp
upstream like `holysheep serve`, but no logic at all: what any Python proxy on
this stack adds before doing anything). A:
sequential calls, every
iteration calls each contender once non-streaming and once streaming, in a
shuffled order; "added" is the median over iterations of the paired
difference to the direct call (p99 added: p99 minus the direct p99).
B: requests/s at concurrency 64 for a fixed number of non-streaming calls per
round, contenders one after another in a shuffled order, with each server's
CPU per request. C: `holysheep serve`'s RSS sampled while it serves streamed
requests at concurrency 16; flat means the least-squares trend after the
warm-up (the first fifth) projects less than 2 MiB of growth per 10,000
requests. Targets: <= 1 ms p50 added on loopback; throughput >= 3x LiteLLM's
proxy; memory flat.

    python benchmarks/bench_proxy.py [--iterations N] [--rounds R] [--calls N]
                                     [--streams N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import _proxy_servers as S
import harness as H

NAME = "proxy"
DIRECT = "direct to the simulator (floor)"
SERVE = "holysheep serve"
SERVE_OFF = "holysheep serve (first-token/stall limits off: plain requests)"
LITELLM = "LiteLLM proxy"
BARE = "bare relay (no logic: the same stack's floor)"
ADDED_TARGET_MS = 1.0
THROUGHPUT_TARGET = 3.0
FLAT_MIB_PER_10K = 2.0
CONCURRENCY = 64
STREAM_CONCURRENCY = 16


def latency_summary(samples: dict[str, Any]) -> dict[str, Any]:
    """p50/p99 per contender, and the paired added time over the direct call."""
    base = samples.get(DIRECT) or {}
    out: dict[str, Any] = {}
    for name, rec in samples.items():
        inv, ttft = H.ms(rec["invoke"]), H.ms(rec["ttft"])
        v: dict[str, Any] = {
            "n": len(inv),
            "errors": rec["errors"],
            "first_error": rec.get("first_error"),
            "p50_ms": H.median(inv),
            "p99_ms": H.pct(inv, 99),
            "ttft_p50_ms": H.median(ttft),
            "ttft_p99_ms": H.pct(ttft, 99),
            "stream_p50_ms": H.median(H.ms(rec["stream"])),
        }
        if name != DIRECT and base.get("invoke"):
            v["added_p50_ms"] = H.paired_median_diff(rec["invoke"], base["invoke"])
            v["added_p99_ms"] = v["p99_ms"] - H.pct(H.ms(base["invoke"]), 99)
            v["ttft_added_p50_ms"] = H.paired_median_diff(rec["ttft"], base["ttft"])
        out[name] = v
    return out


def throughput_summary(
    rates: dict[str, Any], cpu: dict[str, float], calls: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ref = (rates.get(LITELLM) or {}).get("rates")
    for name, rec in rates.items():
        r = rec["rates"]
        v: dict[str, Any] = {
            "rps_median": H.median(r),
            "rps_min": min(r) if r else None,
            "rps_max": max(r) if r else None,
            "rounds": len(r),
            "errors": rec["errors"],
            "first_error": rec.get("first_error"),
            "server_cpu_ms_per_request": cpu.get(name, 0.0)
            * 1000
            / max(1, calls * len(r))
            if name in cpu
            else None,
        }
        if ref and name != LITELLM:
            v["x_litellm"] = list(H.ratio_ci(r, ref))
        out[name] = v
    return out


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope (MiB per request) of RSS against requests served."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    den = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / den if den else 0.0


def memory_summary(marks: list[tuple[int, float]], total: int) -> dict[str, Any]:
    after = [m for m in marks if m[0] >= total // 5]
    per_10k = slope(after) * 10_000
    return {
        "rss_marks": marks,
        "warmup_requests": total // 5,
        "trend_mib_per_10k": per_10k,
        "flat": per_10k < FLAT_MIB_PER_10K,
    }


def run_latency(load: S.LoadGen, targets: dict, args: argparse.Namespace) -> dict:
    cmd = {"op": "latency", "targets": targets, "iterations": args.iterations}
    return load.run({**cmd, "warmup": args.warmup})  # type: ignore[no-any-return]


def run_throughput(
    load: S.LoadGen, targets: dict, servers: dict, sim: H.SimProcess, args: Any
) -> tuple[dict, dict[str, float]]:
    """Rates per round, and each server's CPU seconds over its batches."""
    cpu: dict[str, float] = {}
    started: dict[str, float] = {}

    def pid_of(name: str) -> int | None:
        return sim.pid if name == DIRECT else servers[name].pid

    def on_event(e: dict) -> None:
        now = H.proc_cpu_seconds(pid_of(e["name"])) or 0.0
        if e["event"] == "begin":
            started[e["name"]] = now
        elif e["event"] == "end":
            cpu[e["name"]] = cpu.get(e["name"], 0.0) + now - started.pop(e["name"])

    cmd = {"op": "throughput", "targets": targets, "rounds": args.rounds}
    cmd |= {"calls": args.calls, "concurrency": CONCURRENCY, "warmup": args.calls // 4}
    return load.run(cmd, on_event), cpu


def run_memory(load: S.LoadGen, server: S.Server, count: int) -> dict[str, Any]:
    every = max(1, count // 40)
    marks: list[tuple[int, float]] = [(0, server.rss_mib())]

    def on_event(e: dict) -> None:
        marks.append((e["done"], server.rss_mib()))

    cmd = {"op": "streams", "target": server.target, "count": count}
    result = load.run(
        {**cmd, "concurrency": STREAM_CONCURRENCY, "every": every}, on_event
    )
    return {**memory_summary(marks, count), **result}


def tables(lat: dict, thr: dict, mem: dict | None, args: Any) -> list[dict]:
    lat_rows = []
    for name, v in lat.items():
        added = v.get("added_p50_ms")
        lat_rows.append(
            [
                name,
                f"{v['p50_ms']:.2f}",
                f"{v['p99_ms']:.2f}",
                "-" if added is None else f"{added:+.2f}",
                "-" if added is None else f"{v['added_p99_ms']:+.2f}",
                f"{v['ttft_p50_ms']:.2f}",
                "-" if added is None else f"{v['ttft_added_p50_ms']:+.2f}",
                str(v["errors"]),
            ]
        )
    thr_rows = []
    for name, v in thr.items():
        ratio = v.get("x_litellm")
        cpu = v["server_cpu_ms_per_request"]
        thr_rows.append(
            [
                name,
                f"{v['rps_median']:,.0f}",
                f"{v['rps_min']:,.0f}-{v['rps_max']:,.0f}",
                "-"
                if not ratio
                else f"x{ratio[0]:.2f} ({ratio[1]:.2f}-{ratio[2]:.2f})",
                "n/a" if cpu is None else f"{cpu:.2f}",
                str(v["errors"]),
            ]
        )
    out = [
        {
            "title": f"A. Sequential calls, {args.iterations} per contender, interleaved",
            "columns": [
                "contender",
                "non-streaming p50 ms",
                "p99 ms",
                "added p50 ms (paired)",
                "added p99 ms",
                "stream ttft p50 ms",
                "ttft added p50 ms",
                "errors",
            ],
            "rows": lat_rows,
        },
        {
            "title": f"B. Throughput at concurrency {CONCURRENCY}: {args.rounds} rounds x "
            f"{args.calls} non-streaming calls per contender",
            "columns": [
                "contender",
                "requests/s (median of rounds)",
                "min-max",
                "x LiteLLM proxy (95% CI)",
                "server CPU ms per request",
                "errors",
            ],
            "rows": thr_rows,
        },
    ]
    if mem:
        marks = mem["rss_marks"]
        step = max(1, len(marks) // 8)
        shown = marks[::step] + ([marks[-1]] if (len(marks) - 1) % step else [])
        out.append(
            {
                "title": f"C. holysheep serve RSS over {mem['done']:,} streamed requests "
                f"(concurrency {STREAM_CONCURRENCY}; trend after {mem['warmup_requests']:,}: "
                f"{mem['trend_mib_per_10k']:+.2f} MiB per 10,000)",
                "columns": ["requests served", "RSS MiB"],
                "rows": [[f"{n:,}", f"{rss:.1f}"] for n, rss in shown],
            }
        )
    return out


def reading(lat: dict, thr: dict, mem: dict | None, skipped: dict) -> str:
    parts = []
    s, lite = lat.get(SERVE), lat.get(LITELLM)
    if s:
        parts.append(
            f"holysheep serve adds {s['added_p50_ms']:+.2f} ms at p50 over a direct call "
            f"({s['added_p99_ms']:+.2f} ms at p99) and {s['ttft_added_p50_ms']:+.2f} ms "
            f"to the first token"
        )
    bare = lat.get(BARE)
    if s and bare:
        parts.append(
            f"a bare relay on the same stack, with no logic, adds {bare['added_p50_ms']:+.2f} ms "
            f"({bare['ttft_added_p50_ms']:+.2f} ms to the first token), so holysheep serve's "
            f"own work is {s['added_p50_ms'] - bare['added_p50_ms']:+.2f} ms at p50"
        )
    if lite:
        parts.append(
            f"LiteLLM's proxy adds {lite['added_p50_ms']:+.2f} ms at p50 "
            f"({lite['added_p99_ms']:+.2f} ms at p99), {lite['ttft_added_p50_ms']:+.2f} ms "
            "to the first token"
        )
    ts = thr.get(SERVE)
    if ts and ts.get("x_litellm"):
        parts.append(
            f"at concurrency {CONCURRENCY} holysheep serve answers "
            f"{ts['rps_median']:,.0f} requests/s, x{ts['x_litellm'][0]:.2f} LiteLLM's "
            f"{thr[LITELLM]['rps_median']:,.0f}"
        )
    if mem:
        parts.append(
            f"its RSS went {mem['rss_marks'][0][1]:.1f} -> {mem['rss_marks'][-1][1]:.1f} MiB "
            f"over {mem['done']:,} streams ({mem['trend_mib_per_10k']:+.2f} MiB per 10,000 "
            "after the warm-up)"
        )
    text = "; ".join(parts) + "." if parts else ""
    if LITELLM in skipped:
        text += (
            f" LiteLLM's proxy was not measured here ({skipped[LITELLM]}); independent "
            "measurements put its added latency at about 4 ms."
        )
    text += (
        " The direct floor is the simulator's own speed (uvicorn + h11 + Starlette, "
        "no uvloop), which also bounds every proxy's throughput; both proxies and the "
        "load generator share the machine's cores with it"
    )
    lite_cpu = (thr.get(LITELLM) or {}).get("server_cpu_ms_per_request")
    if lite_cpu:
        text += (
            f", and LiteLLM's proxy needs {lite_cpu:.1f} ms of CPU per request on "
            "those same cores, so the sequential rows of every contender include "
            "its neighbours' work"
        )
    text += "."
    return text.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=H.count(1000, 30))
    ap.add_argument("--warmup", type=int, default=H.count(50, 5))
    ap.add_argument("--rounds", type=int, default=H.count(5, 2))
    ap.add_argument("--calls", type=int, default=H.count(2000, 200))
    ap.add_argument("--streams", type=int, default=H.count(10_000, 1000))
    args = ap.parse_args(argv)
    skipped: dict[str, str] = {}
    with ExitStack() as stack:
        folder = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="hs-proxy-"))
        )
        sim = stack.enter_context(H.SimProcess())
        builders = {
            SERVE: lambda: stack.enter_context(S.holysheep_serve(sim, folder)),
            SERVE_OFF: lambda: stack.enter_context(
                S.holysheep_serve(sim, folder, limits=False)
            ),
            LITELLM: lambda: stack.enter_context(S.litellm_proxy(sim, folder)),
            BARE: lambda: stack.enter_context(S.bare_relay(sim, folder)),
        }
        servers, skipped = H.build_contenders(builders)
        targets = {
            DIRECT: {"url": sim.base_url, "key": sim.api_key, "model": S.ROUTES[0]}
        }
        targets |= {name: srv.target for name, srv in servers.items()}
        load = S.LoadGen()
        stack.callback(load.close)
        print(f"  [{NAME}] latency: {args.iterations} iterations", file=sys.stderr)
        lat = latency_summary(run_latency(load, targets, args))
        print(f"  [{NAME}] throughput: {args.rounds} rounds", file=sys.stderr)
        rates, cpu = run_throughput(load, targets, servers, sim, args)
        thr = throughput_summary(rates, cpu, args.calls)
        mem = None
        if SERVE in servers:
            print(f"  [{NAME}] memory: {args.streams} streams", file=sys.stderr)
            mem = run_memory(load, servers[SERVE], args.streams)
    tabs = tables(lat, thr, mem, args)
    for t in tabs:
        H.print_table(t["title"], t["columns"], t["rows"])
    H.write_result(
        NAME,
        {
            "title": "11. holysheep serve: an OpenAI-compatible proxy against LiteLLM's",
            "config": {**vars(args), "concurrency": CONCURRENCY},
            "tables": tabs,
            "skipped": skipped,
            "summary": {"latency": lat, "throughput": thr, "memory": mem},
            "reading": reading(lat, thr, mem, skipped),
        },
        args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
