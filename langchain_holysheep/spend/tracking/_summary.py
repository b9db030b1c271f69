"""`SpendReport`: a typed snapshot of a `SpendTracker`, rendered as a table.

`str(report)` draws the table with `rich` when it is installed, plain text
otherwise; `report.to_dict()` gives JSON-ready data (money as strings).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from langchain_holysheep.spend.counts import SpendCounts
from langchain_holysheep.spend.pricing._book import format_money
from langchain_holysheep.spend.tracking._stats import LogHistogram

__all__ = ["ModelSpend", "Percentiles", "SpendReport"]


@dataclass(frozen=True)
class Percentiles:
    """Latency percentiles in milliseconds (`None` without samples)."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None

    @classmethod
    def of(cls, hist: LogHistogram) -> Percentiles:
        """The percentiles of a latency histogram."""
        p50, p95, p99 = hist.quantiles()
        top = hist.max if hist.count else None
        return cls(hist.count, p50, p95, p99, top, hist.mean)


@dataclass(frozen=True)
class _ModelOutcomes:
    """A `ModelSpend`'s first fields: the model, and how its attempts ended."""

    model: str
    requests: int = 0
    successes: int = 0
    failures: int = 0


@dataclass(frozen=True)
class ModelSpend(SpendCounts, _ModelOutcomes):
    """One row of the report: everything about one served model.

    Attributes:
        model: the model that answered (or was attempted).
        requests: upstream attempts on this model.
        successes: attempts that answered.
        failures: attempts that failed.
        retries: attempts that repeated this model after a failure.
        fallbacks: calls this model answered after an earlier route failed.
        input_tokens: billed prompt tokens (cached included).
        cached_tokens: of which read from the prompt cache.
        output_tokens: billed completion tokens (reasoning included).
        reasoning_tokens: of which reasoning.
        cost: USD at full precision, or `None` when the model is unpriced.
        latency_ms: percentiles of the latency of calls this model answered.
        ttft_ms: percentiles of the time to the first streamed token.
    """

    cost: Decimal | None = None
    latency_ms: Percentiles = Percentiles()
    ttft_ms: Percentiles = Percentiles()

    @property
    def priced(self) -> bool:
        """False when the model has no known price."""
        return self.cost is not None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _cells(
    label: str,
    requests: int,
    ok: int,
    failed: int,
    counts: ModelSpend | SpendReport,
) -> list[str]:
    """One table row; `counts` is a model's row or the whole report."""
    numbers = (
        requests,
        ok,
        failed,
        counts.retries,
        counts.fallbacks,
        counts.input_tokens,
        counts.cached_tokens,
        counts.output_tokens,
        counts.reasoning_tokens,
    )
    latency, ttft = counts.latency_ms, counts.ttft_ms
    return [
        label,
        *(f"{n:,}" for n in numbers),
        format_money(counts.cost, places=6),
        *(_ms(p) for p in (latency.p50, latency.p95, latency.p99, ttft.p50)),
    ]


@dataclass(frozen=True)
class _CallOutcomes:
    """A `SpendReport`'s first fields: its rows, and how its calls ended."""

    models: tuple[ModelSpend, ...] = ()
    calls: int = 0
    successes: int = 0
    failures: int = 0
    rejected: int = 0
    attempts: int = 0
    failed_attempts: int = 0


