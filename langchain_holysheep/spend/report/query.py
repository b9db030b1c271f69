"""`ledger_report()`: aggregate a ledger in SQL, exactly, in bounded memory.

Counts and token sums are SQL `SUM`s. Costs are summed exactly as integers: the
ledger stores each cost as `cost_pico` (cost * 10**12), and the report sums its
high and low parts (`cost_pico / 10**6`, `cost_pico % 10**6`) separately so the
sum cannot overflow; the rare costs that do not fit that scale are added from
their exact TEXT in Python. Percentiles use SQL window functions (SQLite sorts,
spilling to disk), so nothing grows with the ledger in Python. The same queries
run on SQLite and PostgreSQL: a `Dialect` spells what differs.
"""

from __future__ import annotations

import decimal
import os
import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

from langchain_holysheep.spend.ledger import Ledger, TimeBound
from langchain_holysheep.spend.ledger.base import to_timestamp
from langchain_holysheep.spend.ledger.dialect import SQLITE, Dialect
from langchain_holysheep.spend.ledger.targets import SQLReader, open_reader
from langchain_holysheep.spend.report.rows import METRICS, LedgerReport, ReportRow

__all__ = ["DIMENSIONS", "ledger_report"]

DIMENSIONS: dict[str, str] = dict(SQLITE.dimensions)
"""Group-by dimensions and their (SQLite) SQL; also "meta:<key>" for any metadata
key. "key" is the virtual key name, "group" the model group. Times are UTC."""

_META_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")
_DEC = decimal.Context(prec=80)
_SPLIT = 10**6  # cost_pico is summed as (cost_pico / _SPLIT, cost_pico % _SPLIT)
_COUNTS = tuple(
    m
    for m in METRICS
    if m not in ("cost", "cost_cny", "latency_p50_ms", "latency_p95_ms")
)


