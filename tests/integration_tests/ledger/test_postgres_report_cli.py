"""`holysheep report --ledger postgresql://...` prints what it prints for SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from langchain_holysheep.cli import app
from langchain_holysheep.spend.ledger import PostgresLedger, SQLiteLedger
from tests._postgres import Schemas
from tests.unit_tests.spend_ledger.conftest import random_records

RECORDS = random_records(2_000, seed=5)


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env or {})


@pytest.fixture
def both(tmp_path: Path, pg_schemas: Schemas) -> tuple[str, str]:
    """The same records in an SQLite file and a PostgreSQL schema."""
    path, url = tmp_path / "ledger.sqlite3", pg_schemas.new_url()
    with SQLiteLedger(path) as lite, PostgresLedger(url) as pg:
        lite.record_many(RECORDS)
        pg.record_many(RECORDS)
    return str(path), url


@pytest.mark.parametrize(
    "args",
    [
        ["--by", "day"],
        ["--by", "model", "-f", "json"],
        ["--by", "tag", "-f", "csv"],
        ["--by", "hour", "--by", "user", "-f", "csv"],
        ["--by", "key", "--by", "group", "--model", "gpt-4.1"],
        ["--by", "month", "--by", "meta:user", "--tag", "batch", "-f", "json"],
        ["--by", "outcome", "--since", "2025-01-02", "--until", "2025-01-02"],
    ],
)
def test_report_output_is_the_same_for_both_stores(
    both: tuple[str, str], args: list[str]
) -> None:
    path, url = both
    lite = cli("report", "--ledger", path, *args)
    pg = cli("report", "--ledger", url, *args)
    assert lite.exit_code == 0, lite.output
    assert pg.exit_code == 0, pg.output
    assert pg.stdout == lite.stdout
    assert "requests" in pg.stdout


def test_the_env_variable_may_name_a_postgresql_ledger(both: tuple[str, str]) -> None:
    path, url = both
    by_env = cli("report", "-f", "json", env={"HOLYSHEEP_LEDGER_PATH": url})
    assert by_env.exit_code == 0, by_env.output
    assert by_env.stdout == cli("report", "--ledger", path, "-f", "json").stdout


def test_report_errors_say_what_to_do_and_hide_the_password(
    postgres_url: str, socket_enabled: None
) -> None:
    down = cli("report", "--ledger", "postgresql://me:s3cret-pw@127.0.0.1:1/test")
    assert down.exit_code == 1
    assert "pg_isready" in down.stderr and "s3cret-pw" not in down.output
    other = cli("report", "--ledger", "mysql://me:s3cret-pw@db/spend")
    assert other.exit_code == 1
    assert "postgresql://" in other.stderr and "s3cret-pw" not in other.output
