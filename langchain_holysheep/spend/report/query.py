"""`ledger_report()`: aggregate a ledger in SQL, exactly, in bounded memory.

Counts and token sums are SQL `SUM`s. Costs are summed exactly as integers: the
ledger stores each cost as `cost_pico` (cost * 10**12), and the report sums its
high and low parts (`cost_pico / 10**6`, `cost_pico % 10**6`) separately so the
sum cannot overflow; the rare costs that do not fit that scale are added from
their exact TEXT in Python. Percentiles use SQL window functions (SQLite sorts,
spilling to disk), so nothing grows with the ledger in Python.
"""

from __future__ import annotations

import contextlib
import decimal
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from langchain_holysheep.spend.ledger import Ledger, SQLiteLedger, TimeBound
from langchain_holysheep.spend.ledger.base import to_timestamp
from langchain_holysheep.spend.ledger.schema import (
    ledger_read_error,
    open_reader,
    where_clause,
)
from langchain_holysheep.spend.ledger.tags import not_internal_sql
from langchain_holysheep.spend.report.rows import METRICS, LedgerReport, ReportRow

__all__ = ["DIMENSIONS", "ledger_report"]

DIMENSIONS: dict[str, str] = {
    "day": "date(c.ts, 'unixepoch')",
    "hour": "strftime('%Y-%m-%dT%H:00Z', c.ts, 'unixepoch')",
    "month": "strftime('%Y-%m', c.ts, 'unixepoch')",
    "model": "c.served_model",
    "requested_model": "c.requested_model",
    "outcome": "c.outcome",
    "user": "c.user",
    "run": "c.run_id",
    "tag": "t.tag",
}
"""Group-by dimensions and their SQL; also "meta:<key>" for any metadata key.
Times are UTC."""

# Tags LangChain adds itself (seq:step:N, ...) are no group of their own; a
# call that has only those counts as untagged.
_USER_TAG = not_internal_sql("t.tag")
_META_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")
_DEC = decimal.Context(prec=80)
_SPLIT = 10**6  # cost_pico is summed as (cost_pico / _SPLIT, cost_pico % _SPLIT)
_COUNTS = tuple(
    m
    for m in METRICS
    if m not in ("cost", "cost_cny", "latency_p50_ms", "latency_p95_ms")
)

_AGGREGATES = """COUNT(*),
    SUM(c.outcome = 'ok'), SUM(c.outcome = 'error'), SUM(c.outcome = 'cancelled'),
    SUM(c.is_retry), SUM(c.is_fallback),
    SUM(c.input_tokens), SUM(c.cached_tokens), SUM(c.output_tokens),
    SUM(c.reasoning_tokens), SUM(c.cost IS NULL),
    SUM(c.cost_pico / 1000000), SUM(c.cost_pico % 1000000),
    SUM(c.cost IS NOT NULL AND c.cost_pico IS NULL)"""


def ledger_report(
    ledger: Ledger | str | os.PathLike[str],
    by: str | Sequence[str] = "day",
    since: TimeBound | None = None,
    until: TimeBound | None = None,
    *,
    models: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    cny_per_usd: Decimal | int | str = 1,
    percentiles: bool = True,
) -> LedgerReport:
    """Group a ledger's attempts and total their outcomes, tokens, cost, latency.

    Example:
        ```python
        from langchain_holysheep.spend.report import ledger_report

        report = ledger_report(ledger, by="model", since=date(2025, 1, 1))
        report.to_table()
        report.rows[0].cost  # Decimal('12.345678000000'), exact
        ledger_report("ledger.sqlite3", by=("day", "model")).to_csv("spend.csv")
        ```

    Args:
        ledger: an `SQLiteLedger` (pending records are flushed first) or the path
            of a ledger file (opened read-only).
        by: one dimension or several: "day", "hour", "month" (UTC), "model"
            (served), "requested_model", "outcome", "user" (metadata "user" or
            "user_id"), "run", "tag" (a call is counted once per tag; untagged
            calls have key None) or "meta:<key>" (any metadata key).
        since: keep attempts with timestamp >= since (datetime, date or Unix time).
        until: keep attempts with timestamp < until.
        models: keep attempts whose served or requested model is one of these.
        tags: keep attempts carrying at least one of these tags.
        cny_per_usd: the settlement rate for `cost_cny` (HolySheep: ¥1 = $1).
            Costs recorded in CNY are converted to USD at the same rate.
        percentiles: compute p50/p95 latency (one more sorting pass in SQL);
            False leaves them None and halves the time on big ledgers.

    Raises:
        ValueError: an unknown dimension, or costs in a currency other than USD
            and CNY.
        LedgerError: the path is not a ledger.
    """
    dims = (by,) if isinstance(by, str) else tuple(by)
    keys = [_dimension_sql(d) for d in dims]
    rate = _rate(cny_per_usd)
    where, params = where_clause(since, until, models, tags)
    rows, total = _grouped(ledger, keys, where, params, rate, percentiles)
    return LedgerReport(
        by=dims,
        rows=rows,
        total=total,
        since=to_timestamp(since),
        until=to_timestamp(until),
        cny_per_usd=rate,
    )