def _aggregates(d: Dialect) -> str:
    """The SELECT list of the counts and cost sums, in `_COUNTS` order."""
    flags = (
        "c.outcome = 'ok'",
        "c.outcome = 'error'",
        "c.outcome = 'cancelled'",
        "c.is_retry",
        "c.is_fallback",
    )
    sums = ["COUNT(*)", *(f"SUM({d.flag(x)})" for x in flags)]
    sums += [
        "SUM(c.input_tokens)",
        "SUM(c.cached_tokens)",
        "SUM(c.output_tokens)",
        "SUM(c.reasoning_tokens)",
        f"SUM({d.flag('c.cost IS NULL')})",
        f"SUM(c.cost_pico / {_SPLIT})",
        f"SUM({d.mod('c.cost_pico', str(_SPLIT))})",
        f"SUM({d.flag('c.cost IS NOT NULL AND c.cost_pico IS NULL')})",
    ]
    return ", ".join(sums)


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
        ledger: an `SQLiteLedger` or `PostgresLedger` (pending records are
            flushed first), the path of a ledger file, or a `postgresql://` URL
            (read only; see `open_ledger`).
        by: one dimension or several: "day", "hour", "month" (UTC), "model"
            (served), "requested_model", "outcome", "user" (metadata "user" or
            "user_id"), "key" (virtual key name), "group" (model group), "run",
            "tag" (a call is counted once per tag; untagged
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
        LedgerError: the path or URL is not a ledger, or cannot be read.
    """
    dims = _dimensions(by)
    rate = _rate(cny_per_usd)
    with _reader(ledger) as r:
        where = r.dialect.where(since, until, models, tags)
        rows, total = _grouped(r, dims, where, rate, percentiles)
    return LedgerReport(
        by=dims,
        rows=rows,
        total=total,
        since=to_timestamp(since),
        until=to_timestamp(until),
        cny_per_usd=rate,
    )


def _dimensions(by: str | Sequence[str]) -> tuple[str, ...]:
    """The dimensions of `by`; a bad one is refused before anything is opened."""
    dims = (by,) if isinstance(by, str) else tuple(by)
    for dim in dims:
        _dimension_sql(dim, SQLITE)
    return dims


def _grouped(
    r: SQLReader,
    dims: tuple[str, ...],
    where: tuple[str, list[Any]],
    rate: Decimal,
    percentiles: bool,
) -> tuple[tuple[ReportRow, ...], ReportRow]:
    """The rows grouped by `dims` (in key order, `None` last) and the total row."""
    keys = [_dimension_sql(d, r.dialect) for d in dims]
    groups = _aggregate(r, keys, *where, rate, percentiles)
    total = _total(r, groups, keys, *where, rate, percentiles)
    rows = sorted(groups.values(), key=lambda g: [(k is None, k or "") for k in g.key])
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
    r: SQLReader,
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
        whole = _aggregate(r, [], where, params, rate, percentiles)
        return whole.get((), ReportRow(key=()))
    # the groups partition the calls: add them up
    latency = _percentiles(r, [], "", where, params) if percentiles else {}
    return _sum_rows(groups.values(), latency.get((), (None, None)))


def _dimension_sql(dim: str, dialect: Dialect) -> str:
    if dim.startswith("meta:"):
        key = dim[5:]
        if not _META_KEY.match(key):
            raise ValueError(
                f"Metadata key {key!r} must use only letters, digits, '_', '.', '-'."
            )
        return dialect.meta.format(key=key)
    try:
        return dialect.dimensions[dim]
    except KeyError:
        known = ", ".join(repr(d) for d in DIMENSIONS)
        raise ValueError(
            f"Unknown report dimension {dim!r}; use one of {known} or 'meta:<key>'."
        ) from None


def _reader(
    ledger: Ledger | str | os.PathLike[str],
) -> AbstractContextManager[SQLReader]:
    """A reader of `ledger`: a ledger object (flushed first), a path or a URL."""
    if isinstance(ledger, Ledger):
        sql_reader = getattr(ledger, "sql_reader", None)
        if sql_reader is None:
            raise TypeError(
                "ledger_report() reads SQLite ledgers and PostgreSQL ledgers; got "
                f"{type(ledger).__name__}. Pass an SQLiteLedger, a PostgresLedger, "
                "a ledger file's path or a postgresql:// URL."
            )
        return sql_reader()  # type: ignore[no-any-return]
    return open_reader(ledger)


def _aggregate(
    r: SQLReader,
    keys: list[str],
    where: str,
    params: list[Any],
    rate: Decimal,
    percentiles: bool,
) -> dict[tuple[str | None, ...], ReportRow]:
    """One `ReportRow` per distinct key (`keys == []`: one row, key `()`)."""
    select, names = _selected(keys)
    join = r.dialect.tag_join if "t.tag" in keys else ""
    group = ", ".join([*names, "cur"])
    sql = (
        f"SELECT {select}c.currency AS cur, {_aggregates(r.dialect)} "
        f"FROM calls c{join}{where} GROUP BY {group}"
    )
    sums, money, inexact = _sums(r.execute(sql, params), len(keys))
    if inexact:  # costs finer than 1e-12 (or huge): add their exact text
        cond = "c.cost IS NOT NULL AND c.cost_pico IS NULL"
        sql = (
            f"SELECT {select}c.currency, c.cost FROM calls c{join}"
            f"{where} {'AND' if where else 'WHERE'} {cond}"
        )
        for row in r.execute(sql, params):
            _add_money(money[tuple(row[: len(keys)])], row[len(keys)], row[-1])
    latency = _percentiles(r, keys, join, where, params) if percentiles else {}
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
        key, cur = tuple(row[:n]), row[n]
        values = [int(v or 0) for v in row[n + 1 :]]  # PostgreSQL sums: Decimal
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
    r: SQLReader,
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
        f"{'AND' if where else 'WHERE'} c.latency_ms IS NOT NULL) AS s) AS p "
        "WHERE cd >= 0.5" + (f" GROUP BY {', '.join(names)}" if names else "")
    )
    out: dict[tuple[Any, ...], tuple[float | None, float | None]] = {}
    n = len(names)
    for row in r.execute(sql, params):
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
