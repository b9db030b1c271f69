"""`holysheep report`: spend from the ledger by day, model, tag, ..."""

import re
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import typer

from langchain_holysheep.cli._options import Format, FormatOption, ledger_option
from langchain_holysheep.cli._output import Output
from langchain_holysheep.cli.app import EXIT_FAILURE, UsageError, command

__all__ = ["parse_time", "report"]

_RELATIVE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(
    text: str, *, now: float | None = None, end: bool = False
) -> float | date | datetime:
    """A time bound from the command line.

    Accepts `YYYY-MM-DD`, `today`, `yesterday` (a whole UTC day), an ISO 8601
    date-time (naive = UTC), or a span back from now: `30m`, `12h`, `7d`, `2w`.

    Args:
        text: what the user wrote.
        now: the current Unix time (default: the clock).
        end: the bound ends a range (`--until`, exclusive): a day then means
            the end of that day (the next midnight), so the day is included.
            Otherwise a day means its start (midnight UTC).

    Raises:
        UsageError: anything else.
    """
    value = text.strip().lower()
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now, tz=timezone.utc).date()
    day: date | None = None
    if value == "today":
        day = today
    elif value == "yesterday":
        day = today - timedelta(days=1)
    else:
        match = _RELATIVE.match(value)
        if match:
            return now - int(match.group(1)) * _UNITS[match.group(2)]
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
            else:
                return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"cannot read the time {text!r}: use YYYY-MM-DD, an ISO date-time, "
                "today, yesterday, or a span such as 12h, 7d, 2w"
            ) from None
    return day + timedelta(days=1) if end else day


def _check_dimension(dim: str) -> str:
    from langchain_holysheep.spend.report import DIMENSIONS

    if dim in DIMENSIONS or (dim.startswith("meta:") and len(dim) > 5):
        return dim
    known = ", ".join(DIMENSIONS)
    raise UsageError(f"unknown --by {dim!r}; use one of {known}, or meta:<key>")


@command("report")
def report(
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            "-b",
            help="Group by day, hour, month, model, requested_model, outcome, user, "
            "key (virtual key), group (model group), run, tag or meta:<key>; "
            "repeat to group by several. Default: day.",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = Format.table,
    ledger: Annotated[
        str | None,
        ledger_option(
            "Ledger: a file path, sqlite:///path or postgresql://USER@HOST:PORT/DB"
            "[?schema=NAME]. Default: $HOLYSHEEP_LEDGER_PATH or "
            "~/.holysheep/ledger.sqlite3.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="From this time on: a day (YYYY-MM-DD, today, yesterday) from its "
            "start, 00:00 UTC; an ISO time; or a span back from now (30m, 12h, 7d, "
            "2w).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Up to this time: a day (YYYY-MM-DD, today, yesterday) is "
            "included whole, to its last second UTC; an ISO time or a span (12h, "
            "7d) ends just before that instant.",
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Only these models (served or requested)."),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Only calls with a tag.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
) -> None:
    """Report spend from the ledger: requests, tokens, cost (USD and CNY), latency.

    Costs are exact; CSV and JSON carry them as decimal strings. Times are UTC.
    Record spend into the ledger with get_holysheep_callback(ledger=...) or
    `holysheep batch --ledger`.
    """
    from langchain_holysheep.spend.report import ledger_report

    out = Output()
    dims = [_check_dimension(d) for d in (by or ["day"])]
    target = _ledger_target(out, ledger)
    lo, hi = _time_range(since, until)
    result = ledger_report(
        target,
        by=dims,
        since=lo,
        until=hi,
        models=model or None,
        tags=tag or None,
    )
    _write(out, result, fmt, output)


def _ledger_target(out: Output, ledger: str | None) -> Path | str:
    """The ledger to read: a file (exit 1 if there is none yet) or a URL."""
    from langchain_holysheep.spend.ledger.base import (
        default_ledger_target,
        ledger_target,
    )

    target = default_ledger_target() if ledger is None else ledger_target(ledger)
    if isinstance(target, Path) and not target.is_file():
        out.error(
            f"no ledger at {target}: nothing has been recorded there yet. Record "
            "spend with get_holysheep_callback(ledger=...), or pass --ledger / set "
            "HOLYSHEEP_LEDGER_PATH."
        )
        raise typer.Exit(EXIT_FAILURE)
    return target


def _time_range(
    since: str | None, until: str | None
) -> tuple[float | date | datetime | None, float | date | datetime | None]:
    """--since and --until as bounds; `UsageError` when the range is empty."""
    from langchain_holysheep.spend.ledger.base import to_timestamp

    now = time.time()
    lo = parse_time(since, now=now) if since else None
    hi = parse_time(until, now=now, end=True) if until else None
    start, end = to_timestamp(lo), to_timestamp(hi)
    if start is not None and end is not None and start >= end:
        raise UsageError(
            f"--since {since} is not before --until {until}: nothing can match "
            "(a day given to --until is included whole)"
        )
    return lo, hi


def _write(out: Output, result: Any, fmt: Format, output: Path | None) -> None:
    """The report in `fmt`, to `output` or stdout (a rich table in a terminal)."""
    if fmt is Format.csv:
        text = result.to_csv() or ""
    elif fmt is Format.json:
        text = result.to_json(indent=2) + "\n"
    elif output is not None or not out.rich:
        text = result.to_text() + "\n"
    else:
        out.rich_or_plain(result.to_rich_table(), result.to_text())
        return
    if output is not None:
        output.write_text(text, encoding="utf-8")
        out.note(f"wrote {len(result.rows)} rows to {output}")
    else:
        out.stdout.write(text)
        out.stdout.flush()
