"""Ledgers: exact round trips, filters, schema checks, durability modes.

Tests taking `any_ledger`, `make_ledger` or `new_target` run once per store
(SQLite and PostgreSQL); the others are about the SQLite file.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_holysheep.spend.ledger import (
    SCHEMA_VERSION,
    Ledger,
    LedgerClosedError,
    LedgerError,
    SQLiteLedger,
    default_ledger_path,
    open_ledger,
)
from langchain_holysheep.spend.ledger.queued import QueuedLedger
from langchain_holysheep.spend.ledger.schema import to_pico
from langchain_holysheep.spend.ledger.tags import is_internal_tag, user_tags
from langchain_holysheep.spend.records import CallRecord, TokenUsage
from langchain_holysheep.spend.tracking._sinks import RecordSink

from .conftest import T0, make_record, random_records

_text = st.text(st.characters(codec="utf-8"), max_size=20)
_costs = st.one_of(
    st.none(),
    st.decimals(
        allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9
    ),
    st.builds(
        lambda n, e: Decimal(n).scaleb(e),
        st.integers(0, 10**30),
        st.integers(-40, 5),
    ),
)
_records = st.builds(
    CallRecord,
    timestamp=st.floats(0, 4e9, allow_nan=False),
    run_id=_text,
    requested_model=_text,
    served_model=_text,
    outcome=st.sampled_from(("ok", "error", "cancelled")),
    usage=st.builds(
        TokenUsage,
        input=st.integers(0, 2**62),
        output=st.integers(0, 2**62),
        cached=st.integers(0, 2**40),
        reasoning=st.integers(0, 2**40),
    ),
    cost=_costs,
    currency=st.sampled_from(("USD", "CNY")),
    latency_ms=st.one_of(st.none(), st.floats(0, 1e7, allow_nan=False)),
    ttft_ms=st.one_of(st.none(), st.floats(0, 1e7, allow_nan=False)),
    attempt=st.integers(1, 10),
    is_retry=st.booleans(),
    is_fallback=st.booleans(),
    error=st.one_of(st.none(), _text),
    tags=st.lists(_text, max_size=4).map(tuple),
    metadata=st.dictionaries(_text, _text, max_size=3).map(lambda d: tuple(d.items())),
    estimated=st.booleans(),
    key_name=st.one_of(st.none(), _text),
    model_group=st.one_of(st.none(), _text),
)


def _no_nul(rec: CallRecord) -> CallRecord:
    """The record without NUL characters (PostgreSQL text cannot hold them)."""

    def clean(text: str | None) -> str | None:
        return None if text is None else text.replace("\x00", "\ufffd")

    names = ("run_id", "requested_model", "served_model", "error", "key_name")
    return dataclasses.replace(
        rec,
        **{name: clean(getattr(rec, name)) for name in (*names, "model_group")},
        tags=tuple(map(clean, rec.tags)),
        metadata=tuple(dict((clean(k), clean(v)) for k, v in rec.metadata).items()),
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(recs=st.lists(_records, min_size=1, max_size=30))
def test_round_trip_is_exact(
    new_target: Callable[[], str], store: str, recs: list[CallRecord]
) -> None:
    if store == "postgres":
        recs = [_no_nul(r) for r in recs]
    with open_ledger(new_target(), batch_size=7) as ledger:
        ledger.record_many(recs[:3])
        for rec in recs[3:]:
            ledger.record(rec)
        got = list(ledger.query())
    # stable sort: ties keep insert order; LangChain's own tags are not stored
    want = [
        dataclasses.replace(r, tags=user_tags(r.tags))
        for r in sorted(recs, key=lambda r: r.timestamp)
    ]
    assert got == want
    for g, w in zip(got, want, strict=True):
        assert str(g.cost) == str(w.cost)  # same digits and exponent, not just equal
        assert (g.cost is None) == (w.cost is None)


def test_unpriced_stays_none_never_zero(any_ledger: QueuedLedger) -> None:
    any_ledger.record(make_record(cost=None, served_model="mystery-model"))
    any_ledger.record(make_record(cost=Decimal("0")))
    got = list(any_ledger.query())
    assert got[0].cost is None and not got[0].priced
    assert got[1].cost == Decimal(0) and got[1].priced
    with any_ledger.sql_reader() as reader:
        rows = list(reader.execute("SELECT cost, cost_pico FROM calls ORDER BY id", []))
    assert [tuple(r) for r in rows] == [(None, None), ("0", 0)]


def test_sqlite_money_is_text(ledger: SQLiteLedger, ledger_path: Path) -> None:
    ledger.record(make_record(cost=None))
    ledger.record(make_record(cost=Decimal("0")))
    ledger.flush()
    with sqlite3.connect(ledger_path) as conn:
        rows = conn.execute("SELECT typeof(cost), typeof(cost_pico) FROM calls")
        assert rows.fetchall() == [("null", "null"), ("text", "integer")]


def test_money_columns_are_never_real(ledger: SQLiteLedger, ledger_path: Path) -> None:
    ledger.record(
        make_record(cost=Decimal("0.000000000000001"))
    )  # 1e-15: not pico-exact
    ledger.record(make_record(cost=Decimal("12345.678901234567")))
    ledger.flush()
    with sqlite3.connect(ledger_path) as conn:
        types = conn.execute(
            "SELECT typeof(cost), typeof(cost_pico) FROM calls"
        ).fetchall()
    assert types == [("text", "null"), ("text", "integer")]


@pytest.mark.parametrize(
    ("cost", "pico"),
    [
        ("0.0168", 16_800_000_000),
        ("1E-12", 1),
        ("1E-13", None),
        ("0.1000000000000", 100_000_000_000),
        ("-2.5", -2_500_000_000_000),
        ("9223372.036854775807", 2**63 - 1),
        ("9223372.036854775808", None),
        ("NaN", None),
        ("0E-30", 0),
        ("-1E-13", None),
        ("1E+19", None),
        ("1.000000000000000000000", 1_000_000_000_000),
    ],
)
def test_to_pico(cost: str, pico: int | None) -> None:
    assert to_pico(Decimal(cost)) == pico


def test_query_filters(any_ledger: QueuedLedger) -> None:
    ledger = any_ledger
    recs = random_records(300)
    ledger.record_many(recs)
    since, until = T0 + 86_400, T0 + 2 * 86_400
    got = list(ledger.query(since=since, until=until))
    assert got == sorted(
        (r for r in recs if since <= r.timestamp < until), key=lambda r: r.timestamp
    )
    got = list(ledger.query(since=datetime(2025, 1, 2), until=date(2025, 1, 3)))
    assert [r.run_id for r in got] == [
        r.run_id
        for r in sorted(recs, key=lambda r: r.timestamp)
        if since <= r.timestamp < until
    ]
    aware = datetime(2025, 1, 2, tzinfo=timezone.utc)
    assert len(list(ledger.query(since=aware))) == sum(
        r.timestamp >= since for r in recs
    )
    by_model = {r.run_id for r in ledger.query(models=["deepseek-v3.2"])}
    assert by_model == {
        r.run_id for r in recs if "deepseek-v3.2" in (r.served_model, r.requested_model)
    }
    tagged = {r.run_id for r in ledger.query(tags=["batch", "team:chat"])}
    assert tagged == {r.run_id for r in recs if {"batch", "team:chat"} & set(r.tags)}
    assert list(ledger.query(models=[])) == []
    both = list(ledger.query(since=since, models=["gpt-4.1"], tags=["batch"]))
    assert all(r.timestamp >= since and "batch" in r.tags for r in both)


def test_duplicate_tags_round_trip(any_ledger: QueuedLedger) -> None:
    rec = make_record(tags=("a", "a", "b"))
    any_ledger.record(rec)
    assert list(any_ledger.query(tags=["a"])) == [rec]


def test_is_a_record_sink_and_a_ledger(any_ledger: QueuedLedger) -> None:
    assert isinstance(any_ledger, RecordSink)
    assert isinstance(any_ledger, Ledger)
    assert "queued" in repr(any_ledger) and "open" in repr(any_ledger)


def test_closed_ledger_refuses_records(ledger_target: str) -> None:
    ledger = open_ledger(ledger_target)
    ledger.record(make_record())
    ledger.close()
    ledger.close()  # idempotent
    ledger.flush()  # no-op after close
    with pytest.raises(LedgerClosedError, match="closed"):
        ledger.record(make_record())
    with pytest.raises(LedgerClosedError):
        ledger.record_many([make_record()])
    with open_ledger(ledger_target) as again:
        assert isinstance(again, QueuedLedger) and again.count() == 1


def test_default_path_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "deep" / "er" / "spend.sqlite3"
    monkeypatch.setenv("HOLYSHEEP_LEDGER_PATH", str(target))
    assert default_ledger_path() == target
    with SQLiteLedger() as ledger:  # creates the directories
        ledger.record(make_record())
    assert target.is_file()
    monkeypatch.delenv("HOLYSHEEP_LEDGER_PATH")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_ledger_path() == tmp_path / ".holysheep" / "ledger.sqlite3"


def test_schema_is_versioned_and_indexed(
    ledger: SQLiteLedger, ledger_path: Path
) -> None:
    with sqlite3.connect(ledger_path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        indexes = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert {"calls_ts", "calls_model_ts", "call_tags_tag"} <= indexes
    assert mode == "wal"


def test_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not SQLite\n" * 100)
    with pytest.raises(
        LedgerError,
        match=r"not a HolySheep spend ledger.*not an SQLite database.*another path",
    ):
        SQLiteLedger(path)
    assert path.read_text().startswith("hello")  # untouched


def test_refuses_another_applications_database(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(LedgerError, match=r"without a ledger \(users\)"):
        SQLiteLedger(path)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('application', 'something else')")
    with pytest.raises(LedgerError, match="another application"):
        SQLiteLedger(path)


def test_refuses_a_newer_schema(ledger_path: Path) -> None:
    SQLiteLedger(ledger_path).close()
    with sqlite3.connect(ledger_path) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'",
            (str(SCHEMA_VERSION + 1),),
        )
    with pytest.raises(LedgerError) as err:
        SQLiteLedger(ledger_path)
    msg = str(err.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in msg
    assert "pip install -U langchain-holysheep" in msg


def test_refuses_a_directory_and_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="is a directory"):
        SQLiteLedger(tmp_path)
    with pytest.raises(LedgerError):
        SQLiteLedger(tmp_path / "x.sqlite3", batch_size=0)
    with pytest.raises(LedgerError):
        SQLiteLedger(tmp_path / "x.sqlite3", flush_interval=-1)


def test_write_through_and_durable_modes(tmp_path: Path) -> None:
    for kw in (
        {"write_through": True},
        {"durable": True},
        {"write_through": True, "durable": True},
    ):
        path = tmp_path / f"{'-'.join(kw)}.sqlite3"
        with SQLiteLedger(path, **kw) as ledger:
            ledger.record(make_record())
            ledger.record_many([make_record(), make_record()])
            if kw.get("write_through"):  # committed before record() returned
                with sqlite3.connect(path) as conn:
                    assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 3
            assert ledger.count() == 3
            sync = ledger._conn.execute("PRAGMA synchronous").fetchone()[0]
            assert sync == (2 if kw.get("durable") else 1)  # FULL / NORMAL


def test_unstorable_record_is_skipped_not_blocking(
    make_ledger: Callable[..., QueuedLedger],
) -> None:
    ledger = make_ledger()
    good = [make_record() for _ in range(5)]
    bad_text = make_record(run_id="\udc80 lone surrogate")
    bad_int = make_record(usage=TokenUsage(input=2**70))
    bad_time = make_record(timestamp=float("nan"))
    ledger.record_many([good[0], bad_text, good[1], bad_int, good[2], bad_time])
    ledger.record_many(good[3:])
    assert [r.run_id for r in ledger.query()] == [r.run_id for r in good]
    with pytest.raises(LedgerError, match="3 records could not be written"):
        ledger.close()


def test_failing_writes_are_retried_without_loss(any_ledger: QueuedLedger) -> None:
    ledger = any_ledger
    real = ledger._write
    failures = {"n": 3}

    def flaky(batch: list[CallRecord]) -> None:
        if failures["n"]:
            failures["n"] -= 1
            raise sqlite3.OperationalError("disk I/O error")
        real(batch)

    ledger._writer._write = flaky  # type: ignore[union-attr]
    recs = [make_record() for _ in range(50)]
    ledger.record_many(recs)
    ledger.flush(timeout=10)
    assert [r.run_id for r in ledger.query()] == [r.run_id for r in recs]
    assert failures["n"] == 0


def test_flush_reports_a_failing_disk(any_ledger: QueuedLedger) -> None:
    ledger = any_ledger

    def broken(batch: list[CallRecord]) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    ledger._writer._write = broken  # type: ignore[union-attr]
    ledger._writer.patience = 0.3  # type: ignore[union-attr]
    ledger.record(make_record())
    with pytest.raises(LedgerError, match="disk is full"):
        ledger.flush(timeout=5)
    with pytest.raises(LedgerError, match="1 records could not be written"):
        ledger.close()


def test_back_pressure_bounds_the_queue(
    make_ledger: Callable[..., QueuedLedger],
) -> None:
    with make_ledger(max_pending=10, batch_size=3) as ledger:
        for _ in range(500):
            ledger.record(make_record())
        assert ledger._writer._queue.qsize() <= 10  # type: ignore[union-attr]
        assert ledger.count() == 500


def test_interpreter_exit_hook_writes_everything(
    make_ledger: Callable[..., QueuedLedger],
) -> None:
    from langchain_holysheep.spend.ledger import sqlite as sqlite_module

    ledger = make_ledger(flush_interval=60, batch_size=10**6)
    for i in range(1000):
        ledger.record(make_record(run_id=f"exit-{i}"))
    sqlite_module._close_open_ledgers()  # what atexit runs
    assert repr(ledger).endswith("closed)")
    again = make_ledger()
    with again.sql_reader() as reader:
        sql = "SELECT count(*), count(DISTINCT run_id) FROM calls"
        assert [tuple(r) for r in reader.execute(sql, [])] == [(1000, 1000)]


def test_adopts_an_empty_file_or_database(tmp_path: Path) -> None:
    empty_file = tmp_path / "zero.sqlite3"
    empty_file.touch()
    empty_db = tmp_path / "empty.sqlite3"
    with sqlite3.connect(empty_db) as conn:
        conn.execute("PRAGMA user_version = 3")  # a valid header, no tables
    for path in (empty_file, empty_db):
        with SQLiteLedger(path) as ledger:
            ledger.record(make_record())
            assert ledger.count() == 1


def _damage(path: Path) -> None:
    """Garbage over every page after the schema's."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(2 * 4096)
        f.write(b"\xff" * (size - 2 * 4096))


