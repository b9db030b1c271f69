"""`open_ledger()` and `open_reader()`: a ledger from a path or a URL."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any

from langchain_holysheep.spend.ledger.base import (
    Ledger,
    default_ledger_target,
    ledger_target,
)
from langchain_holysheep.spend.ledger.dialect import SQLReader

__all__ = ["open_ledger", "open_reader"]


def open_ledger(target: str | os.PathLike[str] | None = None, **options: Any) -> Ledger:
    """Open the ledger at `target` for recording: SQLite or PostgreSQL.

    Example:
        ```python
        from langchain_holysheep.spend.ledger import open_ledger

        ledger = open_ledger("postgresql://app@db:5432/spend")  # PostgresLedger
        ledger = open_ledger("~/spend.sqlite3")                  # SQLiteLedger
        ledger = open_ledger()  # $HOLYSHEEP_LEDGER_PATH, else the default file
        ```

    Args:
        target: a file path or `sqlite:///path` (an `SQLiteLedger`), or a
            `postgresql://` / `postgres://` URL (a `PostgresLedger`). Defaults
            to `$HOLYSHEEP_LEDGER_PATH`, else `~/.holysheep/ledger.sqlite3`.
        **options: passed to the ledger's constructor (`batch_size`,
            `durable`, `write_through`, ...).

    Raises:
        LedgerError: any other kind of URL (the message lists what is
            accepted), or the ledger cannot be opened.
    """
    where = default_ledger_target() if target is None else ledger_target(target)
    if isinstance(where, str):
        from langchain_holysheep.spend.ledger.postgres import PostgresLedger

        return PostgresLedger(where, **options)
    from langchain_holysheep.spend.ledger.sqlite import SQLiteLedger

    return SQLiteLedger(where, **options)


def open_reader(
    target: str | os.PathLike[str] | None = None,
) -> AbstractContextManager[SQLReader]:
    """A read-only reader of an existing ledger at a path or URL (for reports).

    Nothing is created: a missing ledger is a `LedgerError`.
    """
    where = default_ledger_target() if target is None else ledger_target(target)
    if isinstance(where, str):
        from langchain_holysheep.spend.ledger.pg_schema import PgTarget
        from langchain_holysheep.spend.ledger.postgres import postgres_reader

        return postgres_reader(PgTarget.parse(where))
    from langchain_holysheep.spend.ledger.sqlite import sqlite_reader

    return sqlite_reader(where)
