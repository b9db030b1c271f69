"""BENCHMARKS.md rows and findings for the latency benchmarks (sections 1-4).

The targets (sequential, streams, async, open-circuit skip, overhead against
LiteLLM Router) and the "Where the time goes" bullets that the sequential,
streaming and async results support. Contender names come from the benchmark
modules, so a renamed contender cannot leave a stale lookup here.
"""

from __future__ import annotations

import math

import bench_async as AS
import bench_overhead as OV
import bench_stream as ST
import targets as T

Row = list[str]


def get(d: object, *path: str) -> object:
    """`d[path[0]][path[1]]...`, or None where a key is missing."""
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _ratio(v: dict, key: str = "") -> str:
    lo, hi = v[f"{key}ratio_ci"]
    return f"x{v[f'{key}ratio_to_chatopenai']:.3f} (95% CI {lo:.3f}-{hi:.3f})"


def sequential_rows(results: dict) -> list[Row]:
    """1. The whole policy with first-token/stall limits, x bare ChatOpenAI."""
    ov = get(results, "overhead", "summary")
    if not isinstance(ov, dict):
        return []
    target = f"1. Sequential <= x{T.SEQUENTIAL_RATIO:.2f} of bare ChatOpenAI"
    rows = []
    for name in OV.TARGETED:
        v = ov.get(name)
        if isinstance(v, dict):
            rows.append(
                [
                    f"{target}: {name}",
                    f"{_ratio(v)}, {v['added_over_raw_ms']:+.2f} ms over raw",
                    _verdict(v["ratio_to_chatopenai"] <= T.SEQUENTIAL_RATIO),
                ]
            )
    return rows


def stream_rows(results: dict) -> list[Row]:
    """2. The whole-policy stream: first token and total, x bare ChatOpenAI."""
    v = get(results, "stream", "summary", ST.POLICY)
    if not isinstance(v, dict) or "ttft_ratio_ci" not in v:
        return []
    return [
        [
            f"2. Stream {label} <= x{T.STREAM_RATIO:.2f} of bare ChatOpenAI: "
            + ST.POLICY,
            f"{_ratio(v, key)}, {v[median]:.2f} ms median",
            _verdict(v[f"{key}ratio_to_chatopenai"] <= T.STREAM_RATIO),
        ]
        for label, key, median in (
            ("first token", "ttft_", "ttft_median_ms"),
            ("total", "", "total_median_ms"),
        )
    ]


def async_rows(results: dict) -> list[Row]:
    """3. Default transport, bare and whole policy; aiohttp shown beside."""
    asy = get(results, "async", "summary")
    if not isinstance(asy, dict):
        return []
    target = (
        f"3. Async throughput at concurrency 32 >= {T.ASYNC_RATIO:.0f}x bare "
        "ChatOpenAI on the default transport"
    )
    rows = []
    for name, twin in AS.TARGETED.items():
        v, w = asy.get(name), asy.get(twin)
        if not isinstance(v, dict):
            continue
        beside = (
            f"; beside it, the aiohttp opt-in x{w['ratio_to_chatopenai']:.2f} "
            f"({w['calls_per_s']:,.0f} calls/s)"
            if isinstance(w, dict)
            else ""
        )
        rows.append(
            [
                f"{target}: {name}",
                f"x{v['ratio_to_chatopenai']:.2f} ({v['calls_per_s']:,.0f} calls/s)"
                + beside,
                _verdict(v["ratio_to_chatopenai"] >= T.ASYNC_RATIO),
            ]
        )
    return rows


def skip_rows(results: dict) -> list[Row]:
    """4. The open-circuit skip against the same policy on a healthy chain."""
    fast = get(results, "failover", "summary", "fast")
    skip = get(fast, "_skip_cost_ms")
    if not isinstance(skip, float):
        return []
    cpu = get(fast, "_skip_cost_cpu_ms")
    allow_ns = get(
        results, "failover", "summary", "verify", "breaker_micro", "allow_ns"
    )
    cpu_txt = f", {cpu:+.3f} ms CPU" if isinstance(cpu, float) else ""
    check = (
        f"; the breaker check alone {allow_ns:.0f} ns"
        if isinstance(allow_ns, float)
        else ""
    )
    if skip < T.SKIP_MS:
        verdict = "met"
    elif isinstance(cpu, float) and cpu < T.SKIP_MS:
        verdict = "met on CPU; wall clock within noise"
    else:
        verdict = "**missed**"
    return [
        [
            f"4. Open-circuit skip < {T.SKIP_MS} ms "
            "(vs the same policy on a healthy chain)",
            f"{skip:+.3f} ms wall (paired median){cpu_txt}{check}",
            verdict,
        ]
    ]


def litellm_row(results: dict, section: str, label: str) -> list[Row]:
    """Overhead over raw httpx at least T.LITELLM_FACTOR times smaller than
    LiteLLM Router's, in `section` (no row where either did not run)."""
    v = get(results, section, "vs_litellm")
    if not isinstance(v, dict):
        return []
    return [
        [
            f"{label}: overhead over raw httpx >= {T.LITELLM_FACTOR:.0f}x smaller "
            "than LiteLLM Router's",
            T.factor_text(v),
            "n/a" if math.isnan(v["factor"]) else _verdict(v["met"]),
        ]
    ]


