"""Benchmark 1: sequential per-call latency (non-streaming), interleaved.

Contenders: raw httpx2 POST (the floor), bare ChatOpenAI, ChatOpenAI with
`.with_retry().with_fallbacks()`, LiteLLM Router (fallbacks configured), and
ChatHolySheep as it ships: its default first-token and stall limits (30 s) make
a gateway route ask for the answer as a stream and read it under those limits
(one `AIMessage`, as a plain request gives), bare and with the whole policy on
(fallbacks, retry, breakers, rate limit, deadline); the whole policy with 10 s
limits; with a spend tracker and a SQLite ledger attached; and with the limits
off (`first_token_timeout=None, stall_timeout=None`: plain JSON requests).
`streaming=True` is LangChain's own path (`invoke` aggregates `stream()`
chunks), shown for ChatOpenAI and ChatHolySheep. Every call succeeds on the
primary (no faults): this is the price of the machinery on the happy path.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import contenders as C
import harness as H
import targets as T

NAME = "overhead"
RAW = "raw httpx2 POST"
BASE = "ChatOpenAI (bare)"
LITELLM = "LiteLLM Router (fallbacks)"
BARE = "ChatHolySheep (bare: default 30 s limits, answer read as a stream)"
POLICY = "ChatHolySheep (whole policy: default 30 s limits, answer read as a stream)"
POLICY_10S = "ChatHolySheep (whole policy + 10 s first-token/stall limits)"
POLICY_SPEND = "ChatHolySheep (whole policy + spend tracker + SQLite ledger)"
POLICY_PLAIN = "ChatHolySheep (whole policy, limits off: plain requests)"
OPENAI_STREAMING = "ChatOpenAI (streaming=True: LangChain aggregates stream chunks)"
POLICY_STREAMING = (
    "ChatHolySheep (whole policy, streaming=True: LangChain aggregates stream chunks)"
)
LEAN_WHATIF = (
    "what-if: ChatOpenAI, openai client.post(cast_to=dict), no transform/pydantic"
)
TARGETED = (POLICY, POLICY_10S, POLICY_SPEND)
"""The whole policy with first-token/stall limits: <= T.SEQUENTIAL_RATIO."""


def policy_with_spend(base_url: str, folder: str, keep: list) -> Callable[[], None]:
    """The whole policy priced by a `HolySheepCallbackHandler` writing to a
    `SQLiteLedger` in `folder` (closed by the caller through `keep`)."""
    from langchain_holysheep.spend import HolySheepCallbackHandler
    from langchain_holysheep.spend.ledger import SQLiteLedger

    ledger = SQLiteLedger(Path(folder) / "overhead.sqlite3")
    keep.append(ledger)
    handler = HolySheepCallbackHandler(ledger=ledger)
    return C.lc_invoke(C.holysheep_policy(base_url, callbacks=[handler]))


def builders(base_url: str, folder: str, keep: list) -> dict:
    return {
        RAW: lambda: C.raw_httpx2(base_url),
        BASE: lambda: C.lc_invoke(C.chat_openai(base_url)),
        "ChatOpenAI .with_retry().with_fallbacks()": lambda: C.lc_invoke(
            C.chat_openai_retry_fallbacks(base_url)
        ),
        LITELLM: lambda: C.router_call(C.litellm_router(base_url)),
        BARE: lambda: C.lc_invoke(C.holysheep_bare(base_url)),
        POLICY: lambda: C.lc_invoke(C.holysheep_policy(base_url)),
        POLICY_10S: lambda: C.lc_invoke(
            C.holysheep_policy(base_url, first_token_timeout=10.0, stall_timeout=10.0)
        ),
        POLICY_SPEND: lambda: policy_with_spend(base_url, folder, keep),
        POLICY_PLAIN: lambda: C.lc_invoke(C.holysheep_policy(base_url, **C.LIMITS_OFF)),
        OPENAI_STREAMING: lambda: C.lc_invoke(C.chat_openai(base_url, streaming=True)),
        POLICY_STREAMING: lambda: C.lc_invoke(
            C.holysheep_policy(base_url, streaming=True)
        ),
        LEAN_WHATIF: lambda: C.prototype_lean_sdk_sync(base_url),
    }


def summarize(
    samples: dict[str, H.Samples], sim_cpu_ms: float | None
) -> tuple[list[str], list[list[str]], dict]:
    raw = samples.get(RAW)
    base = samples.get(BASE)
    columns = [
        "contender",
        "median ms",
        "p95 ms",
        "added over raw, ms (paired median)",
        "ratio to bare ChatOpenAI (median, 95% CI)",
        "client CPU ms/call (median)",
        "n",
    ]
    rows = []
    summary: dict = {}
    for name, s in samples.items():
        t = H.ms(s.total)
        row = [name, H.fmt(H.median(t), 3), H.fmt(H.pct(t, 95), 3)]
        added = H.paired_median_diff(s.total, raw.total) if raw else float("nan")
        row.append("-" if name == RAW else H.fmt(added, 3))
        if base:
            r, lo, hi = H.ratio_ci(t, H.ms(base.total))
            row.append("1.000" if name == BASE else f"{r:.3f} ({lo:.3f}-{hi:.3f})")
        else:
            r = lo = hi = float("nan")
            row.append("n/a")
        cpu = H.median(H.ms(s.cpu))
        row += [
            H.fmt(cpu, 3),
            str(len(t)) + (f" ({s.errors} errors)" if s.errors else ""),
        ]
        rows.append(row)
        summary[name] = {
            "median_ms": H.median(t),
            "p95_ms": H.pct(t, 95),
            "p99_ms": H.pct(t, 99),
            "added_over_raw_ms": added,
            "ratio_to_chatopenai": r,
            "ratio_ci": [lo, hi],
            "client_cpu_ms": cpu,
            "n": len(t),
            "errors": s.errors,
            "first_error": s.first_error,
        }
    summary["_sim_cpu_ms_per_request"] = sim_cpu_ms
    return columns, rows, summary


def reading(summary: dict, skipped: dict, versus: dict | None) -> str:
    raw = summary.get(RAW, {})
    base = summary.get(BASE, {})
    parts = []
    if raw:
        sim = summary.get("_sim_cpu_ms_per_request")
        parts.append(
            f"The floor (one raw httpx2 POST to the simulator in another process) is "
            f"{raw['median_ms']:.2f} ms median"
            + (
                f", of which the simulator spends ~{sim:.2f} ms of CPU per request"
                if sim
                else ""
            )
            + "."
        )
    for name, v in summary.items():
        if name.startswith("_") or name == RAW:
            continue
        parts.append(
            f"{name}: +{v['added_over_raw_ms']:.2f} ms over raw, x{v['ratio_to_chatopenai']:.3f} of bare ChatOpenAI."
        )
    limits = summary.get("_limits_cost_ms")
    if limits is not None:
        parts.append(
            "The default limits (answer read as a stream) against plain requests, "
            f"same policy: {limits:+.3f} ms per call (paired median)."
        )
    for name in TARGETED:
        v = summary.get(name)
        if v and base:
            ok = v["ratio_to_chatopenai"] <= T.SEQUENTIAL_RATIO
            parts.append(
                f"Target (<= x{T.SEQUENTIAL_RATIO:.2f} of bare ChatOpenAI), {name}: "
                f"{'meets' if ok else 'misses'} it (x{v['ratio_to_chatopenai']:.3f}, "
                f"95% CI {v['ratio_ci'][0]:.3f}-{v['ratio_ci'][1]:.3f})."
            )
        elif name in skipped:
            parts.append(f"{name} not measured: {skipped[name]}.")
    parts.append(T.vs_litellm_sentence(versus))
    return " ".join(p for p in parts if p)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=H.count(1200, 15))
    ap.add_argument("--warmup", type=int, default=H.count(40, 3))
    args = ap.parse_args(argv)
    keep: list = []
    with (
        tempfile.TemporaryDirectory(prefix="hs-bench-overhead-") as folder,
        H.SimProcess() as sim,
    ):
        built, skipped = H.build_contenders(builders(sim.base_url, folder, keep))
        cpu0 = H.proc_cpu_seconds(sim.pid)
        samples, dropped = H.run_interleaved(
            built, args.iterations, args.warmup, progress=NAME
        )
        cpu1 = H.proc_cpu_seconds(sim.pid)
        calls = sum(len(s.total) + s.errors for s in samples.values())
        sim_cpu_ms = (
            (cpu1 - cpu0) * 1000 / calls
            if cpu0 is not None and cpu1 is not None and calls
            else None
        )
        for ledger in keep:
            with contextlib.suppress(Exception):
                ledger.close()
    skipped.update(dropped)
    columns, rows, summary = summarize(samples, sim_cpu_ms)
    if POLICY in samples and POLICY_PLAIN in samples:
        summary["_limits_cost_ms"] = H.paired_median_diff(
            samples[POLICY].total, samples[POLICY_PLAIN].total
        )
    versus = T.vs_litellm_added(
        summary, POLICY, LITELLM, floor="one raw POST (paired medians)"
    )
    H.print_table(f"{NAME}: {args.iterations} interleaved iterations", columns, rows)
    for k, v in skipped.items():
        print(f"  skipped {k}: {v}")
    H.write_result(
        NAME,
        {
            "title": "1. Sequential per-call latency (non-streaming)",
            "config": {
                "iterations": args.iterations,
                "warmup": args.warmup,
                "prompt": H.PROMPT,
            },
            "tables": [
                {
                    "title": f"{args.iterations} calls per contender, interleaved",
                    "columns": columns,
                    "rows": rows,
                }
            ],
            "skipped": skipped,
            "summary": summary,
            "vs_litellm": versus,
            "reading": reading(summary, skipped, versus),
        },
        args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
