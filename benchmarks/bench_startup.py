"""Benchmark 9: command-line start-up, each command a fresh process.

    python benchmarks/bench_startup.py                # 20 runs per command
    python benchmarks/bench_startup.py --iterations 50

Every contender starts a new interpreter (as a user typing the command does)
and waits for it to exit; output goes to /dev/null, `HOLYSHEEP_API_KEY` is
unset (so `holysheep models` lists the packaged catalogue and does not call
a gateway). The commands run round-robin, order shuffled per round
(harness.run_interleaved), so the machine's load hits them alike. The bare
interpreter (`python -c pass`) is the floor; `import langchain_holysheep` and
`from langchain_holysheep import ChatHolySheep` show what the package root and
the whole chat-model stack cost to import. Target: `holysheep --help` and
`holysheep models` answer in under 0.5 s (wall clock, median).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import harness as H

NAME = "startup"
TARGET_S = 0.5
FLOOR = "python -c pass (interpreter floor)"
TARGETED = ("holysheep --help", "holysheep models")


def _holysheep() -> list[str]:
    """The console script next to this interpreter, else `python -m ...cli`."""
    script = Path(sys.executable).parent / "holysheep"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "langchain_holysheep.cli"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLYSHEEP_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(H.REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return env


def commands() -> dict[str, list[str]]:
    cli = _holysheep()
    py = sys.executable
    return {
        FLOOR: [py, "-c", "pass"],
        "holysheep --help": [*cli, "--help"],
        "holysheep models": [*cli, "models"],
        "holysheep models -f json": [*cli, "models", "-f", "json"],
        "import langchain_holysheep": [py, "-c", "import langchain_holysheep"],
        "from langchain_holysheep import ChatHolySheep": [
            py,
            "-c",
            "from langchain_holysheep import ChatHolySheep",
        ],
    }


def runner(argv: list[str], env: dict[str, str]) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            check=True,
            timeout=120,
        )

    return run


def summarize(samples: dict[str, H.Samples]) -> tuple[list[str], list[list[str]], dict]:
    floor = samples.get(FLOOR)
    columns = [
        "command",
        "median s",
        "p95 s",
        "over the interpreter, s (paired median)",
        f"target < {TARGET_S} s",
        "runs",
    ]
    rows, summary = [], {}
    for name, s in samples.items():
        secs = [v / 1e9 for v in s.total]
        over = (
            H.paired_median_diff(s.total, floor.total) / 1000
            if floor and name != FLOOR
            else float("nan")
        )
        med = H.median(secs)
        met = med < TARGET_S if name in TARGETED else None
        rows.append(
            [
                name,
                H.fmt(med, 3),
                H.fmt(H.pct(secs, 95), 3),
                "-" if name == FLOOR else H.fmt(over, 3),
                "-" if met is None else ("met" if met else "**missed**"),
                str(len(secs)) + (f" ({s.errors} errors)" if s.errors else ""),
            ]
        )
        summary[name] = {
            "median_s": med,
            "p95_s": H.pct(secs, 95),
            "over_floor_s": over,
            "target_met": met,
            "n": len(secs),
            "errors": s.errors,
            "first_error": s.first_error,
        }
    return columns, rows, summary


def reading(summary: dict) -> str:
    parts = []
    floor = summary.get(FLOOR)
    if floor:
        parts.append(f"A bare interpreter starts in {floor['median_s']:.3f} s.")
    for name in TARGETED:
        v = summary.get(name)
        if v:
            verdict = "meets" if v["target_met"] else "misses"
            parts.append(
                f"`{name}`: {v['median_s']:.3f} s median "
                f"(+{v['over_floor_s']:.3f} s over the interpreter); "
                f"target < {TARGET_S} s: {verdict}."
            )
    full = summary.get("from langchain_holysheep import ChatHolySheep")
    if full:
        parts.append(
            f"Importing the chat-model stack takes {full['median_s']:.3f} s: the "
            "command line imports it only in the commands that call a model."
        )
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=H.count(20, 3))
    ap.add_argument("--warmup", type=int, default=H.count(2, 1))
    args = ap.parse_args(argv)
    env = _env()
    built = {name: runner(argv, env) for name, argv in commands().items()}
    samples, skipped = H.run_interleaved(
        built, args.iterations, args.warmup, progress=NAME
    )
    columns, rows, summary = summarize(samples)
    H.print_table(f"{NAME}: {args.iterations} interleaved runs", columns, rows)
    H.write_result(
        NAME,
        {
            "title": "10. Command-line start-up",
            "config": vars(args),
            "tables": [
                {
                    "title": f"Wall-clock time of a whole process, {args.iterations} "
                    "runs per command, interleaved",
                    "columns": columns,
                    "rows": rows,
                }
            ],
            "skipped": skipped,
            "summary": summary,
            "reading": reading(summary),
        },
        args,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