def test_a_damaged_ledger_is_named_with_what_to_do(ledger_path: Path) -> None:
    with SQLiteLedger(ledger_path) as ledger:
        ledger.record_many(random_records(3000))
    _damage(ledger_path)
    damaged = f"The ledger {ledger_path} is damaged"
    with SQLiteLedger(ledger_path, write_through=True) as ledger:
        with pytest.raises(LedgerError, match="the file is damaged") as info:
            ledger.record(make_record())
        assert str(ledger_path) in str(info.value)
        assert f"mv {ledger_path} {ledger_path}.damaged" in str(info.value)
        with pytest.raises(LedgerError, match=damaged):
            ledger.count()
        with pytest.raises(LedgerError, match=damaged):
            list(ledger.query())
    assert not isinstance(info.value, sqlite3.DatabaseError)


@pytest.mark.parametrize(
    ("tag", "internal"),
    [
        ("seq:step:2", True),
        ("map:key:context", True),
        ("graph:step:14", True),
        ("retry:attempt:2", True),
        ("condition:1", True),
        ("branch:3", True),
        ("branch:default", True),
        ("langsmith:hidden", True),
        ("branch:main", False),  # a user's tag that only looks similar
        ("seq:step", False),
        ("team:search", False),
        ("nostream", False),  # set by the user, on purpose
    ],
)
def test_internal_tags(tag: str, internal: bool) -> None:
    assert is_internal_tag(tag) is internal


