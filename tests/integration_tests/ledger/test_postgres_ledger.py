"""PostgresLedger against the real server: fields, refusals, outages, secrets."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from langchain_holysheep.spend.ledger import (
    PG_SCHEMA_VERSION,
    LedgerError,
    PostgresLedger,
    SQLiteLedger,
    default_ledger_path,
    open_ledger,
)
from langchain_holysheep.spend.records import CallRecord, TokenUsage
from tests._postgres import Schemas

FULL = CallRecord(
    timestamp=1_735_689_600.123456789,
    run_id="run-full",
    requested_model="smart",
    served_model="deepseek-v3.2",
    outcome="error",
    usage=TokenUsage(input=2**62, output=7, cached=3, reasoning=2),
    cost=Decimal("0.100000000000000000001"),  # finer than 1e-12: text only
    currency="CNY",
    latency_ms=812.25,
    ttft_ms=0.5,
    attempt=3,
    is_retry=True,
    is_fallback=True,
    error="RateLimitError(429)",
    tags=("team:search", "batch", "team:search"),
    metadata=(("user", "alice"), ("thread_id", "t-1"), ("ä", "✓")),
    estimated=True,
    key_name="alice-laptop",
    model_group="smart",
)


def _raw(url: str, sql: str) -> list[tuple[Any, ...]]:
    schema = url.rsplit("schema=", 1)[1]
    base = url.split("?", 1)[0]
    with psycopg.connect(base, options=f"-c search_path={schema}") as conn:
        cur = conn.execute(sql)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def test_every_field_round_trips_exactly(pg_ledger_url: str) -> None:
    priced = CallRecord(1.0, "r-priced", "m", "m", "ok", cost=Decimal("0.10"))
    unpriced = CallRecord(2.0, "r-unpriced", "x", "x", "ok", cost=None)
    with PostgresLedger(pg_ledger_url) as ledger:
        ledger.record_many([FULL, priced, unpriced])
        got = {r.run_id: r for r in ledger.query()}
    assert got == {"run-full": FULL, "r-priced": priced, "r-unpriced": unpriced}
    assert str(got["r-priced"].cost) == "0.10"  # digits kept, not just the value
    assert got["r-unpriced"].cost is None and not got["r-unpriced"].priced
    rows = _raw(
        pg_ledger_url,
        "SELECT run_id, cost, cost_pico, tags, key_name FROM calls ORDER BY id",
    )
    assert rows == [
        ("run-full", "0.100000000000000000001", None,
         ["team:search", "batch", "team:search"], "alice-laptop"),
        ("r-priced", "0.10", 100_000_000_000, [], None),
        ("r-unpriced", None, None, [], None),
    ]  # fmt: skip


def test_text_postgresql_cannot_hold_is_skipped_and_counted(
    pg_ledger_url: str,
) -> None:
    ledger = PostgresLedger(pg_ledger_url)
    good = CallRecord(1.0, "good", "m", "m", "ok", cost=Decimal(1))
    ledger.record_many(
        [
            CallRecord(2.0, "nul\x00", "m", "m", "ok"),
            good,
            CallRecord(3.0, "meta", "m", "m", "ok", metadata=(("k", "v\x00"),)),
            CallRecord(4.0, "tag", "m", "m", "ok", tags=("a\x00",)),
        ]
    )
    assert list(ledger.query()) == [good]
    with pytest.raises(LedgerError, match="3 records could not be written"):
        ledger.close()


def test_a_row_the_server_refuses_is_skipped_the_batch_kept(
    pg_ledger_url: str,
) -> None:
    PostgresLedger(pg_ledger_url).close()
    _raw(pg_ledger_url, "ALTER TABLE calls ADD CHECK (run_id <> 'refused')")
    ledger = PostgresLedger(pg_ledger_url, batch_size=100)
    recs = [CallRecord(float(i), f"r{i}", "m", "m", "ok") for i in range(5)]
    ledger.record_many(
        [*recs[:2], CallRecord(9.0, "refused", "m", "m", "ok"), *recs[2:]]
    )
    assert list(ledger.query()) == recs
    with pytest.raises(LedgerError, match="1 records could not be written"):
        ledger.close()


def test_many_ledgers_open_one_new_schema_at_once(pg_ledger_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        ledgers = list(pool.map(lambda _: PostgresLedger(pg_ledger_url), range(8)))
    for i, ledger in enumerate(ledgers):
        ledger.record(CallRecord(float(i), f"r{i}", "m", "m", "ok"))
        ledger.close()
    with PostgresLedger(pg_ledger_url) as ledger:
        assert ledger.count() == 8
    meta = dict(_raw(pg_ledger_url, "SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(PG_SCHEMA_VERSION)


def test_a_lost_connection_is_retried_on_a_new_one(pg_ledger_url: str) -> None:
    with PostgresLedger(pg_ledger_url) as ledger:
        ledger.record(CallRecord(1.0, "before", "m", "m", "ok"))
        ledger.flush()
        pid = ledger._conn.info.backend_pid
        _raw(pg_ledger_url, f"SELECT pg_terminate_backend({pid})")
        ledger.record_many(CallRecord(2.0 + i, f"after-{i}", "m", "m", "ok")
                           for i in range(100))  # fmt: skip
        ledger.flush(timeout=30)
        assert ledger._conn.info.backend_pid != pid
        ids = [r.run_id for r in ledger.query()]
    assert ids == ["before"] + [f"after-{i}" for i in range(100)]


@pytest.mark.parametrize(("durable", "setting"), [(False, "off"), (True, "on")])
def test_durable_sets_synchronous_commit(
    pg_ledger_url: str, durable: bool, setting: str
) -> None:
    with PostgresLedger(pg_ledger_url, durable=durable, write_through=True) as led:
        led.record(CallRecord(1.0, "r", "m", "m", "ok"))
        assert _raw(pg_ledger_url, "SELECT count(*) FROM calls") == [(1,)]
        show = led._conn.execute("SHOW synchronous_commit").fetchone()
        assert show == (setting,)


# -- refusals and secrets ----------------------------------------------------


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _assert_secret_hidden(exc: BaseException, secret: str) -> None:
    for e in _chain(exc):
        assert secret not in str(e) and secret not in repr(e.args)


def test_an_unreachable_server_says_what_to_do_without_the_password(
    postgres_url: str, socket_enabled: None
) -> None:
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:1/test"
    with pytest.raises(LedgerError, match="pg_isready") as info:
        PostgresLedger(url)
    assert "postgresql://postgres:***@127.0.0.1:1/test" in str(info.value)
    _assert_secret_hidden(info.value, "s3cret-pw")
    with pytest.raises(LedgerError) as info:
        PostgresLedger(f"{url}?password=s3cret-pw")
    _assert_secret_hidden(info.value, "s3cret-pw")


def test_other_urls_are_refused_saying_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(LedgerError) as info:
        open_ledger("mysql://root:s3cret-pw@db/spend")
    msg = str(info.value)
    assert "mysql:// is not a ledger store" in msg
    assert "sqlite:///" in msg and "postgresql://" in msg
    _assert_secret_hidden(info.value, "s3cret-pw")
    with pytest.raises(LedgerError, match="names no file"):
        open_ledger("sqlite://")
    with pytest.raises(LedgerError, match="schema name"):
        PostgresLedger("postgresql://u@127.0.0.1/test?schema=Bad-Name")
    with open_ledger(f"sqlite:///{tmp_path}/a.sqlite3") as ledger:
        assert isinstance(ledger, SQLiteLedger)
        assert ledger.path == tmp_path / "a.sqlite3"


def test_the_env_variable_may_hold_a_url(
    pg_ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOLYSHEEP_LEDGER_PATH", pg_ledger_url)
    with open_ledger() as ledger:
        assert isinstance(ledger, PostgresLedger)
    with PostgresLedger() as ledger:
        assert ledger.schema == pg_ledger_url.rsplit("=", 1)[1]
    with pytest.raises(LedgerError, match="holds a PostgreSQL URL"):
        default_ledger_path()
    monkeypatch.setenv("HOLYSHEEP_LEDGER_PATH", "/tmp/x.sqlite3")
    with pytest.raises(LedgerError, match="needs a postgresql:// URL"):
        PostgresLedger()


def test_a_schema_of_another_application_is_refused(pg_ledger_url: str) -> None:
    schema = pg_ledger_url.rsplit("=", 1)[1]
    _raw(
        pg_ledger_url, f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.orders (id int)"
    )
    with pytest.raises(LedgerError, match=r"holds other tables \(orders\)"):
        PostgresLedger(pg_ledger_url)


def test_a_newer_schema_is_refused(pg_ledger_url: str) -> None:
    PostgresLedger(pg_ledger_url).close()
    _raw(pg_ledger_url, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(LedgerError, match=r"schema version 99.*pip install -U"):
        PostgresLedger(pg_ledger_url)


def test_reading_a_missing_ledger_creates_nothing(pg_schemas: Schemas) -> None:
    from langchain_holysheep.spend.report import ledger_report

    url = pg_schemas.new_url()
    with pytest.raises(LedgerError, match="No HolySheep spend ledger"):
        ledger_report(url)
    schema = url.rsplit("=", 1)[1]
    found = _raw(url, f"SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'")
    assert found == [(0,)]
