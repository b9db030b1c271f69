"""ledger_report: SQL aggregates equal sums computed independently in Python.

Every test runs on both stores (SQLite and PostgreSQL) but the refusals.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from langchain_holysheep.spend.ledger import Ledger, LedgerError, open_ledger
from langchain_holysheep.spend.ledger.queued import QueuedLedger
from langchain_holysheep.spend.records import CallRecord
from langchain_holysheep.spend.report import (
    METRICS,
    LedgerReport,
    ReportRow,
    ledger_report,
)
from langchain_holysheep.spend.tracking._sinks import ListSink
from tests._postgres import Schemas

from .conftest import STORES, T0, make_record, random_records

RECORDS = random_records(3_000, seed=11)


@pytest.fixture(scope="module", params=STORES)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    if request.param == "postgres":
        schemas = Schemas(request.getfixturevalue("postgres_url"))
        request.addfinalizer(schemas.drop_all)
        target = schemas.new_url()
    else:
        target = str(tmp_path_factory.mktemp("report") / "ledger.sqlite3")
    ledger = open_ledger(target)
    ledger.record_many(RECORDS)
    yield ledger
    ledger.close()


def _day(r: CallRecord) -> str:
    return datetime.fromtimestamp(r.timestamp, tz=timezone.utc).date().isoformat()


def _user(r: CallRecord) -> str | None:
    meta = dict(r.metadata)
    return meta.get("user", meta.get("user_id"))


def _nearest_rank(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[math.ceil(pct / 100 * len(values)) - 1]


def _expected(
    recs: list[CallRecord],
    keys: Callable[[CallRecord], list[tuple[str | None, ...]]],
    rate: Decimal = Decimal(1),
) -> dict[tuple[str | None, ...], ReportRow]:
    groups: dict[tuple[str | None, ...], list[CallRecord]] = defaultdict(list)
    for r in recs:
        for k in keys(r):
            groups[k].append(r)
    out = {}
    for k, rs in groups.items():
        cost = Decimal(0)
        for r in rs:
            if r.cost is not None:
                cost += r.cost if r.currency == "USD" else r.cost / rate
        lat = [r.latency_ms for r in rs if r.latency_ms is not None]
        out[k] = ReportRow(
            key=k,
            requests=len(rs),
            successes=sum(r.outcome == "ok" for r in rs),
            failures=sum(r.outcome == "error" for r in rs),
            cancelled=sum(r.outcome == "cancelled" for r in rs),
            retries=sum(r.is_retry for r in rs),
            fallbacks=sum(r.is_fallback for r in rs),
            input_tokens=sum(r.usage.input for r in rs),
            cached_tokens=sum(r.usage.cached for r in rs),
            output_tokens=sum(r.usage.output for r in rs),
            reasoning_tokens=sum(r.usage.reasoning for r in rs),
            cost=cost,
            unpriced=sum(r.cost is None for r in rs),
            cost_cny=cost * rate,
            latency_p50_ms=_nearest_rank(lat, 50),
            latency_p95_ms=_nearest_rank(lat, 95),
        )
    return out


def _assert_matches(
    report: LedgerReport, expected: dict[tuple[str | None, ...], ReportRow]
) -> None:
    got = {r.key: r for r in report.rows}
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        assert got[key] == want, key  # dataclass equality: Decimal values exact
    assert list(got) == sorted(got, key=lambda k: [(x is None, x or "") for x in k])


BY: dict[str, Callable[[CallRecord], list[tuple[str | None, ...]]]] = {
    "day": lambda r: [(_day(r),)],
    "model": lambda r: [(r.served_model,)],
    "requested_model": lambda r: [(r.requested_model,)],
    "outcome": lambda r: [(r.outcome,)],
    "user": lambda r: [(_user(r),)],
    "meta:user": lambda r: [(_user(r),)],
    "tag": lambda r: [(t,) for t in sorted(set(r.tags))] or [(None,)],
    "key": lambda r: [(r.key_name,)],
    "group": lambda r: [(r.model_group,)],
}


@pytest.mark.parametrize("by", list(BY))
def test_report_equals_python_sums(filled: QueuedLedger, by: str) -> None:
    report = ledger_report(filled, by=by)
    _assert_matches(report, _expected(RECORDS, BY[by]))
    assert report.total == _expected(RECORDS, lambda r: [()])[()]
    assert report.by == (by,)


def test_report_by_two_dimensions_with_time_window(filled: QueuedLedger) -> None:
    since, until = T0 + 36_000, T0 + 2 * 86_400
    report = ledger_report(filled, by=("day", "model"), since=since, until=until)
    window = [r for r in RECORDS if since <= r.timestamp < until]
    _assert_matches(report, _expected(window, lambda r: [(_day(r), r.served_model)]))
    assert report.since == since and report.until == until
    assert report.total.requests == len(window)


def test_report_filters_models_and_tags(filled: QueuedLedger) -> None:
    report = ledger_report(filled, by="tag", models=["gpt-4.1"], tags=["batch"])
    picked = [
        r
        for r in RECORDS
        if "gpt-4.1" in (r.served_model, r.requested_model) and "batch" in r.tags
    ]
    _assert_matches(report, _expected(picked, BY["tag"]))


def test_cny_rate_and_unpriced(filled: QueuedLedger) -> None:
    report = ledger_report(filled, by="model", cny_per_usd="2")
    _assert_matches(report, _expected(RECORDS, BY["model"], rate=Decimal(2)))
    mystery = next(r for r in report if r.key == ("mystery-model",))
    assert mystery.unpriced == mystery.requests and mystery.cost == 0
    assert "mystery-model" in report.to_text()


def test_exact_sums_beyond_float_and_pico(any_ledger: QueuedLedger) -> None:
    ledger = any_ledger
    costs = [Decimal("0.1")] * 10 + [Decimal("1E-18"), Decimal("12345678.123456789012")]
    ledger.record_many(make_record(cost=c) for c in costs)
    ledger.record(make_record(cost=None))
    total = ledger_report(ledger, by="model").total
    assert total.cost == Decimal("12345679.123456789012000001")  # float would lose this
    assert str(total.cost) == "12345679.123456789012000001"
    assert total.unpriced == 1


def test_empty_ledger_and_path_input(
    any_ledger: QueuedLedger, ledger_target: str
) -> None:
    ledger = any_ledger
    report = ledger_report(ledger, by="day")
    assert report.rows == () and report.total == ReportRow(key=())
    ledger.record(make_record(latency_ms=None))
    ledger.flush()
    from_path = ledger_report(ledger_target, by="model")  # a path or a URL
    assert from_path.total.requests == 1 and from_path.total.latency_p50_ms is None


def test_report_refusals(any_ledger: QueuedLedger, tmp_path: Path) -> None:
    ledger = any_ledger
    with pytest.raises(ValueError, match="Unknown report dimension 'weekday'"):
        ledger_report(ledger, by="weekday")
    with pytest.raises(ValueError, match="Metadata key"):
        ledger_report(ledger, by="meta:a'b")
    with pytest.raises(ValueError, match="cny_per_usd"):
        ledger_report(ledger, cny_per_usd=0)
    with pytest.raises(LedgerError, match="No HolySheep spend ledger"):
        ledger_report(tmp_path / "missing.sqlite3")
    with pytest.raises(TypeError, match="SQLite ledgers"):
        ledger_report(_FakeLedger())  # type: ignore[arg-type]
    ledger.record(make_record(currency="EUR"))
    with pytest.raises(ValueError, match="'EUR'"):
        ledger_report(ledger)


class _FakeLedger(Ledger):
    def record(self, rec: CallRecord) -> None:
        ListSink().record(rec)

    def query(self, *a: Any, **kw: Any) -> Any:
        return iter(())

    def close(self) -> None:
        pass


def test_csv_and_json_parse_and_agree(filled: QueuedLedger, tmp_path: Path) -> None:
    report = ledger_report(filled, by=("day", "tag"))
    text = report.to_csv()
    assert text is not None
    rows = list(csv.DictReader(io.StringIO(text)))
    doc = json.loads(report.to_json(indent=2))
    assert doc["by"] == ["day", "tag"] and doc["cny_per_usd"] == "1"
    assert len(rows) == len(doc["rows"]) == len(report.rows)
    assert list(rows[0]) == ["day", "tag", *METRICS]
    for c, j, r in zip(rows, doc["rows"], report.rows, strict=True):
        assert c == {k: "" if v is None else str(v) for k, v in j.items()}
        assert Decimal(j["cost"]) == r.cost and Decimal(c["cost_cny"]) == r.cost_cny
        assert j["requests"] == r.requests and j["latency_p95_ms"] == r.latency_p95_ms
    assert Decimal(doc["total"]["cost"]) == report.total.cost
    report.to_csv(tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == text


def test_table_plain_and_rich(
    filled: QueuedLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = ledger_report(filled, by="model", since=T0)
    out = io.StringIO()
    report.to_table(out)  # not a terminal: plain text
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0].startswith("HolySheep spend by model, 2025-01-01T00:00:00Z")
    assert "cost USD" in lines[1] and lines[-1].startswith("TOTAL")
    assert len({len(line) for line in lines[1:3]}) == 1  # aligned header and rule
    mystery = next(line for line in lines if line.startswith("mystery-model"))
    assert " - " in mystery  # unpriced, not $0
    out = io.StringIO()
    report.to_table(out, rich=True)
    assert "┃" in out.getvalue() or "│" in out.getvalue()
    monkeypatch.setitem(sys.modules, "rich", None)  # as if rich were not installed
    plain = io.StringIO()
    plain.isatty = lambda: True  # type: ignore[method-assign]
    report.to_table(plain)
    assert plain.getvalue() == text


def test_percentiles_can_be_skipped(filled: QueuedLedger) -> None:
    fast = ledger_report(filled, by="model", percentiles=False)
    full = ledger_report(filled, by="model")
    assert all(
        r.latency_p50_ms is None and r.latency_p95_ms is None
        for r in [*fast, fast.total]
    )
    for a, b in zip(fast, full, strict=True):
        assert a.cost == b.cost and a.requests == b.requests
