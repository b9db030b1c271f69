"""Benchmark 2: streaming time-to-first-token and total time, interleaved.

Same contenders as benchmark 1. The simulator streams a role chunk, ~28 content
chunks and a usage chunk (`stream_options.include_usage`), then `[DONE]`.
ttft = time until the first non-empty content delta reaches the caller. Every
contender asks for usage in the stream (ChatOpenAI gets `stream_usage=True`,
which it leaves off for custom base URLs) so all of them receive the same bytes.
"""

from __future__ import annotations

import argparse
import sys

import contenders as C
import harness as H

NAME = "stream"
RAW = "raw httpx2 SSE read"
BASE = "ChatOpenAI (bare)"
POLICY = "ChatHolySheep (whole policy, first-token 10 s + stall 10 s limits)"


def builders(base_url: str) -> dict:
    return {
        RAW: lambda: C.raw_httpx2_stream(base_url),
        BASE: lambda: C.lc_stream(C.chat_openai(base_url, stream_usage=True)),
        "ChatOpenAI .with_retry().with_fallbacks()": lambda: C.lc_stream(
            C.chat_openai_retry_fallbacks(base_url, stream_usage=True)
        ),
        "LiteLLM Router (fallbacks)": lambda: C.router_stream(
            C.litellm_router(base_url)
        ),
        "ChatHolySheep (bare)": lambda: C.lc_stream(C.holysheep_bare(base_url)),
        POLICY: lambda: C.lc_stream(
            C.holysheep_policy(base_url, first_token_timeout=10.0, stall_timeout=10.0)
        ),
        "what-if: whole policy, pump thread yields the GIL after the first content chunk": lambda: (
            C.prototype_pump_handoff(
                base_url, first_token_timeout=10.0, stall_timeout=10.0
            )
        ),
    }


def sse_event_count(base_url: str) -> int:
    import httpx2

    with (
        httpx2.Client(base_url=base_url, headers=C.HEADERS) as client,
        client.stream("POST", "/chat/completions", json=C.STREAM_BODY) as r,
    ):
        return sum(1 for line in r.iter_lines() if line.startswith("data: "))


def new_connections(base_url: str, model_factory, n: int = 5) -> int:
    """How many TCP connections `n` streams through `model_factory()` open, from
    the client's point of view (counted by a socket-connect hook)."""
    import socket

    real_connect = socket.socket.connect
    opened = 0

    def counting_connect(self, address):  # type: ignore[no-untyped-def]
        nonlocal opened
        if isinstance(address, tuple) and address[0] in ("127.0.0.1", "localhost"):
            opened += 1
        return real_connect(self, address)

    call = model_factory()
    call()  # the first connection is not counted
    socket.socket.connect = counting_connect  # type: ignore[method-assign]
    try:
        for _ in range(n):
            call()
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
    return opened


def summarize(samples: dict[str, H.Samples]) -> tuple[list[str], list[list[str]], dict]:
    base = samples.get(BASE)
    raw = samples.get(RAW)
    columns = [
        "contender",
        "ttft median ms",
        "ttft p95 ms",
        "total median ms",
        "total p95 ms",
        "total added over raw, ms",
        "total ratio to ChatOpenAI (95% CI)",
        "client CPU ms/stream",
    ]
    rows, summary = [], {}
    for name, s in samples.items():
        ttft = H.ms(s.marks.get("ttft", []))
        tot = H.ms(s.total)
        added = H.paired_median_diff(s.total, raw.total) if raw else float("nan")
        if base:
            r, lo, hi = H.ratio_ci(tot, H.ms(base.total))
        else:
            r = lo = hi = float("nan")
        rows.append(
            [
                name,
                H.fmt(H.median(ttft), 3),
                H.fmt(H.pct(ttft, 95), 3),
                H.fmt(H.median(tot), 3),
                H.fmt(H.pct(tot, 95), 3),
                "-" if name == RAW else H.fmt(added, 3),
                "1.000" if name == BASE else f"{r:.3f} ({lo:.3f}-{hi:.3f})",
                H.fmt(H.median(H.ms(s.cpu)), 3),
            ]
        )
        summary[name] = {
            "ttft_median_ms": H.median(ttft),
            "ttft_p95_ms": H.pct(ttft, 95),
            "total_median_ms": H.median(tot),
            "total_p95_ms": H.pct(tot, 95),
            "added_over_raw_ms": added,
            "ratio_to_chatopenai": r,
            "ratio_ci": [lo, hi],
            "client_cpu_ms": H.median(H.ms(s.cpu)),
            "n": len(tot),
            "errors": s.errors,
            "first_error": s.first_error,
        }
    return columns, rows, summary


def reading(summary: dict, events: int, conns: dict, skipped: dict) -> str:
    parts = [f"Each stream carries {events} SSE `data:` events."]
    raw = summary.get(RAW)
    if raw:
        parts.append(
            f"Raw httpx2 reads the whole stream in {raw['total_median_ms']:.2f} ms "
            f"(first token {raw['ttft_median_ms']:.2f} ms)."
        )
    for name, v in summary.items():
        if name == RAW:
            continue
        parts.append(
            f"{name}: first token {v['ttft_median_ms']:.2f} ms, total {v['total_median_ms']:.2f} ms "
            f"(x{v['ratio_to_chatopenai']:.2f} of ChatOpenAI)."
        )
    if conns:
        parts.append(
            "New TCP connections per 5 streams after the first: "
            + ", ".join(f"{k} {v}" for k, v in conns.items())
            + " (0 means the connection is reused)."
        )
    if POLICY in skipped:
        parts.append(f"Whole-policy ChatHolySheep not measured: {skipped[POLICY]}.")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=H.count(300, 10))
    ap.add_argument("--warmup", type=int, default=H.count(20, 2))
    args = ap.parse_args(argv)
    with H.SimProcess() as sim:
        events = sse_event_count(sim.base_url)
        b = builders(sim.base_url)
        built, skipped = H.build_contenders(b)
        conns = {}
        for name in built:
            try:
                conns[name] = new_connections(sim.base_url, b[name])
            except Exception as exc:  # reported, not fatal
                conns[name] = f"error: {type(exc).__name__}"
        samples, dropped = H.run_interleaved(
            built, args.iterations, args.warmup, progress=NAME
        )
    skipped.update(dropped)
    columns, rows, summary = summarize(samples)
    H.print_table(f"{NAME}: {args.iterations} interleaved iterations", columns, rows)
    print("new connections per 5 streams:", conns)
    for k, v in skipped.items():
        print(f"  skipped {k}: {v}")
    H.write_result(
        NAME,
        {
            "title": "2. Streaming: time to first token and total",
            "config": {
                "iterations": args.iterations,
                "warmup": args.warmup,
                "sse_events": events,
            },
            "tables": [
                {
                    "title": f"{args.iterations} streams per contender, interleaved",
                    "columns": columns,
                    "rows": rows,
                },
                {
                    "title": "TCP connections opened by 5 consecutive streams (after a first one)",
                    "columns": ["contender", "new connections"],
                    "rows": [[k, str(v)] for k, v in conns.items()],
                },
            ],
            "skipped": skipped,
            "summary": summary,
            "connections": conns,
            "reading": reading(summary, events, conns, skipped),
        },
        args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
