"""Shared benchmark harness: simulator process, interleaved timing, statistics, results.

Every benchmark module builds a dict of contenders (name -> zero-argument callable)
and hands it to `run_interleaved` (sync) or `arun_rounds` (async batches). All
contenders run in ONE process and ONE run, round-robin: iteration i calls every
contender once, in an order shuffled per iteration (seeded), so drifts in machine
load hit every contender alike. Results are written as JSON to
`benchmarks/results/<name>.json`; `report.py` turns them into BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import gc
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

# The user document 004's fallback chain and benchmark table.
CHAIN = ["gpt-4.1", "gemini-2.0-flash", "deepseek-v3.2", "moonshot-v1-8k"]
DOC_TIMEOUTS_S = {
    "gpt-4.1": 30.0,
    "gemini-2.0-flash": 20.0,
    "deepseek-v3.2": 25.0,
    "moonshot-v1-8k": 20.0,
}
DOC_FAILURE_RATE = {
    "gpt-4.1": 0.058,
    "gemini-2.0-flash": 0.013,
    "deepseek-v3.2": 0.009,
    "moonshot-v1-8k": 0.025,
}
DOC_P95_MS = {
    "gpt-4.1": 2100.0,
    "gemini-2.0-flash": 580.0,
    "deepseek-v3.2": 780.0,
    "moonshot-v1-8k": 710.0,
}

PROMPT = "Say hello in one sentence."
MESSAGES = [{"role": "user", "content": PROMPT}]
API_KEY = "hs-simulator-key"

os.environ.setdefault(
    "LITELLM_LOCAL_MODEL_COST_MAP", "True"
)  # no network fetch at import
os.environ.setdefault("LITELLM_LOG", "ERROR")
os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")


def quick() -> bool:
    """Tiny iteration counts (BENCH_QUICK=1) for building and debugging."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")


def count(full: int, small: int) -> int:
    """`small` in quick mode, else `full` (scaled by BENCH_SCALE, default 1)."""
    if quick():
        return small
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    return max(small, int(full * scale))


class Skip(Exception):
    """A contender cannot be built (code not landed yet, missing feature)."""


