"""Benchmark 3: async throughput at concurrency 32 (calls/s for a fixed number of calls).

Each round runs the same number of calls for every contender, 32 in flight, one
contender after another in a per-round shuffled order; the table gives the
median over rounds. Client and simulator CPU per call are measured too (the
simulator runs in its own process, so a client that needs less CPU than the
simulator is bounded by the simulator, not by itself: see the sim CPU column).

ChatHolySheep runs as it ships: on its default transport (httpx, no extra
install) and with its default first-token and stall limits (30 s), so each call
reads its answer as a stream; bare and with the whole policy on. The same two on
the aiohttp transport (`async_transport='aiohttp'`, an opt-in that needs the
`aiohttp` extra) are shown beside, with ChatOpenAI on openai's aiohttp client
(`http_async_client=openai.DefaultAioHttpClient()`) for comparison. The
what-ifs are subclasses of ChatOpenAI, not product code: they show what
skipping parts of the openai SDK's per-call work is worth.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import contenders as C
import harness as H
import targets as T

NAME = "async"
RAW = "raw httpx2 AsyncClient"
BASE = "ChatOpenAI (bare, httpx2)"
LITELLM = "LiteLLM Router acompletion (fallbacks)"
BARE = "ChatHolySheep (bare: default transport, default 30 s limits)"
POLICY = "ChatHolySheep (whole policy: default transport, default 30 s limits)"
BARE_AIO = "ChatHolySheep (bare, async_transport='aiohttp' opt-in)"
POLICY_AIO = "ChatHolySheep (whole policy, async_transport='aiohttp' opt-in)"
TARGETED = {BARE: BARE_AIO, POLICY: POLICY_AIO}
"""Default-transport contenders (>= T.ASYNC_RATIO) and their aiohttp twins."""
PROTO_INLINE = (
    "what-if: ChatOpenAI + aiohttp, ChatResult built inline (no executor hop)"
)
PROTO_LEAN = (
    "what-if: ChatOpenAI + aiohttp, openai client.post(cast_to=dict), inline result"
)
PROTO_DIRECT = "what-if: ChatOpenAI, payload posted with plain aiohttp, no openai SDK"


def builders(base_url: str) -> dict:
    from langchain_holysheep import ChatHolySheep

    def hs_aio(policy: bool):  # type: ignore[no-untyped-def]
        def build():  # type: ignore[no-untyped-def]
            factory = C.holysheep_policy if policy else C.holysheep_bare
            if C.accepts(ChatHolySheep, "async_transport"):
                return C.lc_ainvoke(factory(base_url, async_transport="aiohttp"))
            if C.accepts(ChatHolySheep, "http_async_client"):
                return C.lc_ainvoke(
                    factory(base_url, http_async_client=C.aiohttp_client())
                )
            raise H.Skip("ChatHolySheep has no aiohttp option")

        return build

    return {
        RAW: lambda: C.raw_httpx2_async(base_url),
        "raw aiohttp": lambda: C.raw_aiohttp(base_url),
        BASE: lambda: C.lc_ainvoke(C.chat_openai(base_url)),
        "ChatOpenAI (http_async_client=openai.DefaultAioHttpClient())": lambda: (
            C.lc_ainvoke(C.chat_openai(base_url, http_async_client=C.aiohttp_client()))
        ),
        LITELLM: lambda: C.router_acall(C.litellm_router(base_url)),
        BARE: lambda: C.lc_ainvoke(C.holysheep_bare(base_url)),
        BARE_AIO: hs_aio(False),
        POLICY: lambda: C.lc_ainvoke(C.holysheep_policy(base_url)),
        POLICY_AIO: hs_aio(True),
        PROTO_INLINE: lambda: C.prototype_inline_result(base_url),
        PROTO_LEAN: lambda: C.prototype_lean_sdk_async(base_url),
        PROTO_DIRECT: lambda: C.prototype_direct_aiohttp(base_url),
    }


def summarize(rates: dict, cpu: dict) -> tuple[list[str], list[list[str]], dict]:
    base = rates.get(BASE)
    columns = [
        "contender",
        "calls/s (median of rounds)",
        "min-max over rounds",
        "x bare ChatOpenAI",
        "client CPU ms/call",
        "simulator CPU ms/call",
        "errors",
    ]
    rows, summary = [], {}
    for name, rs in rates.items():
        med = H.median(rs)
        ratio = med / H.median(base) if base else float("nan")
        c = cpu[name]
        client_ms = c["client_s"] * 1000 / c["calls"] if c["calls"] else float("nan")
        sim_ms = c["sim_s"] * 1000 / c["calls"] if c["calls"] else float("nan")
        rows.append(
            [
                name,
                H.fmt(med, 0),
                f"{min(rs):,.0f}-{max(rs):,.0f}",
                H.fmt(ratio, 2),
                H.fmt(client_ms, 3),
                H.fmt(sim_ms, 3),
                str(int(c["errors"])),
            ]
        )
        summary[name] = {
            "calls_per_s": med,
            "rounds": rs,
            "ratio_to_chatopenai": ratio,
            "client_cpu_ms": client_ms,
            "sim_cpu_ms": sim_ms,
            "errors": c["errors"],
        }
    return columns, rows, summary


def vs_litellm(summary: dict) -> dict | None:
    """Per-call time at concurrency 32 (1 / throughput) over raw httpx2's: the
    whole policy's against LiteLLM Router's."""
    raw, pol, lite = summary.get(RAW), summary.get(POLICY), summary.get(LITELLM)
    if not (raw and pol and lite):
        return None

    def over_raw(v: dict) -> float:
        return 1000 / v["calls_per_s"] - 1000 / raw["calls_per_s"]

    return T.vs_litellm(
        "whole policy",
        over_raw(pol),
        "LiteLLM Router",
        over_raw(lite),
        floor="raw httpx2 AsyncClient (ms per call = 1 / throughput)",
    )


def target_sentences(summary: dict) -> list[str]:
    """Default transport against bare ChatOpenAI, the aiohttp twin beside."""
    out = []
    for name, aio in TARGETED.items():
        v = summary.get(name)
        if not v or BASE not in summary:
            continue
        verdict = "meets" if v["ratio_to_chatopenai"] >= T.ASYNC_RATIO else "misses"
        twin = summary.get(aio)
        beside = f"; {aio}: x{twin['ratio_to_chatopenai']:.2f}" if twin else ""
        out.append(
            f"Target (>= {T.ASYNC_RATIO:.0f}x bare ChatOpenAI on the default "
            f"transport), {name}: {verdict} it "
            f"(x{v['ratio_to_chatopenai']:.2f}{beside})."
        )
    return out


def reading(
    summary: dict, skipped: dict, concurrency: int, calls: int, versus: dict | None
) -> str:
    parts = [f"{calls} calls per round at concurrency {concurrency}."]
    aio = summary.get("raw aiohttp")
    if aio:
        sim = aio["sim_cpu_ms"]
        parts.append(
            f"Raw aiohttp reaches {aio['calls_per_s']:,.0f} calls/s with {aio['client_cpu_ms']:.2f} ms of client CPU per "
            f"call; the simulator needs {sim:.2f} ms of CPU per request, so ~{1000 / sim:,.0f} calls/s is the most one "
            "simulator process can serve: the fastest contenders are bounded by the simulator, not by themselves."
        )
    for name, v in summary.items():
        parts.append(
            f"{name}: {v['calls_per_s']:,.0f} calls/s (x{v['ratio_to_chatopenai']:.2f}, {v['client_cpu_ms']:.2f} ms CPU/call)."
        )
    parts += target_sentences(summary)
    parts.append(T.vs_litellm_sentence(versus))
    for name in (*TARGETED, *TARGETED.values()):
        if name in skipped:
            parts.append(f"{name} not measured: {skipped[name]}.")
    return " ".join(p for p in parts if p)


async def run(base_url: str, args: argparse.Namespace, sim_pid: int | None) -> tuple:
    built, skipped = H.build_contenders(builders(base_url))
    rates, cpu, dropped = await H.arun_rounds(
        built,
        rounds=args.rounds,
        calls=args.calls,
        concurrency=args.concurrency,
        warmup_calls=args.warmup,
        progress=NAME,
        sim_pid=sim_pid,
    )
    skipped.update(dropped)
    for fn in built.values():  # close aiohttp sessions politely
        session = getattr(fn, "session", None)
        if session is not None:
            await session.close()
    await C.aclose_all()
    await C.aclose_sessions()
    return rates, cpu, skipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=H.count(200, 64))
    ap.add_argument("--rounds", type=int, default=H.count(12, 2))
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=H.count(64, 32))
    args = ap.parse_args(argv)
    with H.SimProcess() as sim:
        rates, cpu, skipped = asyncio.run(run(sim.base_url, args, sim.pid))
    columns, rows, summary = summarize(rates, cpu)
    versus = vs_litellm(summary)
    H.print_table(
        f"{NAME}: {args.rounds} rounds x {args.calls} calls, concurrency {args.concurrency}",
        columns,
        rows,
    )
    for k, v in skipped.items():
        print(f"  skipped {k}: {v}")
    H.write_result(
        NAME,
        {
            "title": f"3. Async throughput at concurrency {args.concurrency}",
            "config": vars(args),
            "tables": [
                {
                    "title": f"{args.rounds} rounds x {args.calls} calls per contender, {args.concurrency} in flight",
                    "columns": columns,
                    "rows": rows,
                }
            ],
            "skipped": skipped,
            "summary": summary,
            "vs_litellm": versus,
            "reading": reading(summary, skipped, args.concurrency, args.calls, versus),
        },
        args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