def _grouped(
    ledger: Ledger | str | os.PathLike[str],
    keys: list[str],
    where: str,
    params: list[Any],
    rate: Decimal,
    percentiles: bool,
) -> tuple[tuple[ReportRow, ...], ReportRow]:
    """The rows sorted by key (missing values last), and the total."""
    try:
        with _reader(ledger) as conn:
            groups = _aggregate(conn, keys, where, params, rate, percentiles)
            total = _total(conn, groups, keys, where, params, rate, percentiles)
    except sqlite3.Error as exc:  # e.g. a damaged file: name it, say what to do
        raise ledger_read_error(_path_of(ledger), exc) from exc
    rows = sorted(groups.values(), key=lambda r: [(k is None, k or "") for k in r.key])
    return tuple(rows), total


def _rate(cny_per_usd: Decimal | int | str) -> Decimal:
    rate = (
        Decimal(str(cny_per_usd))
        if not isinstance(cny_per_usd, Decimal)
        else cny_per_usd
    )
    if not rate.is_finite() or rate <= 0:
        raise ValueError(f"cny_per_usd must be a positive number, not {cny_per_usd!r}.")
    return rate


def _total(
    conn: sqlite3.Connection,
    groups: dict[tuple[str | None, ...], ReportRow],
    keys: list[str],
    where: str,
    params: list[Any],
    rate: Decimal,
    percentiles: bool,
) -> ReportRow:
    """The whole selection's row."""
    if not keys:
        return groups.get((), ReportRow(key=()))
    if "t.tag" in keys:  # a call with two tags is in two groups
        whole = _aggregate(conn, [], where, params, rate, percentiles)
        return whole.get((), ReportRow(key=()))
    # the groups partition the calls: add them up
    latency = _percentiles(conn, [], "", where, params) if percentiles else {}
    return _sum_rows(groups.values(), latency.get((), (None, None)))


def _dimension_sql(dim: str) -> str:
    if dim.startswith("meta:"):
        key = dim[5:]
        if not _META_KEY.match(key):
            raise ValueError(
                f"Metadata key {key!r} must use only letters, digits, '_', '.', '-'."
            )
        return f"json_extract(c.metadata, '$.\"{key}\"')"
    try:
        return DIMENSIONS[dim]
    except KeyError:
        known = ", ".join(repr(d) for d in DIMENSIONS)
        raise ValueError(
            f"Unknown report dimension {dim!r}; use one of {known} or 'meta:<key>'."
        ) from None


def _path_of(ledger: Ledger | str | os.PathLike[str]) -> Path:
    if isinstance(ledger, SQLiteLedger):
        return ledger.path
    return Path(str(ledger)).expanduser()