def latency_targets(results: dict) -> list[Row]:
    """Every target of sections 1-4, section by section."""
    return (
        sequential_rows(results)
        + litellm_row(results, "overhead", "1. Sequential")
        + stream_rows(results)
        + litellm_row(results, "stream", "2. Streaming")
        + async_rows(results)
        + litellm_row(results, "async", "3. Async")
        + skip_rows(results)
        + litellm_row(results, "failover", "4. Failover")
    )


# --------------------------------------------------------------------------- findings
def _times(v: dict) -> str:
    return f"{v['median_ms']:.2f} ms ({v['client_cpu_ms']:.2f} ms CPU)"


def _x(v: dict, digits: int = 2) -> str:
    return f"x{v['ratio_to_chatopenai']:.{digits}f}"


def sequential_findings(results: dict) -> list[str]:
    """What the default limits, the policy and `streaming=True` cost per call."""
    ov = get(results, "overhead", "summary")
    base = get(ov, OV.BASE)
    if not isinstance(ov, dict) or not isinstance(base, dict):
        return []
    out = []
    bare, pol, plain = ov.get(OV.BARE), ov.get(OV.POLICY), ov.get(OV.POLICY_PLAIN)
    if bare and pol:
        out.append(
            f"Sync medians: bare ChatOpenAI {_times(base)}, bare ChatHolySheep "
            f"{_times(bare)}, the whole policy {_times(pol)}; both ChatHolySheep "
            "contenders run with the default limits, reading each answer as a "
            "stream on the lean wire path."
        )
    cost = ov.get("_limits_cost_ms")
    if plain and pol and isinstance(cost, float):
        out.append(
            "The default first-token/stall limits against plain requests (the whole "
            "policy with `first_token_timeout=None, stall_timeout=None`, "
            f"{_x(plain, 3)}): {cost:+.3f} ms per call (paired median)."
        )
    agg = [ov.get(n) for n in (OV.OPENAI_STREAMING, OV.POLICY_STREAMING)]
    if agg[0] and agg[1] and pol:
        out.append(
            "`streaming=True` is another path: LangChain's `invoke` aggregates "
            f"`stream()` chunks into one message, {_x(agg[0])} of bare ChatOpenAI "
            f"for ChatOpenAI and {_x(agg[1])} for the whole policy, against "
            f"{_x(pol)} for the default call that reads its answer as a stream."
        )
    lean = ov.get(OV.LEAN_WHATIF)
    if lean:
        out.append(
            "Sync what-if (a ChatOpenAI subclass, not product code): posting the "
            "payload LangChain built through the openai client's "
            "`post(..., cast_to=dict)` (no request transform, no pydantic response) "
            f"runs at {_x(lean, 3)} of bare ChatOpenAI, {_times(lean)}."
        )
    return out


def stream_findings(results: dict) -> list[str]:
    """Stream limits' cost and connection reuse, from section 2."""
    st = get(results, "stream", "summary")
    if not isinstance(st, dict):
        return []
    out = []
    named = [(n, st.get(n)) for n in (ST.BARE, ST.POLICY, ST.POLICY_PLAIN)]
    if all(v for _, v in named):
        out.append(
            "Streams, first token / total (median ms): "
            + "; ".join(
                f"{n} {v['ttft_median_ms']:.2f} / {v['total_median_ms']:.2f}"
                for n, v in named
            )
            + "."
        )
    conns = get(results, "stream", "connections")
    if isinstance(conns, dict) and conns:
        sdk = conns.get(ST.BASE)
        why = (
            "; the openai SDK stops reading at `[DONE]`, so ChatOpenAI's "
            "connection is not reused"
            if isinstance(sdk, int) and sdk > 0
            else ""
        )
        out.append(
            "New TCP connections opened by 5 streams after a first one: "
            + ", ".join(f"{k} {v}" for k, v in conns.items())
            + " (0: a stream read to its end returns its connection to the pool"
            + why
            + ")."
        )
    return out


def async_findings(results: dict) -> list[str]:
    """The async what-ifs, and which of them reach the async target."""
    asy = get(results, "async", "summary")
    if not isinstance(asy, dict) or AS.BASE not in asy:
        return []
    whatifs = [(k, v) for k, v in asy.items() if k.startswith("what-if")]
    if not whatifs:
        return []
    reach = [k[9:] for k, v in whatifs if v["ratio_to_chatopenai"] >= T.ASYNC_RATIO]
    return [
        "Async what-ifs (ChatOpenAI subclasses, not product code; x bare "
        "ChatOpenAI): "
        + "; ".join(
            f"{k[9:]} {_x(v)} ({v['client_cpu_ms']:.2f} ms CPU/call)"
            for k, v in whatifs
        )
        + f". Reaching {T.ASYNC_RATIO:.0f}x in this run: "
        + ("; ".join(reach) if reach else "none")
        + "."
    ]


def latency_findings(results: dict) -> list[str]:
    """The "Where the time goes" bullets of sections 1-3."""
    return (
        sequential_findings(results)
        + stream_findings(results)
        + async_findings(results)
    )
