"""`SpendCounts`: the retry, fallback and token counts of every spend summary.

A tracker's report (`SpendReport`), its per-model rows (`ModelSpend`) and a
ledger report's rows (`ReportRow`) all carry these six counts, declared here
once. Each takes its leading fields from a private base named after this one
(`class ReportRow(SpendCounts, _GroupOutcomes)`: dataclass fields follow the
bases in reverse order), so every field keeps its place in positional
arguments, CSV columns and dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SpendCounts"]


@dataclass(frozen=True)
class SpendCounts:
    """Retries, fallbacks and billed tokens of a set of calls or attempts."""

    retries: int = 0
    """Attempts that repeated a route (model) after a failure."""
    fallbacks: int = 0
    """Answers, or attempts, on a route other than the first (as each summary says)."""
    input_tokens: int = 0
    """Billed prompt tokens (cached ones included)."""
    cached_tokens: int = 0
    """Of the prompt tokens, those read from the prompt cache."""
    output_tokens: int = 0
    """Billed completion tokens (reasoning ones included)."""
    reasoning_tokens: int = 0
    """Of the completion tokens, those spent on hidden reasoning."""
