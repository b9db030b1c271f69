"""Write BENCHMARKS.md (repo root) from benchmarks/results/*.json."""

from __future__ import annotations

import datetime as _dt
import json
import re
import subprocess
import sys
from pathlib import Path

import harness as H
import report_latency as RL
import targets as T

ORDER = [
    "overhead",
    "stream",
    "async",
    "failover",
    "replay",
    "spend",
    "state",
    "shared_breakers",
    "network",
    "startup",
    "proxy",
]
STATE_TARGET_MS = 0.3  # the state stores' target
MOVED_PCT = 20.0  # a median that moved this much against the previous run is named
MOVED_RATIO = (
    0.05  # so is a ratio (x bare ChatOpenAI, x floor, ...) that moved this much
)


_get = RL.get


def targets(results: dict) -> list[list[str]]:
    """The project's targets, met or missed, from the result files."""
    rows: list[list[str]] = []

    def row(target: str, measured: str, ok: bool | None) -> None:
        rows.append(
            [target, measured, "n/a" if ok is None else ("met" if ok else "**missed**")]
        )

    rows += RL.latency_targets(results)
    for phase, label in (
        ("phase2", "ChatHolySheep's default breakers"),
        ("phase2b", "documents' count-only breakers, for comparison"),
    ):
        v = _get(results, "replay", "summary", phase)
        if isinstance(v, dict):
            n, ok = v["n"], v["ok"]
            lo, hi = v["wilson95"]
            if ok == n:
                conf = f"95% lower bound {(1 - 3 / n) * 100:.3f} %, rule of three"
            else:
                conf = f"95% CI {lo * 100:.3f}-{hi * 100:.3f} %"
            row(
                f"5. Chain success >= 99.99 % ({label})",
                f"{ok:,}/{n:,} = {v['success_rate'] * 100:.3f} % ({conf})",
                ok == n and 1 - 3 / n >= 0.9999,
            )
    hs = _get(
        results, "replay", "summary", "phase1", "ChatHolySheep chain (whole policy)"
    )
    prim = _get(results, "replay", "summary", "phase1", "gpt-4.1 alone")
    if isinstance(hs, dict) and isinstance(prim, dict):
        row(
            "5. Chain p95 no worse than the primary's own (phase 1)",
            f"{hs['p95_all_ms']:.1f} vs {prim['p95_ok_ms']:.1f} ms (chain success {hs['success_rate'] * 100:.2f} %)",
            hs["p95_all_ms"] <= prim["p95_ok_ms"],
        )
    sp = _get(results, "spend", "summary", "overhead") or {}
    for name in ("+ HolySheepCallbackHandler (tracker)", "+ handler with SQLiteLedger"):
        v = sp.get(name) if isinstance(sp, dict) else None
        if v:
            lo, hi = v["ratio_ci"]
            row(
                f"6. Spend overhead <= {(T.SPEND_RATIO - 1) * 100:.0f} % of a bare ChatOpenAI call: "
                f"{name.lstrip('+ ')}",
                f"x{v['ratio']:.3f} (95% CI {lo:.3f}-{hi:.3f}), {v['added_ms']:+.3f} ms",
                v["ratio"] <= T.SPEND_RATIO,
            )
    mem = _get(results, "spend", "summary", "memory")
    if isinstance(mem, dict) and mem.get("rss_marks"):
        first, last = mem["rss_marks"][0], mem["rss_marks"][-1]
        growth = last[1] - first[1]
        row(
            "6. Memory bounded after 1,000,000 tracked calls",
            f"RSS {first[1]:.1f} -> {last[1]:.1f} MiB ({first[0]:,} -> {last[0]:,} calls); "
            f"tracemalloc {mem['traced_bytes_per_call_second_half']:.2f} B/call",
            growth < 5.0,
        )
    st = _get(results, "state", "summary") or {}
    if isinstance(st, dict):
        floor = st.get("redis: 2 x PING (floor)")
        for name, label in (
            ("sqlite", "SQLite (WAL)"),
            ("redis", "Redis on loopback"),
            ("redis via open_store", "Redis via open_store() (outage policy)"),
        ):
            v = st.get(name)
            if not isinstance(v, dict):
                continue
            r, lo, hi = v["ratio"]
            extra = ""
            if name.startswith("redis") and floor:
                extra = f"; bare 2 x PING floor {floor['median_ms'] * 1000:.0f} µs, +{v['over_floor_ms'] * 1000:.0f} µs above it"
            row(
                f"7. State store reserve + settle <= {STATE_TARGET_MS} ms over memory: {label}",
                f"+{v['over_memory_ms'] * 1000:.0f} µs (median {v['median_ms'] * 1000:.0f} vs "
                f"{st['memory']['median_ms'] * 1000:.0f} µs, x{r:.1f}, 95% CI {lo:.1f}-{hi:.1f}){extra}",
                v["over_memory_ms"] <= STATE_TARGET_MS,
            )
        split = _get(results, "state", "redis_round_trips_split", "redis")
        if isinstance(split, dict) and split.get("reserve") is not None:
            per_op = max(split["reserve"], split["settle"])
            row(
                "7. Redis: one round trip per call (state store: per operation)",
                f"reserve {split['reserve']:.2f}, settle {split['settle']:.2f} round trips "
                f"({split['reserve'] + split['settle']:.2f} per budgeted model call: reserve before, settle after)",
                per_op <= 1.0,
            )
    sb = _get(results, "shared_breakers", "summary", "call") or {}
    if isinstance(sb, dict):
        floor = sb.get("redis: 1 x PING (floor)")
        for name, label in (
            ("sqlite", "SQLite (WAL)"),
            ("redis via open_store", "Redis via open_store() on loopback"),
        ):
            v = sb.get(name)
            if not isinstance(v, dict):
                continue
            r, lo, hi = v["ratio"]
            extra = (
                f"; bare PING floor {floor['median_ms'] * 1000:.0f} µs"
                if name.startswith("redis") and floor
                else ""
            )
            row(
                f"8. Breaker checks + rate-limit slot <= {STATE_TARGET_MS} ms over in-process: {label}",
                f"+{v['over_in_process_ms'] * 1000:.0f} µs (median {v['median_ms'] * 1000:.0f} µs, "
                f"x{r:.1f}, 95% CI {lo:.1f}-{hi:.1f}){extra}",
                v["over_in_process_ms"] <= STATE_TARGET_MS,
            )
        red = sb.get("redis via open_store")
        if isinstance(red, dict) and red.get("round_trips") is not None:
            n = red["round_trips"]
            extra = (
                f": one per call, plus the breakers' batched success sync (about one per {1 / (n - 1):,.0f} calls)"
                if 1.0 < n < 1.1
                else ""
            )
            row(
                "8. Redis: one round trip per call (breakers + rate limit)",
                f"{n:.3f} round trips per call, counted on the client{extra}",
                round(n, 2) <= 1.0,
            )
    rows += network_targets(results)
    startup = _get(results, "startup", "summary") or {}
    if isinstance(startup, dict):
        for name in ("holysheep --help", "holysheep models"):
            v = startup.get(name)
            if isinstance(v, dict):
                row(
                    f"10. CLI start-up < 0.5 s: `{name}`",
                    f"{v['median_s']:.3f} s median "
                    f"(+{v['over_floor_s']:.3f} s over a bare interpreter)",
                    v["median_s"] < 0.5,
                )
    rows += proxy_targets(results)
    skip = _get(results, "shared_breakers", "summary", "open skip") or {}
    if isinstance(skip, dict) and skip:
        row(
            "4. Open-circuit skip < 0.1 ms on every state store",
            ", ".join(f"{k} {v['median_ms'] * 1000:.2f} µs" for k, v in skip.items()),
            all(v["median_ms"] < 0.1 for v in skip.values()),
        )
    return rows