def test_internal_tags_are_not_stored(any_ledger: QueuedLedger) -> None:
    tags = ("seq:step:2", "team:a", "map:key:x", "team:b")
    any_ledger.record(make_record(tags=tags))
    (rec,) = list(any_ledger.query())
    assert rec.tags == ("team:a", "team:b")
    assert [r.run_id for r in any_ledger.query(tags=["seq:step:2"])] == []


def test_queued_writes_to_a_damaged_ledger_say_what_to_do(ledger_path: Path) -> None:
    with SQLiteLedger(ledger_path) as ledger:
        ledger.record_many(random_records(3000))
    _damage(ledger_path)
    ledger = SQLiteLedger(ledger_path)
    ledger._writer.patience = 0.3  # type: ignore[union-attr]
    ledger.record(make_record())
    hint = f"mv {ledger_path} {ledger_path}.damaged"
    with pytest.raises(LedgerError, match="The file is damaged") as info:
        ledger.flush(timeout=10)
    assert hint in str(info.value)
    with pytest.raises(LedgerError, match="1 records could not be written") as info:
        ledger.close()
    assert "the file is damaged" in str(info.value) and hint in str(info.value)


# The schema of version 1, as the first release wrote it.
_V1_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE calls (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, run_id TEXT NOT NULL,
    requested_model TEXT NOT NULL, served_model TEXT NOT NULL, outcome TEXT NOT NULL,
    input_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, cost TEXT,
    cost_pico INTEGER, currency TEXT NOT NULL, latency_ms REAL, ttft_ms REAL,
    attempt INTEGER NOT NULL, is_retry INTEGER NOT NULL, is_fallback INTEGER NOT NULL,
    error TEXT, tags TEXT NOT NULL, metadata TEXT NOT NULL, user TEXT
);
CREATE INDEX calls_ts ON calls (ts);
CREATE INDEX calls_model_ts ON calls (served_model, ts);
CREATE TABLE call_tags (
    call_id INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (call_id, tag)
) WITHOUT ROWID;
CREATE INDEX call_tags_tag ON call_tags (tag);
INSERT INTO meta VALUES ('application', 'langchain-holysheep spend ledger'),
    ('schema_version', '1');
