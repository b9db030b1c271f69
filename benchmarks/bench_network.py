"""Benchmark 9: a realistic network: TLS and a 50 ms round trip.

The simulator serves HTTPS (a `trustme` certificate; the clients trust its CA
through `SSL_CERT_FILE`, which httpx2 honours) behind a `LatencyRelay` that
delays each direction by 25 ms, as a gateway reached from across a sea would:
every exchange costs a 50 ms round trip, and a new connection first pays the TCP
and TLS handshakes (two more round trips). The relays run in their own process
(`benchmarks/_relay_server.py`); each contender talks through its own relay, so
that relay's count of accepted connections is the contender's. Calls are
sequential and interleaved (every iteration calls each contender once, in a
shuffled order). ttft = time until the first non-empty content delta reaches the
caller. "First call": a new relay (a new URL, hence fresh connection pools) per
sample. Target: on a warm client, time to first token = one round trip + the
server's own time (a raw stream straight to the simulator, no relay), and 0 new
connections per stream after the first.

    python benchmarks/bench_network.py [--iterations N] [--first-calls N] [--latency S]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import contenders as C
import harness as H

NAME = "network"
DIRECT = "raw httpx2 SSE, straight to the simulator (server time)"
RAW = "raw httpx2 SSE, read to the end"
STREAMS = {
    RAW: C.raw_httpx2_stream,
    "ChatOpenAI (streaming=True)": lambda url: C.lc_stream(
        C.chat_openai(url, streaming=True, stream_usage=True)
    ),
    "ChatHolySheep (bare: default 30 s first-token/stall limits)": lambda url: (
        C.lc_stream(C.holysheep_bare(url))
    ),
    "ChatHolySheep (whole policy + 10 s first-token/stall limits)": lambda url: (
        C.lc_stream(
            C.holysheep_policy(url, first_token_timeout=10.0, stall_timeout=10.0)
        )
    ),
}
INVOKES = {
    "raw httpx2 POST (non-streaming)": C.raw_httpx2,
    "ChatOpenAI invoke (non-streaming)": lambda url: C.lc_invoke(C.chat_openai(url)),
    "ChatHolySheep invoke (default limits: answer read as a stream)": lambda url: (
        C.lc_invoke(C.holysheep_bare(url))
    ),
}
BUILDERS: dict[str, Callable[[str], Callable[[], Any]]] = {**STREAMS, **INVOKES}


def tls_files(folder: Path) -> tuple[Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1: (CA file, server PEM)."""
    import trustme

    ca = trustme.CA()
    ca_file, server_pem = folder / "ca.pem", folder / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    return ca_file, server_pem


class Relays:
    """`_relay_server.py` in its own process: open, count and close relays."""

    def __init__(self, target: str, latency: float) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(H.BENCH_DIR / "_relay_server.py"),
                target,
                "--latency",
                str(latency),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(H.REPO_ROOT),
        )

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"relay process: {command!r} -> {answer!r}")
        return answer

    def open(self) -> tuple[str, int]:
        url = self.ask("open")
        return url, int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    def count(self, port: int) -> int:
        return int(self.ask(f"count {port}"))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def timed(fn: Callable[[], Any], count: Callable[[], int] | None) -> dict[str, Any]:
    """One call: total and ttft in ns, and the connections it opened."""
    c0 = count() if count else 0
    t0 = time.perf_counter_ns()
    marks = fn()
    t1 = time.perf_counter_ns()
    out: dict[str, Any] = {"total": t1 - t0, "conns": count() - c0 if count else None}
    if isinstance(marks, dict) and marks.get("ttft"):
        out["ttft"] = marks["ttft"] - t0
    return out


class Record:
    """One contender's samples (ttft/total in ns, new connections per call)."""

    def __init__(self) -> None:
        self.total: list[int] = []
        self.ttft: list[int] = []
        self.conns: list[int] = []
        self.errors = 0
        self.first_error: str | None = None

    def add(self, sample: dict[str, Any]) -> None:
        self.total.append(sample["total"])
        if "ttft" in sample:
            self.ttft.append(sample["ttft"])
        if sample["conns"] is not None:
            self.conns.append(sample["conns"])

    def fail(self, exc: BaseException) -> None:
        self.errors += 1
        self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"[:300]