# --------------------------------------------------------------------------- simulator
class SimProcess:
    """The gateway simulator in its own process (`_sim_server.py`), so its event
    loop never shares the GIL or the core with the client under test.

    Args:
        faults: a fault-script mapping (see `FaultPlan.load`), or None.
        extra_args: more command-line arguments.
    """

    def __init__(
        self, faults: Mapping[str, Any] | None = None, extra_args: Iterable[str] = ()
    ) -> None:
        self.faults = dict(faults) if faults else None
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.api_key = API_KEY
        self._tmp: str | None = None

    def __enter__(self) -> SimProcess:
        args = [
            sys.executable,
            str(BENCH_DIR / "_sim_server.py"),
            "--port",
            "0",
            "--api-key",
            self.api_key,
        ]
        if self.faults:
            fd, self._tmp = tempfile.mkstemp(prefix="hs-bench-faults-", suffix=".json")
            with os.fdopen(fd, "w") as fh:
                json.dump(self.faults, fh)
            args += ["--faults", self._tmp]
        args += self.extra_args
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=str(REPO_ROOT),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"simulator did not start (first line {line!r})")
        self.base_url = line
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._tmp:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Wait for `proc` to end (after a terminate or a closed stdin); kill it
    when it has not ended within `timeout` seconds."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def proc_cpu_seconds(pid: int | None) -> float | None:
    """User+system CPU seconds used so far by process `pid` (Linux /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return None


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


# --------------------------------------------------------------------------- timing
@dataclass
class Samples:
    """Per-contender raw timings in nanoseconds, plus named marks (e.g. ttft)."""

    total: list[int] = field(default_factory=list)
    marks: dict[str, list[int]] = field(default_factory=dict)
    cpu: list[int] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None


Marks = Mapping[str, int] | None
"""A contender may return `{"ttft": perf_counter_ns()}` marks (absolute ns)."""


def build_contenders(
    builders: Mapping[str, Callable[[], Any]],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Call each builder; collect `Skip`/errors as notes instead of failing."""
    built: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name, build in builders.items():
        try:
            built[name] = build()
        except Skip as exc:
            skipped[name] = str(exc)
        except (
            Exception
        ) as exc:  # a contender that cannot be built is reported, not fatal
            skipped[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
    return built, skipped


def run_interleaved(
    contenders: Mapping[str, Callable[[], Marks]],
    iterations: int,
    warmup: int,
    *,
    seed: int = 1,
    progress: str = "",
) -> tuple[dict[str, Samples], dict[str, str]]:
    """Time sync contenders round-robin (shuffled order per iteration).

    Returns the samples and the contenders dropped by a failing smoke call.
    """
    live = dict(contenders)
    dropped: dict[str, str] = {}
    for name, fn in list(live.items()):  # smoke test: one call each
        try:
            fn()
        except Exception as exc:
            dropped[name] = f"smoke call failed: {type(exc).__name__}: {exc}"[:300]
            traceback.print_exc()
            del live[name]
    for _ in range(warmup):
        for fn in live.values():
            with contextlib.suppress(Exception):
                fn()
    samples = {name: Samples() for name in live}
    order = list(live)
    rng = random.Random(seed)
    gc.collect()
    clock = time.perf_counter_ns
    cpu_clock = time.process_time_ns
    t_report = time.monotonic()
    for i in range(iterations):
        rng.shuffle(order)
        for name in order:
            fn = live[name]
            s = samples[name]
            c0 = cpu_clock()
            t0 = clock()
            try:
                marks = fn()
            except Exception as exc:
                s.errors += 1
                s.first_error = s.first_error or f"{type(exc).__name__}: {exc}"[:300]
                continue
            t1 = clock()
            s.cpu.append(cpu_clock() - c0)
            s.total.append(t1 - t0)
            if isinstance(marks, dict):
                for key, at in marks.items():
                    s.marks.setdefault(key, []).append(at - t0)
        if progress and time.monotonic() - t_report > 10:
            t_report = time.monotonic()
            print(f"  [{progress}] {i + 1}/{iterations}", file=sys.stderr, flush=True)
    return samples, dropped


async def arun_rounds(
    contenders: Mapping[str, Callable[[], Awaitable[Any]]],
    *,
    rounds: int,
    calls: int,
    concurrency: int,
    warmup_calls: int,
    seed: int = 1,
    progress: str = "",
    sim_pid: int | None = None,
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]], dict[str, str]]:
    """Async throughput: each round runs `calls` calls per contender at
    `concurrency` (contenders one after another within a round, order shuffled
    per round). Returns calls/s per round, CPU ms per call (client and
    simulator), and dropped contenders.
    """
    live = dict(contenders)
    dropped: dict[str, str] = {}
    for name, fn in list(live.items()):
        try:
            await fn()
        except Exception as exc:
            dropped[name] = f"smoke call failed: {type(exc).__name__}: {exc}"[:300]
            traceback.print_exc()
            del live[name]

    async def batch(fn: Callable[[], Awaitable[Any]], n: int) -> int:
        remaining = n
        errors = 0

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                try:
                    await fn()
                except Exception:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return errors

    for fn in live.values():
        await batch(fn, warmup_calls)
    gc.collect()
    rates: dict[str, list[float]] = {n: [] for n in live}
    cpu: dict[str, dict[str, float]] = {
        n: {"client_s": 0.0, "sim_s": 0.0, "calls": 0, "errors": 0} for n in live
    }
    order = list(live)
    rng = random.Random(seed)
    for r in range(rounds):
        rng.shuffle(order)
        for name in order:
            c0, s0 = self_cpu_seconds(), proc_cpu_seconds(sim_pid)
            t0 = time.perf_counter()
            errors = await batch(live[name], calls)
            dt = time.perf_counter() - t0
            c1, s1 = self_cpu_seconds(), proc_cpu_seconds(sim_pid)
            rates[name].append((calls - errors) / dt)
            cpu[name]["client_s"] += c1 - c0
            if s0 is not None and s1 is not None:
                cpu[name]["sim_s"] += s1 - s0
            cpu[name]["calls"] += calls
            cpu[name]["errors"] += errors
        if progress:
            print(f"  [{progress}] round {r + 1}/{rounds}", file=sys.stderr, flush=True)
    return rates, cpu, dropped