def network_targets(results: dict) -> list[list[str]]:
    """Section 9: warm streams take one round trip to the first token, on a
    connection they reuse."""
    net = _get(results, "network", "summary")
    if not isinstance(net, dict):
        return []
    rtt, target = net["rtt_ms"], net["target_ttft_ms"]
    rows = []
    for name, v in net["contenders"].items():
        if v.get("verdict", "-") == "-":
            continue
        ttft = v["ttft_median_ms"]
        measured = (
            f"ttft {ttft:.1f} ms ({(ttft - target) / rtt:+.1f} round trips), "
            if ttft is not None
            else ""
        )
        rows.append(
            [
                f"9. Warm stream over a {rtt:.0f} ms round trip: first token in one round "
                f"trip + server time ({target:.1f} ms), 0 new connections: {name}",
                measured + f"{v['new_conns_per_call']:.2f} new connections per stream",
                v["verdict"],
            ]
        )
    return rows


def _bare_note(summary: dict) -> str:
    """The bare relay's added time beside the proxy's (the same stack, no logic)."""
    for name, v in (_get(summary, "latency") or {}).items():
        if (
            name.startswith("bare relay")
            and isinstance(v, dict)
            and "added_p50_ms" in v
        ):
            return (
                f"; a bare relay on the same stack (no logic) {v['added_p50_ms']:+.2f} ms "
                f"p50, {v['ttft_added_p50_ms']:+.2f} ms to the first token"
            )
    return ""


