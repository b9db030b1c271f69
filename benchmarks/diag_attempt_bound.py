"""Diagnostic (not part of run.sh): what the wall-clock attempt bound costs a call.

    benchmarks/.venv/bin/python benchmarks/diag_attempt_bound.py --iterations 600

Since the route-loop rewrite, a sync attempt with a timeout runs inside
`langchain_holysheep._watchdog.within(seconds)` (a context variable, a heap
entry in the shared watchdog, an httpx response hook that wraps the body
stream). This times, interleaved in one process: bare ChatOpenAI, bare
ChatHolySheep, the whole policy, and the same two ChatHolySheep contenders
with `within` replaced by a no-op guard for their calls only (a switch flipped
around each call, so the contenders still interleave). The difference is the
bound's happy-path cost. Prints a table; writes nothing to results/.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import contenders as C
import harness as H

import langchain_holysheep._gateway_model as gm

_real_within = gm.within
_bounded = {"on": True}


class _NoGuard:
    fired = False


@contextlib.contextmanager
def _no_guard(seconds: float) -> Iterator[_NoGuard]:
    yield _NoGuard()


def _switch(seconds: float) -> Any:
    return _real_within(seconds) if _bounded["on"] else _no_guard(seconds)


gm.within = _switch  # the method looks the name up in its module at call time


def unbounded(call: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        _bounded["on"] = False
        try:
            call()
        finally:
            _bounded["on"] = True

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=H.count(600, 15))
    ap.add_argument("--warmup", type=int, default=H.count(40, 3))
    args = ap.parse_args(argv)
    with H.SimProcess() as sim:
        url = sim.base_url
        builders = {
            "ChatOpenAI (bare)": lambda: C.lc_invoke(C.chat_openai(url)),
            "ChatHolySheep (bare)": lambda: C.lc_invoke(C.holysheep_bare(url)),
            "ChatHolySheep (bare), attempt bound off": lambda: unbounded(
                C.lc_invoke(C.holysheep_bare(url))
            ),
            "ChatHolySheep (whole policy)": lambda: C.lc_invoke(
                C.holysheep_policy(url)
            ),
            "ChatHolySheep (whole policy), attempt bound off": lambda: unbounded(
                C.lc_invoke(C.holysheep_policy(url))
            ),
        }
        built, skipped = H.build_contenders(builders)
        samples, dropped = H.run_interleaved(
            built, args.iterations, args.warmup, progress="attempt-bound"
        )
    base = samples["ChatOpenAI (bare)"]
    rows = []
    for name, s in samples.items():
        t = H.ms(s.total)
        r, lo, hi = H.ratio_ci(t, H.ms(base.total))
        rows.append(
            [
                name,
                H.fmt(H.median(t), 3),
                f"{r:.3f} ({lo:.3f}-{hi:.3f})",
                H.fmt(H.median(H.ms(s.cpu)), 3),
            ]
        )
    H.print_table(
        f"attempt bound: {args.iterations} interleaved iterations",
        ["contender", "median ms", "x bare ChatOpenAI (95% CI)", "CPU ms/call"],
        rows,
    )
    for on, off in (
        ("ChatHolySheep (bare)", "ChatHolySheep (bare), attempt bound off"),
        (
            "ChatHolySheep (whole policy)",
            "ChatHolySheep (whole policy), attempt bound off",
        ),
    ):
        if on in samples and off in samples:
            d = H.paired_median_diff(samples[on].total, samples[off].total)
            dc = H.paired_median_diff(samples[on].cpu, samples[off].cpu)
            print(
                f"{on}: the bound costs {d:+.3f} ms wall, {dc:+.3f} ms CPU (paired medians)"
            )
    for k, v in {**skipped, **dropped}.items():
        print(f"skipped {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