# --------------------------------------------------------------------------- redis
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@contextlib.contextmanager
def redis_round_trips() -> Iterator[dict[str, int]]:
    """Count redis-py's sends in this process while the block runs.

    One send is one round trip (a command, a script, or a whole pipeline; a
    NOSCRIPT reload or a health-check PING counts as its own). Counted on the
    client, so other users of a shared Redis server do not skew it (the
    server's INFO commandstats would).
    """
    from redis.connection import AbstractConnection

    counter = {"sends": 0}
    original = AbstractConnection.send_packed_command

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter["sends"] += 1
        return original(self, *args, **kwargs)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def round_trips_per_call(fn: Callable[[], Any], calls: int = 200) -> float | None:
    """Redis round trips per call of `fn`, averaged over `calls` calls
    (run after the timing, so the counting wrapper never slows a timed call)."""
    try:
        import redis  # noqa: F401
    except ImportError:
        return None
    with redis_round_trips() as counter:
        for _ in range(calls):
            fn()
    return counter["sends"] / calls


# --------------------------------------------------------------------------- statistics
def pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation (q in 0-100)."""
    if not values:
        return math.nan
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: list[float]) -> float:
    return pct(values, 50)


def ms(values_ns: list[int]) -> list[float]:
    return [v / 1e6 for v in values_ns]


def paired_median_diff(a_ns: list[int], b_ns: list[int]) -> float:
    """Median over iterations of (a_i - b_i), in ms (a and b timed in the same
    iterations, so the pairs share the machine's momentary load)."""
    n = min(len(a_ns), len(b_ns))
    return median([(a_ns[i] - b_ns[i]) / 1e6 for i in range(n)])


def ratio_ci(
    a: list[float], b: list[float], *, resamples: int = 400, seed: int = 7
) -> tuple[float, float, float]:
    """Ratio of medians a/b with a bootstrap 95% interval (paired resampling)."""
    n = min(len(a), len(b))
    if n == 0:
        return math.nan, math.nan, math.nan
    point = median(a[:n]) / median(b[:n])
    try:
        import numpy as np
    except ImportError:
        return point, math.nan, math.nan
    rng = np.random.default_rng(seed)
    aa = np.asarray(a[:n], dtype=float)
    bb = np.asarray(b[:n], dtype=float)
    idx = rng.integers(0, n, size=(resamples, n))
    ratios = np.median(aa[idx], axis=1) / np.median(bb[idx], axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return point, float(lo), float(hi)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval for a proportion."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def fmt(x: float, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


# --------------------------------------------------------------------------- results
def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in (
        "langchain-holysheep",
        "langchain-core",
        "langchain-openai",
        "openai",
        "httpx2",
        "httpx",
        "aiohttp",
        "litellm",
        "tenacity",
        "uvicorn",
        "starlette",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def write_result(name: str, payload: dict[str, Any], args: Any = None) -> Path:
    """Write `results/<name>.json` (tables, notes, reading, raw summaries)."""
    script = Path(sys.argv[0]).name
    flags = " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in (vars(args) if args is not None else {}).items()
    )
    env = "BENCH_QUICK=1 " if quick() else ""
    command = f"{env}benchmarks/.venv/bin/python benchmarks/{script} {flags}".rstrip()
    RESULTS_DIR.mkdir(exist_ok=True)
    main_doc = (getattr(sys.modules.get("__main__"), "__doc__", None) or "").strip()
    doc = main_doc.split("\n", 1)[1].strip() if "\n" in main_doc else ""
    payload = {
        "benchmark": name,
        "doc": doc,
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick(),
        "command": command,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        **payload,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"wrote {path}", file=sys.stderr)
    return path


def doc_without_usage(doc: str) -> str:
    """A benchmark's docstring for BENCHMARKS.md: without its title line and
    its indented usage block (the command of the run is printed anyway)."""
    paragraphs = (doc or "").strip().split("\n\n")[1:]
    return "\n\n".join(p for p in paragraphs if not p.startswith("    ")).strip()


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    print(f"\n## {title}")
    widths = [
        max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(str(c))
        for i, c in enumerate(columns)
    ]
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
