"""The performance targets the benchmarks check, in one place.

Each benchmark states its verdicts against these numbers, and `report.py`
collects them into the Targets table of BENCHMARKS.md.
"""

from __future__ import annotations

import math
from typing import Any

SEQUENTIAL_RATIO = 1.00
"""Sequential, the whole policy with first-token/stall limits: x bare ChatOpenAI,
at most."""
STREAM_RATIO = 1.00
"""Whole-policy streams, first token and total: x bare ChatOpenAI, at most."""
ASYNC_RATIO = 2.0
"""Async throughput at concurrency 32, default transport: x bare ChatOpenAI, at
least."""
LITELLM_FACTOR = 3.0
"""Our overhead over raw httpx is at least this many times smaller than LiteLLM
Router's."""
SKIP_MS = 0.1
"""An open circuit is skipped in less than this, ms."""
SPEND_RATIO = 1.03
"""Spend tracking and the SQLite ledger: x bare ChatOpenAI, at most."""


def vs_litellm(
    ours: str,
    ours_ms: float,
    litellm: str,
    litellm_ms: float,
    *,
    floor: str,
    litellm_floor: str | None = None,
) -> dict[str, Any]:
    """Both overheads over their raw-httpx floor (ms per call) and the factor
    LiteLLM Router's is larger than ours (met when >= LITELLM_FACTOR)."""
    if math.isnan(ours_ms) or math.isnan(litellm_ms):
        factor = math.nan
    elif ours_ms <= 0:
        factor = math.inf
    else:
        factor = litellm_ms / ours_ms
    return {
        "ours": ours,
        "ours_ms": ours_ms,
        "litellm": litellm,
        "litellm_ms": litellm_ms,
        "floor": floor,
        "litellm_floor": litellm_floor or floor,
        "factor": factor,
        "met": factor >= LITELLM_FACTOR,
    }


def vs_litellm_added(
    summary: dict[str, Any], ours: str, litellm: str, *, floor: str
) -> dict[str, Any] | None:
    """`vs_litellm` from two rows' `added_over_raw_ms` (None if either is missing)."""
    a, b = summary.get(ours), summary.get(litellm)
    if not (a and b):
        return None
    return vs_litellm(
        "whole policy",
        a["added_over_raw_ms"],
        "LiteLLM Router",
        b["added_over_raw_ms"],
        floor=floor,
    )


def factor_text(v: dict[str, Any]) -> str:
    """`v` (from `vs_litellm`) as "+a ms vs +b ms: x f smaller"."""
    f = v["factor"]
    if math.isinf(f):
        how = "ours at or below the floor"
    elif math.isnan(f):
        how = "not measured"
    else:
        how = f"x{f:.1f} smaller"
    floors = (
        f"over {v['floor']}"
        if v["floor"] == v["litellm_floor"]
        else f"over {v['floor']} and {v['litellm_floor']}"
    )
    ours = f"{v['ours']} {v['ours_ms']:+.3f} ms"
    theirs = f"{v['litellm']} {v['litellm_ms']:+.3f} ms"
    return f"{ours} vs {theirs} {floors}: {how}"


def vs_litellm_sentence(v: dict[str, Any] | None) -> str:
    """The bench reading's verdict on the LiteLLM target."""
    if not v:
        return ""
    verdict = "meets" if v["met"] else "misses"
    return (
        f"Target (overhead over raw httpx at least {LITELLM_FACTOR:.0f}x smaller "
        f"than LiteLLM Router's): {factor_text(v)}; {verdict} it."
    )