def proxy_targets(results: dict) -> list[list[str]]:
    """Section 11: `holysheep serve` against a direct call and LiteLLM's proxy."""
    summary = _get(results, "proxy", "summary")
    if not isinstance(summary, dict):
        return []
    rows: list[list[str]] = []
    lat = _get(summary, "latency", "holysheep serve")
    if isinstance(lat, dict) and "added_p50_ms" in lat:
        rows.append(
            [
                "11. `holysheep serve` adds <= 1 ms at p50 over a direct call (loopback)",
                f"non-streaming {lat['added_p50_ms']:+.2f} ms p50 ({lat['added_p99_ms']:+.2f} ms p99), "
                f"time to first token {lat['ttft_added_p50_ms']:+.2f} ms p50"
                + _bare_note(summary),
                "met"
                if max(lat["added_p50_ms"], lat["ttft_added_p50_ms"]) <= 1.0
                else "**missed**",
            ]
        )
    thr = _get(summary, "throughput", "holysheep serve")
    lite = _get(summary, "throughput", "LiteLLM proxy")
    if isinstance(thr, dict) and isinstance(lite, dict) and thr.get("x_litellm"):
        ratio, lo, hi = thr["x_litellm"]
        rows.append(
            [
                "11. `holysheep serve` throughput >= 3x LiteLLM's proxy (concurrency 64)",
                f"{thr['rps_median']:,.0f} vs {lite['rps_median']:,.0f} requests/s: "
                f"x{ratio:.2f} (95% CI {lo:.2f}-{hi:.2f})",
                "met" if ratio >= 3.0 else "**missed**",
            ]
        )
    elif isinstance(thr, dict):
        rows.append(
            [
                "11. `holysheep serve` throughput >= 3x LiteLLM's proxy (concurrency 64)",
                f"{thr['rps_median']:,.0f} requests/s; LiteLLM's proxy not measured",
                "n/a",
            ]
        )
    mem = summary.get("memory")
    if isinstance(mem, dict) and mem.get("rss_marks"):
        first, last = mem["rss_marks"][0], mem["rss_marks"][-1]
        rows.append(
            [
                f"11. `holysheep serve` memory flat over {mem['done']:,} streamed requests",
                f"RSS {first[1]:.1f} -> {last[1]:.1f} MiB; trend after the warm-up "
                f"{mem['trend_mib_per_10k']:+.2f} MiB per 10,000 requests",
                "met" if mem["flat"] else "**missed**",
            ]
        )
    return rows


def md_table(columns: list[str], rows: list[list[str]]) -> str:
    out = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    out += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def findings(results: dict) -> list[str]:
    """Where the time goes: bullets derived from the results."""
    out: list[str] = []
    out += RL.latency_findings(results)
    st = _get(results, "state", "summary") or {}
    if isinstance(st, dict) and "memory" in st:
        parts = [
            f"{k} +{v['over_memory_ms'] * 1000:.0f} µs"
            for k, v in st.items()
            if k in ("sqlite", "sqlite durable", "redis")
        ]
        fl = st.get("redis: 2 x PING (floor)")
        if parts:
            out.append(
                "State stores, a reserve + settle over the memory store: "
                + ", ".join(parts)
                + (
                    f"; two bare Redis PINGs take {fl['median_ms'] * 1000:.0f} µs on this machine, so a "
                    "round trip's floor alone is most of Redis' share."
                    if fl
                    else "."
                )
            )
    sp = _get(results, "spend", "summary", "overhead") or {}
    if isinstance(sp, dict):
        noop = next((v for k, v in sp.items() if "no-op" in k), None)
        tr = sp.get("+ HolySheepCallbackHandler (tracker)")
        led = sp.get("+ handler with SQLiteLedger")
        if noop and tr:
            ledger = (
                ", the handler with the SQLite ledger "
                f"{led['added_ms'] - noop['added_ms']:+.3f} ms"
                if led
                else ""
            )
            out.append(
                f"Spend: attaching any callback handler costs {noop['added_ms']:+.3f} ms "
                "(LangChain's dispatch); the tracker adds "
                f"{tr['added_ms'] - noop['added_ms']:+.3f} ms on top{ledger}."
            )
    return out