@dataclass(frozen=True)
class SpendReport(SpendCounts, _CallOutcomes):
    """What a tracker saw: per-model rows and totals.

    Call-level totals count chat-model calls (one `invoke`, one stream);
    `attempts` counts upstream requests (retries and fallbacks included).

    Attributes:
        models: one row per served model, most expensive first.
        calls: chat-model calls that ended (successes + failures).
        successes: calls that returned an answer.
        failures: calls that ended in an error.
        rejected: calls refused by a budget before anything was sent.
        attempts: upstream attempts; `failed_attempts`: of which failed.
        retries: attempts that repeated a model; `fallbacks`: calls answered by
            a route other than the first.
        cost: priced spend in USD (full precision); unpriced calls are counted
            in `unpriced_calls` and their tokens in `unpriced_tokens`.
        success_rate: successes / calls; `error_rate`: failed attempts /
            attempts; `failover_rate`: fallbacks / calls.
        cost_per_1k_requests: cost / calls x 1000 (`None` before any call).
        latency_ms / ttft_ms: percentiles over successful calls.
        settlement_currency / settlement_rate: how the gateway bills (¥1 = $1).
    """

    cost: Decimal = Decimal(0)
    unpriced_calls: int = 0
    unpriced_tokens: int = 0
    success_rate: float | None = None
    error_rate: float | None = None
    failover_rate: float | None = None
    cost_per_1k_requests: Decimal | None = None
    latency_ms: Percentiles = Percentiles()
    ttft_ms: Percentiles = Percentiles()
    currency: str = "USD"
    settlement_currency: str = "CNY"
    settlement_rate: Decimal = Decimal(1)

    @property
    def cost_settlement(self) -> Decimal:
        """`cost` in the settlement currency (CNY at ¥1 = $1)."""
        return self.cost * self.settlement_rate

    def model(self, name: str) -> ModelSpend | None:
        """The row of one model, or `None`."""
        return next((row for row in self.models if row.model == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; money as decimal strings."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["models"] = [asdict(row) for row in self.models]
        out["latency_ms"] = asdict(self.latency_ms)
        out["ttft_ms"] = asdict(self.ttft_ms)
        out["cost_settlement"] = self.cost_settlement
        return _plain(out)  # type: ignore[no-any-return]

    # -- rendering --------------------------------------------------------------
    _HEADERS = (
        "model",
        "requests",
        "ok",
        "failed",
        "retries",
        "fallbacks",
        "input",
        "cached",
        "output",
        "reasoning",
        "cost",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "ttft p50",
    )

    def _rows(self) -> list[list[str]]:
        rows = [
            _cells(m.model, m.requests, m.successes, m.failures, m) for m in self.models
        ]
        ok = self.attempts - self.failed_attempts
        rows.append(_cells("TOTAL", self.attempts, ok, self.failed_attempts, self))
        return rows

    def _footer(self) -> str:
        per_1k = (
            "-"
            if self.cost_per_1k_requests is None
            else format_money(self.cost_per_1k_requests)
        )
        lines = [
            f"calls {self.calls:,} (ok {self.successes:,}, failed {self.failures:,}, "
            f"refused by budget {self.rejected:,}) · success rate "
            f"{_pct(self.success_rate)} · error rate {_pct(self.error_rate)} · "
            f"failover rate {_pct(self.failover_rate)}",
            f"cost {format_money(self.cost)} = "
            f"{format_money(self.cost_settlement, self.settlement_currency)} "
            f"(settled at {self.settlement_rate} {self.settlement_currency}/"
            f"{self.currency}) · per 1k calls {per_1k}",
        ]
        if self.unpriced_calls:
            lines.append(
                f"unpriced: {self.unpriced_calls:,} calls, {self.unpriced_tokens:,} "
                "tokens (no known price; not included in cost)"
            )
        return "\n".join(lines)

    def render(self, use_rich: bool | None = None, width: int = 160) -> str:
        """The report as text: a `rich` table when available (or asked for)."""
        if use_rich is not False:
            try:
                from rich.console import Console
                from rich.table import Table
            except ImportError:
                if use_rich:
                    raise
            else:
                table = Table(title="HolySheep spend", show_lines=False)
                for i, header in enumerate(self._HEADERS):
                    table.add_column(header, justify="left" if i == 0 else "right")
                rows = self._rows()
                for i, row in enumerate(rows):
                    table.add_row(*row, end_section=i == len(rows) - 2)
                buf = io.StringIO()
                console = Console(file=buf, width=width, color_system=None)
                console.print(table)
                console.print(self._footer(), highlight=False, markup=False)
                return buf.getvalue().rstrip() + "\n"
        rows = [list(self._HEADERS), *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self._HEADERS))]
        lines = []
        for n, row in enumerate(rows):
            cells = [
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells))
            if n == 0 or n == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        return "HolySheep spend\n" + "\n".join(lines) + "\n" + self._footer() + "\n"

    def __str__(self) -> str:
        return self.render()
