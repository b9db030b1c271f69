"""Benchmark 1: sequential per-call latency (non-streaming), interleaved.

Contenders: raw httpx2 POST (the floor), bare ChatOpenAI, ChatOpenAI with
`.with_retry().with_fallbacks()`, LiteLLM Router (fallbacks configured),
ChatHolySheep bare, ChatHolySheep with its whole policy on. Every call succeeds
on the primary (no faults): this is the price of the machinery on the happy path.
"""

from __future__ import annotations

import argparse
import sys

import contenders as C
import harness as H

NAME = "overhead"
RAW = "raw httpx2 POST"
BASE = "ChatOpenAI (bare)"
POLICY = "ChatHolySheep (whole policy)"
POLICY_STREAM_LIMITS = "ChatHolySheep (whole policy + first-token/stall limits)"
TARGET_RATIO = 1.05


def builders(base_url: str) -> dict:
    return {
        RAW: lambda: C.raw_httpx2(base_url),
        BASE: lambda: C.lc_invoke(C.chat_openai(base_url)),
        "ChatOpenAI .with_retry().with_fallbacks()": lambda: C.lc_invoke(
            C.chat_openai_retry_fallbacks(base_url)
        ),
        "LiteLLM Router (fallbacks)": lambda: C.router_call(C.litellm_router(base_url)),
        "ChatHolySheep (bare)": lambda: C.lc_invoke(C.holysheep_bare(base_url)),
        POLICY: lambda: C.lc_invoke(C.holysheep_policy(base_url)),
        POLICY_STREAM_LIMITS: lambda: C.lc_invoke(
            C.holysheep_policy(base_url, first_token_timeout=10.0, stall_timeout=10.0)
        ),
        # What a protective default would cost: invoke streamed internally so
        # that the first-token and stall limits bound a silent upstream.
        "ChatOpenAI (streaming=True)": lambda: C.lc_invoke(
            C.chat_openai(base_url, streaming=True)
        ),
        "ChatHolySheep (whole policy, invoke streamed + first-token/stall limits)": (
            lambda: C.lc_invoke(
                C.holysheep_policy(
                    base_url,
                    streaming=True,
                    first_token_timeout=30.0,
                    stall_timeout=30.0,
                )
            )
        ),
        "what-if: ChatOpenAI, openai client.post(cast_to=dict), no transform/pydantic": lambda: (
            C.prototype_lean_sdk_sync(base_url)
        ),
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


def reading(summary: dict, skipped: dict) -> str:
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
    pol = summary.get(POLICY)
    if pol and base:
        verdict = "meets" if pol["ratio_to_chatopenai"] <= TARGET_RATIO else "misses"
        parts.append(
            f"Target (whole policy adds <= 5 % to a bare ChatOpenAI call): {verdict} it "
            f"(ratio {pol['ratio_to_chatopenai']:.3f}, 95% CI {pol['ratio_ci'][0]:.3f}-{pol['ratio_ci'][1]:.3f})."
        )
    elif POLICY in skipped:
        parts.append(f"Whole-policy ChatHolySheep not measured: {skipped[POLICY]}.")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=H.count(1200, 15))
    ap.add_argument("--warmup", type=int, default=H.count(40, 3))
    args = ap.parse_args(argv)
    with H.SimProcess() as sim:
        built, skipped = H.build_contenders(builders(sim.base_url))
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
    skipped.update(dropped)
    columns, rows, summary = summarize(samples, sim_cpu_ms)
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
            "reading": reading(summary, skipped),
        },
        args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