# --------------------------------------------------------------------------- previous run
# Why numbers moved against a given previous run, when the data shows it:
# {(previous commit, section title without its number): text}. Keyed by the
# commit compared against, so a note never outlives the comparison it explains.
CAUSES: dict[tuple[str, str], str] = {}


def _run_date(text: str) -> str | None:
    m = re.search(r"^- Date \(UTC\): (\S+)", text, re.M)
    return m.group(1) if m else None


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(H.REPO_ROOT), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def previous_doc(current_date: str | None) -> tuple[str, str] | None:
    """The newest committed BENCHMARKS.md of another run: (commit, text)."""
    try:
        revs = _git("log", "--format=%h", "--", "BENCHMARKS.md").split()
        for rev in revs:
            text = _git("show", f"{rev}:BENCHMARKS.md")
            if _run_date(text) != current_date:
                return rev, text
    except (OSError, subprocess.CalledProcessError):
        return None
    return None


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _section_key(title: str) -> str:
    return re.sub(r"^\d+\.\s*", "", title.strip())


def parse_tables(text: str) -> dict[str, list[tuple[list[str], list[list[str]]]]]:
    """Markdown tables per `## ` section (key: title without its number)."""
    out: dict[str, list[tuple[list[str], list[list[str]]]]] = {}
    lines = text.splitlines()
    cur: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            cur = _section_key(line[3:])
            out.setdefault(cur, [])
        elif (
            cur
            and line.startswith("| ")
            and i + 1 < len(lines)
            and lines[i + 1].startswith("|---")
        ):
            header, rows = _cells(line), []
            i += 2
            while i < len(lines) and lines[i].startswith("| "):
                rows.append(_cells(lines[i]))
                i += 1
            out[cur].append((header, rows))
            continue
        i += 1
    return out


def _num(cell: str) -> float | None:
    m = re.match(r"^[x+]?(-?[\d,]*\.?\d+)", cell.replace("**", ""))
    if not m:
        return None
    try:
        return float(m.group(1).replace(",", ""))
    except ValueError:
        return None


def _ratio_col(header: list[str]) -> int | None:
    for j, h in enumerate(header):
        if j > 1 and (h.startswith("ratio") or h.startswith("x ") or "ratio to" in h):
            return j
    return None


def _ci(cell: str) -> tuple[float, float] | None:
    m = re.search(r"\((\d[\d.,]*)-(\d[\d.,]*)\)", cell)
    if not m:
        return None
    return float(m.group(1).replace(",", "")), float(m.group(2).replace(",", ""))