def first_calls(relays: Relays, rounds: int, seed: int) -> dict[str, Record]:
    """Each sample: a new relay (new URL, fresh pools), a new model, one call."""
    records = {name: Record() for name in BUILDERS}
    order = list(BUILDERS)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            url, port = relays.open()
            try:
                fn = BUILDERS[name](url)
                records[name].add(timed(fn, lambda port=port: relays.count(port)))
            except Exception as exc:  # reported in the table, not fatal
                records[name].fail(exc)
            finally:
                relays.ask(f"close {port}")
    return records


def steady(
    relays: Relays, direct_url: str, iterations: int, warmup: int, seed: int
) -> tuple[dict[str, Record], dict[str, str]]:
    """Interleaved sequential calls, each contender on its own relay."""
    live: dict[str, tuple[Callable[[], Any], Callable[[], int] | None]] = {}
    dropped: dict[str, str] = {}
    plan = {DIRECT: None, **{name: relays.open() for name in BUILDERS}}
    for name, opened in plan.items():
        try:
            if opened is None:
                live[name] = (C.raw_httpx2_stream(direct_url), None)
                continue
            url, port = opened
            live[name] = (BUILDERS[name](url), lambda port=port: relays.count(port))
            for _ in range(1 + warmup):  # the first call opens the connection
                live[name][0]()
        except Exception as exc:
            dropped[name] = f"{type(exc).__name__}: {exc}"[:300]
            live.pop(name, None)
    records = {name: Record() for name in live}
    order = list(live)
    rng = random.Random(seed)
    t_report = time.monotonic()
    for i in range(iterations):
        rng.shuffle(order)
        for name in order:
            fn, count = live[name]
            try:
                records[name].add(timed(fn, count))
            except Exception as exc:
                records[name].fail(exc)
        if time.monotonic() - t_report > 10:
            t_report = time.monotonic()
            print(f"  [{NAME}] {i + 1}/{iterations}", file=sys.stderr, flush=True)
    return records, dropped


def iqr(values_ns: list[int]) -> str:
    v = H.ms(values_ns)
    if not v:
        return "-"
    return f"{H.median(v):.1f} ({H.pct(v, 25):.1f}-{H.pct(v, 75):.1f})"


def conns_text(conns: list[int]) -> str:
    if not conns:
        return "-"
    opened = sum(1 for c in conns if c)
    return f"{sum(conns) / len(conns):.2f} ({opened} of {len(conns)} calls opened one)"


def summarize(
    warm: dict[str, Record], cold: dict[str, Record], latency: float
) -> dict[str, Any]:
    rtt_ms = 2 * latency * 1000
    direct = warm.get(DIRECT)
    server_ms = H.median(H.ms(direct.ttft)) if direct and direct.ttft else float("nan")
    target_ms = rtt_ms + server_ms
    out: dict[str, Any] = {
        "rtt_ms": rtt_ms,
        "server_ttft_ms": server_ms,
        "target_ttft_ms": target_ms,
        "contenders": {},
    }
    for name, r in warm.items():
        c = cold.get(name) or Record()
        ttft = H.ms(r.ttft)
        out["contenders"][name] = {
            "stream": name in STREAMS or name == DIRECT,
            "ttft_median_ms": H.median(ttft) if ttft else None,
            "ttft_iqr_ms": [H.pct(ttft, 25), H.pct(ttft, 75)] if ttft else None,
            "total_median_ms": H.median(H.ms(r.total)),
            "total_iqr_ms": [H.pct(H.ms(r.total), 25), H.pct(H.ms(r.total), 75)],
            "new_conns_per_call": sum(r.conns) / len(r.conns) if r.conns else None,
            "first_ttft_median_ms": H.median(H.ms(c.ttft)) if c.ttft else None,
            "first_total_median_ms": H.median(H.ms(c.total)) if c.total else None,
            "first_new_conns": H.median([float(x) for x in c.conns])
            if c.conns
            else None,
            "n": len(r.total),
            "errors": r.errors + c.errors,
            "first_error": r.first_error or c.first_error,
        }
        v = out["contenders"][name]
        v["verdict"] = verdict(v, target_ms, rtt_ms)
    return out


def verdict(v: dict[str, Any], target_ms: float, rtt_ms: float) -> str:
    """Met: ttft within a quarter round trip of the target, 0 new connections."""
    if not v["stream"] or v["new_conns_per_call"] is None:
        return "-"
    ttft_ok = v["ttft_median_ms"] is not None and (
        v["ttft_median_ms"] <= target_ms + rtt_ms / 4
    )
    conns_ok = v["new_conns_per_call"] == 0
    if ttft_ok and conns_ok:
        return "met"
    missed = [w for w, ok in (("ttft", ttft_ok), ("connections", conns_ok)) if not ok]
    return "**missed** (" + ", ".join(missed) + ")"