INSERT INTO calls VALUES (1, 1735689600.5, 'old-run', 'gpt-4.1', 'gpt-4.1', 'ok',
    1200, 200, 300, 50, '0.0168', 16800000000, 'USD', 812.5, NULL, 1, 0, 0, NULL,
    '["team:a"]', '{"user":"alice"}', 'alice');
INSERT INTO call_tags VALUES (1, 'team:a');
"""


def _v1_ledger(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(_V1_DDL)


def test_a_version_1_ledger_is_migrated_and_keeps_its_records(tmp_path: Path) -> None:
    from langchain_holysheep.spend.report import ledger_report

    old = CallRecord(
        timestamp=1735689600.5,
        run_id="old-run",
        requested_model="gpt-4.1",
        served_model="gpt-4.1",
        outcome="ok",
        usage=TokenUsage(input=1200, output=300, cached=200, reasoning=50),
        cost=Decimal("0.0168"),
        latency_ms=812.5,
        tags=("team:a",),
        metadata=(("user", "alice"),),
    )
    path = tmp_path / "v1.sqlite3"
    _v1_ledger(path)
    new = make_record(
        timestamp=T0 + 10, key_name="team-key", model_group="fast", estimated=True
    )
    with SQLiteLedger(path) as ledger:
        ledger.record(new)
        assert list(ledger.query()) == [old, new]
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(SCHEMA_VERSION) == "2"
    report = ledger_report(path, by="key")
    assert [(r.key, r.requests) for r in report] == [(("team-key",), 1), ((None,), 1)]
    # a report on an old file upgrades it too (readers need the new columns)
    other = tmp_path / "v1-report.sqlite3"
    _v1_ledger(other)
    assert ledger_report(other, by="group").total.cost == Decimal("0.0168")
