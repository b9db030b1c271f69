"""Benchmark 2: streaming time-to-first-token and total time, interleaved.

Contenders as in benchmark 1, streaming: raw httpx2 reading the SSE body to its
end (the floor), bare ChatOpenAI, ChatOpenAI with `.with_retry().with_fallbacks()`,
LiteLLM Router, and ChatHolySheep bare (its default first-token and stall limits,
30 s), with the whole policy and 10 s limits, and with the whole policy and the
limits off. The simulator streams a role chunk, ~28 content chunks and a usage
chunk (`stream_options.include_usage`), then `[DONE]`. ttft = time until the
first non-empty content delta reaches the caller. Every contender asks for usage
in the stream (ChatOpenAI gets `stream_usage=True`, which it leaves off for
custom base URLs) so all of them receive the same bytes. The second table counts
the TCP connections five consecutive streams open after a first one (0: each
stream returns its connection to the pool).
"""

from __future__ import annotations

import argparse
import sys

import contenders as C
import harness as H
import targets as T

NAME = "stream"
RAW = "raw httpx2 SSE read"
BASE = "ChatOpenAI (bare)"
LITELLM = "LiteLLM Router (fallbacks)"
BARE = "ChatHolySheep (bare: default 30 s first-token/stall limits)"
POLICY = "ChatHolySheep (whole policy + 10 s first-token/stall limits)"
POLICY_PLAIN = "ChatHolySheep (whole policy, limits off)"


def builders(base_url: str) -> dict:
    return {
        RAW: lambda: C.raw_httpx2_stream(base_url),
        BASE: lambda: C.lc_stream(C.chat_openai(base_url, stream_usage=True)),
        "ChatOpenAI .with_retry().with_fallbacks()": lambda: C.lc_stream(
            C.chat_openai_retry_fallbacks(base_url, stream_usage=True)
        ),
        LITELLM: lambda: C.router_stream(C.litellm_router(base_url)),
        BARE: lambda: C.lc_stream(C.holysheep_bare(base_url)),
        POLICY: lambda: C.lc_stream(
            C.holysheep_policy(base_url, first_token_timeout=10.0, stall_timeout=10.0)
        ),
        POLICY_PLAIN: lambda: C.lc_stream(C.holysheep_policy(base_url, **C.LIMITS_OFF)),
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


def _ratio_cell(name: str, r: float, lo: float, hi: float) -> str:
    return "1.000" if name == BASE else f"{r:.3f} ({lo:.3f}-{hi:.3f})"


def summarize(samples: dict[str, H.Samples]) -> tuple[list[str], list[list[str]], dict]:
    base = samples.get(BASE)
    raw = samples.get(RAW)
    columns = [
        "contender",
        "ttft median ms",
        "ttft p95 ms",
        "ttft ratio to ChatOpenAI (95% CI)",
        "total median ms",
        "total p95 ms",
        "total added over raw, ms",
        "total ratio to ChatOpenAI (95% CI)",
        "client CPU ms/stream",
    ]
    nan = float("nan")
    rows, summary = [], {}
    for name, s in samples.items():
        ttft = H.ms(s.marks.get("ttft", []))
        tot = H.ms(s.total)
        added = H.paired_median_diff(s.total, raw.total) if raw else nan
        r, lo, hi = H.ratio_ci(tot, H.ms(base.total)) if base else (nan, nan, nan)
        tr, tlo, thi = (
            H.ratio_ci(ttft, H.ms(base.marks.get("ttft", [])))
            if base
            else (nan, nan, nan)
        )
        rows.append(
            [
                name,
                H.fmt(H.median(ttft), 3),
                H.fmt(H.pct(ttft, 95), 3),
                _ratio_cell(name, tr, tlo, thi),
                H.fmt(H.median(tot), 3),
                H.fmt(H.pct(tot, 95), 3),
                "-" if name == RAW else H.fmt(added, 3),
                _ratio_cell(name, r, lo, hi),
                H.fmt(H.median(H.ms(s.cpu)), 3),
            ]
        )
        summary[name] = {
            "ttft_median_ms": H.median(ttft),
            "ttft_p95_ms": H.pct(ttft, 95),
            "ttft_ratio_to_chatopenai": tr,
            "ttft_ratio_ci": [tlo, thi],
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


def target_sentences(summary: dict) -> list[str]:
    """The whole-policy stream against bare ChatOpenAI: first token and total."""
    v = summary.get(POLICY)
    if not v or BASE not in summary:
        return []
    out = []
    for label, key in (("first token", "ttft_"), ("total", "")):
        r = v[f"{key}ratio_to_chatopenai"]
        lo, hi = v[f"{key}ratio_ci"]
        verdict = "meets" if r <= T.STREAM_RATIO else "misses"
        out.append(
            f"Target ({label} <= x{T.STREAM_RATIO:.2f} of bare ChatOpenAI), {POLICY}: "
            f"{verdict} it (x{r:.3f}, 95% CI {lo:.3f}-{hi:.3f})."
        )
    return out


def reading(
    summary: dict, events: int, conns: dict, skipped: dict, versus: dict | None
) -> str:
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
            f"{name}: first token {v['ttft_median_ms']:.2f} ms "
            f"(x{v['ttft_ratio_to_chatopenai']:.2f}), total {v['total_median_ms']:.2f} "
            f"ms (x{v['ratio_to_chatopenai']:.2f} of ChatOpenAI)."
        )
    if conns:
        parts.append(
            "New TCP connections per 5 streams after the first: "
            + ", ".join(f"{k} {v}" for k, v in conns.items())
            + " (0 means the connection is reused)."
        )
    parts += target_sentences(summary)
    parts.append(T.vs_litellm_sentence(versus))
    if POLICY in skipped:
        parts.append(f"Whole-policy ChatHolySheep not measured: {skipped[POLICY]}.")
    return " ".join(p for p in parts if p)


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
    versus = T.vs_litellm_added(
        summary, POLICY, LITELLM, floor="a raw SSE read (total, paired medians)"
    )
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
            "vs_litellm": versus,
            "reading": reading(summary, events, conns, skipped, versus),
        },
        args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