def tables(
    warm: dict[str, Record], cold: dict[str, Record], summary: dict[str, Any], n: int
) -> list[dict[str, Any]]:
    target, rtt = summary["target_ttft_ms"], summary["rtt_ms"]
    server = summary["server_ttft_ms"]
    steady_rows, first_rows = [], []
    for name, r in warm.items():
        v = summary["contenders"][name]
        steady_rows.append(
            [
                name,
                iqr(r.ttft),
                iqr(r.total),
                conns_text(r.conns),
                v["verdict"],
            ]
        )
        c = cold.get(name)
        if c is not None:
            first_rows.append([name, iqr(c.ttft), iqr(c.total), conns_text(c.conns)])
    return [
        {
            "title": f"Sequential calls on a warm client, {n} per contender, "
            f"interleaved (target ttft {target:.1f} ms = {rtt:.0f} ms round trip "
            f"+ {server:.1f} ms server)",
            "columns": [
                "contender",
                "ttft median ms (IQR)",
                "total median ms (IQR)",
                "new connections per call",
                "target",
            ],
            "rows": steady_rows,
        },
        {
            "title": "First call of a new client (new URL, fresh connection pools)",
            "columns": [
                "contender",
                "ttft median ms (IQR)",
                "total median ms (IQR)",
                "new connections",
            ],
            "rows": first_rows,
        },
    ]


def reading(summary: dict[str, Any]) -> str:
    rtt, server, target = (
        summary["rtt_ms"],
        summary["server_ttft_ms"],
        summary["target_ttft_ms"],
    )
    parts = [
        f"Round trip {rtt:.0f} ms; the server's own time to first token "
        f"{server:.1f} ms (straight to the simulator), so the target is "
        f"{target:.1f} ms."
    ]
    for name, v in summary["contenders"].items():
        if name == DIRECT or v["new_conns_per_call"] is None:
            continue
        head = (
            f"first token {v['ttft_median_ms']:.1f} ms"
            if v["ttft_median_ms"] is not None
            else f"total {v['total_median_ms']:.1f} ms"
        )
        extra = (
            f"{(v['ttft_median_ms'] - target) / rtt:+.1f} round trips over the target, "
            if v["ttft_median_ms"] is not None
            else ""
        )
        conns = v["new_conns_per_call"]
        parts.append(f"{name}: {head} ({extra}{conns:.2f} new connections per call).")
    parts.append(
        "A call that opens a connection pays the TCP and TLS handshakes, two round "
        "trips, before its request leaves."
    )
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=H.count(60, 4))
    ap.add_argument("--warmup", type=int, default=H.count(3, 1))
    ap.add_argument("--first-calls", type=int, default=H.count(10, 2))
    ap.add_argument("--latency", type=float, default=0.025, help="one way, seconds")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hs-bench-tls-") as folder:
        ca_file, server_pem = tls_files(Path(folder))
        os.environ["SSL_CERT_FILE"] = str(ca_file)  # httpx2 and aiohttp honour it
        with H.SimProcess(extra_args=["--ssl-certfile", str(server_pem)]) as sim:
            for build in BUILDERS.values():  # first-use costs (imports) land here
                build(sim.base_url)()
            relays = Relays(sim.base_url, args.latency)
            try:
                cold = first_calls(relays, args.first_calls, seed=2)
                warm, dropped = steady(
                    relays, sim.base_url, args.iterations, args.warmup, seed=1
                )
            finally:
                relays.close()
    summary = summarize(warm, cold, args.latency)
    tabs = tables(warm, cold, summary, args.iterations)
    for t in tabs:
        H.print_table(t["title"], t["columns"], t["rows"])
    H.write_result(
        NAME,
        {
            "title": "9. A realistic network: TLS and a 50 ms round trip",
            "config": {
                "iterations": args.iterations,
                "warmup": args.warmup,
                "first_calls": args.first_calls,
                "latency_one_way_s": args.latency,
            },
            "tables": tabs,
            "skipped": dropped,
            "summary": summary,
            "reading": reading(summary),
        },
        args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