def moved(
    section: str, tables: list[dict], prev: dict[str, list]
) -> tuple[list[str], list[float]]:
    """Against the same contender in the previous run (same section, same
    table columns): rows whose ratio moved beyond noise (by >= MOVED_RATIO
    with the previous value outside today's 95% interval; by >= MOVED_PCT %
    where the table gives no interval), or, in tables without a ratio column
    (absolute figures follow the machine's load), whose first figure, success
    rate or p95 moved by >= MOVED_PCT %. Also returns every row's change of its
    first figure in %, for the overall drift."""
    out: list[str] = []
    drift: list[float] = []
    for t in tables:
        header = t["columns"]
        pmap: dict[str, list[str]] = {}
        pheader: list[str] | None = None
        for ph, prows in prev.get(section, []):
            if ph == header:
                pheader = ph
                for r in prows:
                    pmap.setdefault(r[0], r)
        if pheader is None:
            continue
        rc, prc = _ratio_col(header), _ratio_col(pheader)
        extra = [
            j
            for j, h in enumerate(header)
            if j > 1
            and (h == "success" or h.startswith("p95 ms (all)"))
            and h in pheader
        ]
        for row in t["rows"]:
            p = pmap.get(row[0])
            if not p:
                continue
            a, b = _num(p[1]), _num(row[1])
            change = (b - a) / a * 100 if a and b else None
            if change is not None:
                drift.append(change)
            first = (
                f"{header[1]} {p[1]} -> {row[1]} ({change:+.0f} %)"
                if change is not None
                else ""
            )
            if rc is not None and prc is not None:
                ra, rb = _num(p[prc]), _num(row[rc])
                if ra is None or rb is None or row[rc] in ("1.000", "1.00"):
                    continue
                ci = _ci(row[rc])
                if ci is not None:
                    big = abs(rb - ra) >= MOVED_RATIO and not (ci[0] <= ra <= ci[1])
                else:
                    big = ra > 0 and abs(rb - ra) / ra * 100 >= MOVED_PCT
                if big:
                    label = header[rc].split(" (")[0]
                    out.append(
                        f"{row[0]}: {label} {p[prc]} -> {row[rc]}"
                        + (f"; {first}" if first else "")
                    )
                continue
            bits = []
            for j in [1, *extra]:
                pj = pheader.index(header[j]) if header[j] in pheader else None
                if pj is None or pj >= len(p):
                    continue
                x, y = _num(p[pj]), _num(row[j])
                if x and y is not None and abs(y - x) / x * 100 >= MOVED_PCT:
                    bits.append(f"{header[j]} {p[pj]} -> {row[j]}")
            if bits:
                out.append(f"{row[0]}: " + ", ".join(bits))
    return out, drift


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    out_path = Path(args[0]) if args else H.REPO_ROOT / "BENCHMARKS.md"
    results = {}
    for name in ORDER:
        p = H.RESULTS_DIR / f"{name}.json"
        if p.exists():
            results[name] = json.loads(p.read_text())
    meta_path = H.RESULTS_DIR / "_run.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    vers = H.versions()
    mach = meta.get("machine") or H.machine()
    when = meta.get("started") or _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds"
    )
    quick = any(r.get("quick") for r in results.values())
    previous = previous_doc(when)
    prev_tables = parse_tables(previous[1]) if previous else {}
    prev_load = None
    if previous:
        m = re.search(r"^- Load average at start: (.*?) \(", previous[1], re.M)
        prev_load = m.group(1) if m else None

    lines = [
        "# Benchmarks",
        "",
        "Measured against the embedded HolySheep gateway simulator (a real HTTP server on 127.0.0.1, OpenAI wire "
        "format), run in its own process so that it does not share the GIL with the client under test. All "
        "contenders of a benchmark run in ONE process and ONE run, interleaved round-robin (every iteration calls "
        "each contender once, in a per-iteration shuffled order), after a warm-up. Figures are medians (and p95) of "
        "many calls, ratios are ratios of medians with a bootstrap 95% interval, and 'added' times are medians of "
        "the per-iteration paired differences. Single timings are never quoted.",
        "",
    ]
    if quick:
        lines += [
            "> **Quick run (BENCH_QUICK=1): tiny iteration counts, for checking the harness only. Do not quote.**",
            "",
        ]
    rows = targets(results)
    if rows:
        lines += [
            "## Targets",
            "",
            "Targets 1-6 are the project's performance targets (sections 1-6); targets 7-8 are the state stores', for the state "
            "stores behind budgets, breakers and rate limits (sections 7 and 8); targets 9 are a realistic network's "
            "(TLS and a 50 ms round trip, section 9); target 10 is the command line's start-up (section 10); targets 11 are "
            "`holysheep serve`'s against a direct call and LiteLLM's proxy (section 11). "
            "'Whole policy' is ChatHolySheep with fallbacks, retry, circuit breakers, a rate limit and a deadline, "
            "and its default first-token/stall limits (30 s: a non-streaming call reads its answer as a stream) "
            "unless the contender's name says otherwise.",
            "",
            md_table(["target", "measured", "verdict"], rows),
            "",
        ]
    found = findings(results)
    if found:
        lines += ["## Where the time goes", ""] + [f"- {f}" for f in found] + [""]
    lines += [
        "## How to run",
        "",
        "```bash",
        "benchmarks/run.sh            # creates benchmarks/.venv, installs -e . + benchmarks/requirements.txt,",
        "                             # runs every benchmark, writes BENCHMARKS.md (~13 minutes)",
        "BENCH_QUICK=1 benchmarks/run.sh   # tiny counts, to check the harness (~2 minutes)",
        "REDIS_URL=redis://host:6379/0 benchmarks/run.sh state shared_breakers   # sections 7-8; Redis rows are",
        "                             # skipped without a server (default redis://127.0.0.1:6379/0)",
        "benchmarks/.venv/bin/python benchmarks/bench_overhead.py --iterations 3000   # one benchmark",
        "benchmarks/run.sh network    # section 9: TLS + a 50 ms round trip (LatencyRelay)",
        "benchmarks/run.sh proxy      # section 11: holysheep serve vs LiteLLM's proxy (own processes)",
        "```",
        "",
        "Commands of this run:",
        "",
        "```",
        *[f"{r.get('command', '')}" for r in results.values()],
        "```",
        "",
        "## Machine and versions",
        "",
        f"- Date (UTC): {when}",
        f"- CPU: {mach.get('cpu')} ({mach.get('cores')} cores), memory {mach.get('memory')}, {mach.get('os')}",
        f"- Load average at start: {mach.get('loadavg_at_start')} (the machine was shared with other jobs)",
        "- " + ", ".join(f"{k} {v}" for k, v in vers.items()),
        "- Simulator: uvicorn + h11 + Starlette in a separate process, started by `benchmarks/_sim_server.py` "
        "(`python -m langchain_holysheep.simulator` plus a TCP_NODELAY guard, see the note below); no uvloop/httptools.",
        "- LiteLLM is installed only in `benchmarks/.venv` (with `--no-deps`; see `benchmarks/requirements.txt`); "
        "its proxy server's requirements from `benchmarks/requirements-litellm-proxy.txt`.",
        "",
        "**Note on the simulator (TCP_NODELAY).** An early simulator created its socket as "
        "`socket.socket(family, SOCK_STREAM)` (proto 0); asyncio only sets TCP_NODELAY on sockets whose proto is "
        "`IPPROTO_TCP`, and uvicorn writes a response's headers and body separately, so every request after the "
        "first on a kept-alive connection waited for the client's delayed ACK: a raw httpx2 POST took 44.0 ms "
        "median instead of 0.9 ms. Fixed in the simulator (commit 3d6abcc creates the socket with `IPPROTO_TCP`); "
        "`benchmarks/_sim_server.py` keeps a guard for older checkouts. Anyone timing against the simulator "
        "should check that a raw POST takes ~1 ms, not ~44 ms.",
        "",
    ]
    for name in ORDER:
        r = results.get(name)
        if not r:
            lines += [f"## {name}", "", "_not run_", ""]
            continue
        lines += [f"## {r.get('title', name)}", ""]
        doc = "\n\n".join(  # without a usage block ("python benchmarks/...")
            p
            for p in (r.get("doc") or "").split("\n\n")
            if not p.lstrip().startswith("python ")
        ).strip()
        if doc:
            lines += [doc, ""]
        for t in r.get("tables", []):
            if not t.get("rows"):
                continue
            lines += [f"**{t['title']}**", "", md_table(t["columns"], t["rows"]), ""]
        if r.get("skipped"):
            lines += ["Not measured:", ""]
            lines += [f"- {k}: {v}" for k, v in r["skipped"].items()]
            lines += [""]
        lines += [f"**Reading.** {r.get('reading', '')}", ""]
        key = _section_key(r.get("title", name))
        if previous and key in prev_tables:
            rev, text = previous
            ch, drift = moved(key, r.get("tables", []), prev_tables)
            head = (
                f"**Against the previous run** (BENCHMARKS.md of commit {rev}, run {_run_date(text)}, "
                f"load average at start {prev_load}; now {mach.get('loadavg_at_start')}): "
            )
            if drift:
                head += (
                    f"each table's first figure (median, ttft or rate) moved by {H.median(drift):+.0f} % "
                    f"(median over {len(drift)} rows, range {min(drift):+.0f} to {max(drift):+.0f} %). "
                )
            if ch:
                body = (
                    f"Moved beyond noise (a ratio by >= {MOVED_RATIO} with the previous value outside "
                    f"today's 95% interval; without a ratio column, a figure by >= {MOVED_PCT:.0f} %): "
                    + "; ".join(ch)
                    + "."
                )
            else:
                body = (
                    f"No ratio moved by {MOVED_RATIO} or more beyond its interval"
                    f" (nor, in tables without a ratio, a figure by {MOVED_PCT:.0f} % or more)."
                )
            cause = CAUSES.get((rev, key))
            lines += [head + body + (f" {cause}" if cause else ""), ""]
        elif previous:
            lines += [
                f"_New in this run (not in the BENCHMARKS.md of commit {previous[0]})._",
                "",
            ]
        lines += [
            f"_Command: `{r.get('command', '')}`; finished {r.get('finished')}; load average at end {r.get('loadavg_at_end')}._",
            "",
        ]
    out_path.write_text("\n".join(lines))
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
