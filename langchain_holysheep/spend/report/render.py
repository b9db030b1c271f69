"""Renderers of a `LedgerReport`: terminal table, plain text, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from datetime import datetime, timezone
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_holysheep.spend.report.rows import LedgerReport, ReportRow

__all__ = ["print_table", "rich_table", "text_table", "to_json", "write_csv"]

# (header, formatter) of the table's metric columns; CSV/JSON carry every field.
_TABLE: tuple[tuple[str, Any], ...] = (
    ("requests", lambda r: f"{r.requests:,}"),
    ("ok", lambda r: f"{r.successes:,}"),
    ("errors", lambda r: f"{r.failures:,}"),
    ("retries", lambda r: f"{r.retries:,}"),
    ("fallbacks", lambda r: f"{r.fallbacks:,}"),
    ("input tok (cached)", lambda r: f"{r.input_tokens:,} ({r.cached_tokens:,})"),
    (
        "output tok (reasoning)",
        lambda r: f"{r.output_tokens:,} ({r.reasoning_tokens:,})",
    ),
    ("cost USD", lambda r: _money(r, r.cost)),
    ("unpriced", lambda r: f"{r.unpriced:,}"),
    ("cost CNY", lambda r: _money(r, r.cost_cny)),
    ("p50 ms", lambda r: _ms(r.latency_p50_ms)),
    ("p95 ms", lambda r: _ms(r.latency_p95_ms)),
)


def _money(row: ReportRow, value: Decimal) -> str:
    if row.requests and row.unpriced == row.requests:
        return "-"  # nothing priced: not $0
    return format(value, ",.6f")  # display only; CSV/JSON are exact


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _title(report: LedgerReport) -> str:
    span = ""
    if report.since is not None or report.until is not None:
        span = f", {_iso(report.since) or '...'} to {_iso(report.until) or '...'}"
    return f"HolySheep spend by {', '.join(report.by) or 'total'}{span} (UTC)"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return (
        datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    )


def _cells(report: LedgerReport, row: ReportRow, total: bool) -> list[str]:
    if total:
        keys = ["TOTAL"] + [""] * (len(report.by) - 1) if report.by else ["TOTAL"]
    else:
        keys = ["(none)" if k is None else k for k in row.key]
    return keys + [fmt(row) for _, fmt in _TABLE]


def _headers(report: LedgerReport) -> list[str]:
    return [*(report.by or ("",)), *(h for h, _ in _TABLE)]


def text_table(report: LedgerReport) -> str:
    """Plain text, columns aligned (keys left, numbers right), with a total line."""
    headers = _headers(report)
    body = [_cells(report, r, False) for r in report.rows]
    total = _cells(report, report.total, True)
    widths = [
        max(len(c[i]) for c in [headers, *body, total]) for i in range(len(headers))
    ]
    nkeys = len(report.by) or 1

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < nkeys else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [_title(report), line(headers), rule, *map(line, body), rule, line(total)]
    return "\n".join(lines)


def rich_table(report: LedgerReport) -> Any:
    """A `rich.table.Table` of the report (needs `rich`)."""
    from rich.table import Table

    table = Table(title=_title(report), show_footer=False)
    nkeys = len(report.by) or 1
    for i, header in enumerate(_headers(report)):
        table.add_column(header, justify="left" if i < nkeys else "right")
    for row in report.rows:
        table.add_row(*_cells(report, row, False))
    table.add_section()
    table.add_row(*_cells(report, report.total, True), style="bold")
    return table


def print_table(
    report: LedgerReport, file: IO[str] | None = None, *, use_rich: bool | None = None
) -> None:
    """Print a rich table on a terminal (when rich is installed), else plain text."""
    out = sys.stdout if file is None else file
    if use_rich is None:
        try:
            import rich  # noqa: F401
        except ImportError:
            use_rich = False
        else:
            use_rich = bool(getattr(out, "isatty", lambda: False)())
    if use_rich:
        from rich.console import Console

        Console(file=out).print(rich_table(report))
    else:
        out.write(text_table(report) + "\n")


def _plain(value: Any) -> Any:
    """JSON-ready: Decimal -> exact string, the rest as is."""
    return str(value) if isinstance(value, Decimal) else value


def _row_dict(report: LedgerReport, row: ReportRow) -> dict[str, Any]:
    keys = dict(zip(report.by, row.key, strict=True))
    return {**keys, **{k: _plain(v) for k, v in row.metrics().items()}}


def write_csv(
    report: LedgerReport, file: IO[str] | str | os.PathLike[str] | None = None
) -> str | None:
    """Write the rows as CSV; return the text when `file` is None."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "w", newline="", encoding="utf-8") as f:
            write_csv(report, f)
        return None
    out = io.StringIO() if file is None else file
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(report.columns())
    for row in report.rows:
        d = _row_dict(report, row)
        writer.writerow(["" if d[c] is None else d[c] for c in report.columns()])
    return out.getvalue() if isinstance(out, io.StringIO) and file is None else None


def to_json(report: LedgerReport, indent: int | None = None) -> str:
    """The report as a JSON document (Decimals as exact strings)."""
    doc = {
        "by": list(report.by),
        "since": _iso(report.since),
        "until": _iso(report.until),
        "currency": "USD",
        "cny_per_usd": str(report.cny_per_usd),
        "rows": [_row_dict(report, r) for r in report.rows],
        "total": {k: _plain(v) for k, v in report.total.metrics().items()},
    }
    return json.dumps(doc, indent=indent, ensure_ascii=False)
