"""The typed result of a ledger report: `ReportRow` and `LedgerReport`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import IO, Any

from langchain_holysheep.spend.counts import SpendCounts
from langchain_holysheep.spend.report import render

__all__ = ["METRICS", "LedgerReport", "ReportRow"]


@dataclass(frozen=True)
class _GroupOutcomes:
    """A `ReportRow`'s first fields: its group, and how its attempts ended."""

    key: tuple[str | None, ...]
    requests: int = 0
    successes: int = 0
    failures: int = 0
    cancelled: int = 0


@dataclass(frozen=True)
class ReportRow(SpendCounts, _GroupOutcomes):
    """The totals of one group of ledger rows (one row per attempt).

    Attributes:
        key: the group's value for each `by` dimension (`None`: no value, e.g.
            untagged calls or calls without a user).
        requests: attempts in the group.
        successes: attempts with outcome "ok".
        failures: attempts with outcome "error".
        cancelled: attempts with outcome "cancelled".
        retries: attempts that repeated a route after a failure.
        fallbacks: attempts on a route other than the first.
        input_tokens: billed input tokens (cached ones included).
        cached_tokens: input tokens read from the prompt cache.
        output_tokens: billed output tokens (reasoning ones included).
        reasoning_tokens: output tokens spent on hidden reasoning.
        cost: the exact cost of the priced attempts, in USD.
        unpriced: attempts whose model had no known price (not in `cost`).
        cost_cny: `cost` in CNY at the gateway's settlement rate (¥1 = $1).
        latency_p50_ms: median attempt latency (nearest rank), if any.
        latency_p95_ms: 95th-percentile attempt latency (nearest rank), if any.
    """

    cost: Decimal = Decimal(0)
    unpriced: int = 0
    cost_cny: Decimal = Decimal(0)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None

    @property
    def label(self) -> str:
        """The key as one string ("gpt-4.1", "2025-01-02 / gpt-4.1")."""
        return " / ".join("(none)" if k is None else k for k in self.key)

    def metrics(self) -> dict[str, Any]:
        """The metric fields (all but `key`) by name, values as stored."""
        return {name: getattr(self, name) for name in METRICS}


METRICS: tuple[str, ...] = tuple(f.name for f in fields(ReportRow) if f.name != "key")


@dataclass(frozen=True)
class LedgerReport:
    """Spend, tokens, outcomes and latency from a ledger, grouped by `by`.

    Build one with `ledger_report()`. Costs are `Decimal`, exact; CSV and JSON
    carry them as exact decimal strings.

    Attributes:
        by: the grouping dimensions, e.g. `("model",)` or `("day", "model")`.
        rows: one row per group, sorted by key (missing values last).
        total: the whole selection (`key == ()`); with `by="tag"` it is not the
            sum of the rows, as a call with two tags is in two rows.
        since: the lower time bound (Unix time), if any.
        until: the upper time bound (exclusive), if any.
        cny_per_usd: the settlement rate used for `cost_cny`.
    """

    by: tuple[str, ...]
    rows: tuple[ReportRow, ...]
    total: ReportRow
    since: float | None = None
    until: float | None = None
    cny_per_usd: Decimal = Decimal(1)

    def __iter__(self) -> Iterator[ReportRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def columns(self) -> list[str]:
        """CSV/JSON column names: the `by` dimensions, then the metrics."""
        return [*self.by, *METRICS]

    def to_table(
        self, file: IO[str] | None = None, *, rich: bool | None = None
    ) -> None:
        """Print the report as a table (with a total line) to `file` (stdout).

        Args:
            file: where to print; defaults to `sys.stdout`.
            rich: use a `rich` table; by default only when `rich` is installed
                and `file` is a terminal. Otherwise plain aligned text.
        """
        render.print_table(self, file, use_rich=rich)

    def to_text(self) -> str:
        """The report as plain aligned text."""
        return render.text_table(self)

    def to_rich_table(self) -> Any:
        """The report as a `rich.table.Table` (needs `rich`)."""
        return render.rich_table(self)

    def to_csv(
        self, file: IO[str] | str | os.PathLike[str] | None = None
    ) -> str | None:
        """Write the rows as CSV (no total line); return the text if `file` is None.

        Decimals are exact strings, missing values are empty cells.
        """
        return render.write_csv(self, file)

    def to_json(self, indent: int | None = None) -> str:
        """The report as JSON: by, since, until, currency, rows and total.

        Decimals are exact strings; times are ISO 8601 UTC; missing values null.
        """
        return render.to_json(self, indent)