@contextlib.contextmanager
def _reader(ledger: Ledger | str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    if isinstance(ledger, SQLiteLedger):
        with ledger.reader() as conn:
            yield conn
        return
    if isinstance(ledger, Ledger):
        raise TypeError(
            f"ledger_report() reads SQLite ledgers; got {type(ledger).__name__}. "
            "Pass an SQLiteLedger or the path of a ledger file."
        )
    conn = open_reader(Path(ledger).expanduser())
    try:
        yield conn
    finally:
        conn.close()


def _aggregate(
    conn: sqlite3.Connection,
    keys: list[str],
    where: str,
    params: list[Any],
    rate: Decimal,
    percentiles: bool,
) -> dict[tuple[str | None, ...], ReportRow]:
    """One `ReportRow` per distinct key (`keys == []`: one row, key `()`)."""
    select, names = _selected(keys)
    join = (
        f" LEFT JOIN call_tags t ON t.call_id = c.id AND {_USER_TAG}"
        if "t.tag" in keys
        else ""
    )
    group = ", ".join([*names, "cur"])
    sql = (
        f"SELECT {select}c.currency AS cur, {_AGGREGATES} "
        f"FROM calls c{join}{where} GROUP BY {group}"
    )
    sums, money, inexact = _sums(conn.execute(sql, params), len(keys))
    if inexact:  # costs finer than 1e-12 (or huge): add their exact text
        cond = "c.cost IS NOT NULL AND c.cost_pico IS NULL"
        sql = (
            f"SELECT {select}c.currency, c.cost FROM calls c{join}"
            f"{where} {'AND' if where else 'WHERE'} {cond}"
        )
        for row in conn.execute(sql, params):
            _add_money(money[tuple(row[: len(keys)])], row[len(keys)], row[-1])
    latency = _percentiles(conn, keys, join, where, params) if percentiles else {}
    result: dict[tuple[str | None, ...], ReportRow] = {}
    for key, acc in sums.items():
        usd = _to_usd(money[key], rate)
        p50, p95 = latency.get(key, (None, None))
        result[key] = ReportRow(
            key,
            **dict(zip(_COUNTS, acc, strict=True)),
            cost=_tidy(usd),
            cost_cny=_tidy(_DEC.multiply(usd, rate)),
            latency_p50_ms=p50,
            latency_p95_ms=p95,
        )
    return result


def _selected(keys: list[str]) -> tuple[str, list[str]]:
    """The SELECT list of the keys ("<sql> AS k0, ...") and their column names."""
    names = [f"k{i}" for i in range(len(keys))]
    select = "".join(
        f"{sql} AS {name}, " for sql, name in zip(keys, names, strict=True)
    )
    return select, names


def _sums(
    rows: Iterable[Sequence[Any]], n: int
) -> tuple[dict[Any, list[int]], dict[Any, dict[str, Decimal]], bool]:
    """Counts and exact costs (by currency) per key, and whether any was inexact.

    An inexact cost is too fine (or too large) for `cost_pico`; it is added from
    its exact text afterwards.
    """
    sums: dict[tuple[Any, ...], list[int]] = {}
    money: dict[tuple[Any, ...], dict[str, Decimal]] = {}
    inexact = False
    width = len(_COUNTS)
    for row in rows:
        key, cur, values = tuple(row[:n]), row[n], [v or 0 for v in row[n + 1 :]]
        acc = sums.setdefault(key, [0] * width)
        for i in range(width):
            acc[i] += values[i]
        pico = values[width] * _SPLIT + values[width + 1]
        _add_money(money.setdefault(key, {}), cur, Decimal(pico).scaleb(-12, _DEC))
        inexact = inexact or values[width + 2] > 0
    return sums, money, inexact


def _add_money(wallet: dict[str, Decimal], currency: str, amount: Any) -> None:
    wallet[currency] = _DEC.add(wallet.get(currency, Decimal(0)), Decimal(amount))


def _percentiles(
    conn: sqlite3.Connection,
    keys: list[str],
    join: str,
    where: str,
    params: list[Any],
) -> dict[tuple[Any, ...], tuple[float | None, float | None]]:
    """Nearest-rank p50 and p95 of `latency_ms` per key, by a SQL window function.

    `CUME_DIST()` is the share of the key's latencies <= this one, so the
    smallest latency whose share reaches p is the nearest-rank p-th percentile.
    """
    select, names = _selected(keys)
    cols = "".join(f"{name}, " for name in names)
    partition = f"PARTITION BY {', '.join(names)} " if names else ""
    sql = (
        f"SELECT {cols}MIN(CASE WHEN cd >= 0.5 THEN v END), "
        "MIN(CASE WHEN cd >= 0.95 THEN v END) "
        f"FROM (SELECT {cols}v, CUME_DIST() OVER ({partition}ORDER BY v) AS cd "
        f"FROM (SELECT {select}c.latency_ms AS v FROM calls c{join}{where} "
        f"{'AND' if where else 'WHERE'} c.latency_ms IS NOT NULL)) WHERE cd >= 0.5"
        + (f" GROUP BY {', '.join(names)}" if names else "")
    )
    out: dict[tuple[Any, ...], tuple[float | None, float | None]] = {}
    n = len(names)
    for row in conn.execute(sql, params):
        if row[n] is not None:
            out[tuple(row[:n])] = (row[n], row[n + 1])
    return out


def _sum_rows(
    rows: Iterable[ReportRow], latency: tuple[float | None, float | None]
) -> ReportRow:
    """The total of disjoint groups (costs add up exactly)."""
    rows = list(rows)
    counts = {name: sum(getattr(r, name) for r in rows) for name in _COUNTS}
    cost, cny = Decimal(0), Decimal(0)
    for row in rows:
        cost, cny = _DEC.add(cost, row.cost), _DEC.add(cny, row.cost_cny)
    return ReportRow(
        key=(),
        **counts,
        cost=_tidy(cost),
        cost_cny=_tidy(cny),
        latency_p50_ms=latency[0],
        latency_p95_ms=latency[1],
    )


def _to_usd(wallet: dict[str, Decimal], rate: Decimal) -> Decimal:
    total = Decimal(0)
    for currency, amount in wallet.items():
        if currency == "USD":
            total = _DEC.add(total, amount)
        elif currency == "CNY":
            total = _DEC.add(total, _DEC.divide(amount, rate))
        else:
            raise ValueError(
                f"The ledger holds costs in {currency!r}; reports convert only USD "
                "and CNY. Filter those records out (models=...) or convert them."
            )
    return total


def _tidy(value: Decimal) -> Decimal:
    """The same amount without trailing zeros or exponent ("0E-12" -> "0")."""
    value = _DEC.normalize(value)
    if value.as_tuple().exponent > 0:  # type: ignore[operator]
        value = value.quantize(Decimal(1), context=_DEC)
    return value
