"""The SQLite ledger's schema: DDL, version checks, row encoding and filters.

Money is stored twice, both exact: `cost` is the `Decimal` as TEXT (the record of
truth, `None` -> NULL for an unpriced call) and `cost_pico` is the same amount as
an INTEGER number of 10**-12 currency units, so reports can `SUM()` it in SQL
without rounding. `cost_pico` is NULL when the cost is unpriced or cannot be
written exactly at that scale (finer than 1e-12, or beyond int64); reports then add
those few rows from `cost` in Python. No column is REAL except times and latencies.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from langchain_holysheep.spend.ledger.base import LedgerError
from langchain_holysheep.spend.ledger.calls_table import (
    COLUMNS,
    SQLITE_TYPES,
    create_calls,
)
from langchain_holysheep.spend.ledger.tags import user_tags
from langchain_holysheep.spend.records import CallRecord, TokenUsage

__all__ = [
    "APPLICATION",
    "APPLICATION_ID",
    "INSERT_CALL",
    "INSERT_TAG",
    "PICO",
    "SCHEMA_VERSION",
    "SELECT_CALLS",
    "USER_METADATA_KEYS",
    "connect",
    "decode",
    "encode",
    "check_schema",
    "create_schema",
    "damaged_hint",
    "is_damaged",
    "ledger_read_error",
    "meta_rows",
    "migrate",
    "open_reader",
    "to_pico",
]

SCHEMA_VERSION = 2  # 2: estimated, key_name, model_group
APPLICATION = "langchain-holysheep spend ledger"
APPLICATION_ID = 0x48534C47  # "HSLG", in the SQLite file header
PICO = 10**12  # cost_pico = cost * PICO
USER_METADATA_KEYS = ("user", "user_id")  # metadata keys copied to the user column
_INT64 = (-(2**63), 2**63 - 1)

_DDL = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
{create_calls("INTEGER PRIMARY KEY", SQLITE_TYPES)};
CREATE INDEX calls_ts ON calls (ts);
CREATE INDEX calls_model_ts ON calls (served_model, ts);
CREATE TABLE call_tags (
    call_id INTEGER NOT NULL,
    tag     TEXT    NOT NULL,
    PRIMARY KEY (call_id, tag)
) WITHOUT ROWID;
CREATE INDEX call_tags_tag ON call_tags (tag);
"""

_COLUMNS = ", ".join(("id", *COLUMNS))
INSERT_CALL = (
    f"INSERT INTO calls ({_COLUMNS}) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"
)
INSERT_TAG = "INSERT OR IGNORE INTO call_tags (call_id, tag) VALUES (?, ?)"
SELECT_CALLS = f"SELECT {_COLUMNS} FROM calls c"


def connect(path: Path, *, timeout: float = 30.0) -> sqlite3.Connection:
    """Open an SQLite connection in autocommit mode (transactions are explicit)."""
    return sqlite3.connect(
        str(path), timeout=timeout, isolation_level=None, check_same_thread=False
    )


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only (`query_only`) connection to an existing, valid ledger."""
    if not path.is_file():
        raise LedgerError(
            f"No HolySheep spend ledger at {path}. Record some calls first "
            "(SQLiteLedger(path=...)) or pass the path of an existing ledger."
        )
    conn = connect(path)
    try:
        if check_schema(conn, path):
            raise _refuse(path, "it is empty")
        conn.execute("PRAGMA query_only = 1")
    except BaseException:
        conn.close()
        raise
    return conn


def _refuse(path: Path, why: str) -> LedgerError:
    return LedgerError(
        f"{path} is not a HolySheep spend ledger: {why}. Use another path "
        "(SQLiteLedger(path=...) or $HOLYSHEEP_LEDGER_PATH) or move this file away."
    )


def is_damaged(exc: BaseException) -> bool:
    """Whether an SQLite error means the file itself is corrupt."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return True
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def damaged_hint(path: Path | str) -> str:
    """What to do with a corrupt ledger file."""
    return (
        f"Move it away (e.g. mv {path} {path}.damaged): a new ledger starts with "
        "the next recorded call. The sqlite3 shell's .recover command may salvage "
        "the readable rows from the moved file."
    )


def ledger_read_error(path: Path | str, exc: sqlite3.Error) -> LedgerError:
    """A `LedgerError` naming the ledger file for an SQLite error while reading."""
    if is_damaged(exc):
        return LedgerError(
            f"The ledger {path} is damaged ({exc}); its records cannot be read. "
            + damaged_hint(path)
        )
    return LedgerError(
        f"Cannot read the ledger {path} ({exc}). Check that the file is readable "
        "and on a local disk, then try again."
    )


def check_schema(conn: sqlite3.Connection, path: Path) -> bool:
    """Check that `conn` holds a ledger this version can use.

    Returns:
        True when the database is empty (no tables yet): `create_schema` it.

    Raises:
        LedgerError: the file is not an SQLite database, is another application's
            database, or was written by a newer version of the package.
    """
    try:
        tables = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    except sqlite3.DatabaseError as e:
        raise _refuse(path, f"it is not an SQLite database ({e})") from e
    if not tables:
        return True
    if "meta" not in tables:
        what = ", ".join(sorted(tables))
        raise _refuse(path, f"it is an SQLite database without a ledger ({what})")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("application") != APPLICATION:
        raise _refuse(path, "its meta table belongs to another application")
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError as e:
        raise _refuse(path, "its schema version is unreadable") from e
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"{path} is a HolySheep spend ledger with schema version {version}, "
            f"written by a newer langchain-holysheep; this version reads schema "
            f"version {SCHEMA_VERSION} at most. Upgrade the package "
            "(pip install -U langchain-holysheep) or use another ledger path."
        )
    if version < SCHEMA_VERSION:
        migrate(conn, path, version)
    return False


# The statements that bring schema version N up to N + 1.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE calls ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE calls ADD COLUMN key_name TEXT",
        "ALTER TABLE calls ADD COLUMN model_group TEXT",
    ),
}


def migrate(conn: sqlite3.Connection, path: Path, version: int) -> None:
    """Upgrade a ledger of an older schema `version` in one transaction.

    Records keep every value; the new columns start empty (`estimated` false).
    Several processes may open the old file at once: the first one upgrades it.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        raise LedgerError(
            f"{path} is a HolySheep spend ledger with schema version {version}; "
            f"this version upgrades it to {SCHEMA_VERSION} on opening, which needs "
            f"write access ({e}). Open it once where it is writable."
        ) from e
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        current = int(row.fetchone()[0])  # another process may have upgraded it
        while current < SCHEMA_VERSION:
            for stmt in _MIGRATIONS[current]:
                conn.execute(stmt)
            current += 1
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(current),)
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def meta_rows(version: int) -> list[tuple[str, str]]:
    """The `meta` table of a new ledger of schema `version` (any store)."""
    return [
        ("application", APPLICATION),
        ("schema_version", str(version)),
        ("created_at", str(time.time())),
        ("money", "cost: Decimal TEXT; cost_pico: cost * 10**12"),
    ]


def create_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the ledger's tables in an empty database (safe against a race)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            for stmt in _DDL.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)", meta_rows(SCHEMA_VERSION)
            )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    check_schema(conn, path)  # another process may have created something else


def to_pico(cost: Decimal) -> int | None:
    """`cost * 10**12` as an int, or None if that is not exact or not int64."""
    if not cost.is_finite():
        return None
    if not cost:
        return 0
    if not -13 < cost.adjusted() < 19:  # below 1e-12, or beyond int64 anyway
        return None
    num, den = cost.as_integer_ratio()
    value, rest = divmod(num * PICO, den)
    if rest or not _INT64[0] <= value <= _INT64[1]:
        return None
    return value


def encode(rec: CallRecord) -> tuple[Any, ...]:
    """The `calls` row of one record, without its id (types are coerced)."""
    cost = rec.cost
    if cost is None or not cost.is_finite():  # a NaN cost is no price at all
        cost_text, pico = None, None
    else:
        cost_text, pico = str(cost), to_pico(cost)
    meta_json, user = _metadata_json(rec.metadata) if rec.metadata else ("{}", None)
    tags_json = _tags_json(rec.tags) if rec.tags else "[]"
    u = rec.usage
    return (
        float(rec.timestamp), str(rec.run_id), str(rec.requested_model),
        str(rec.served_model), str(rec.outcome), int(u.input), int(u.cached),
        int(u.output), int(u.reasoning), cost_text, pico, str(rec.currency),
        _opt_float(rec.latency_ms), _opt_float(rec.ttft_ms), int(rec.attempt),
        int(rec.is_retry), int(rec.is_fallback),
        None if rec.error is None else str(rec.error), tags_json, meta_json, user,
        int(rec.estimated), _opt_str(rec.key_name), _opt_str(rec.model_group),
    )  # fmt: skip


# The records of one process repeat a few tag and metadata tuples: cache their JSON.
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_JSON_CACHE: dict[Any, Any] = {}
_JSON_CACHE_SIZE = 4096


def _metadata_json(metadata: tuple[tuple[str, str], ...]) -> tuple[str, str | None]:
    try:
        return _JSON_CACHE[metadata]  # type: ignore[no-any-return]
    except (KeyError, TypeError):  # TypeError: unhashable, not cached
        pass
    meta = {str(k): str(v) for k, v in metadata}
    user = next((meta[k] for k in USER_METADATA_KEYS if k in meta), None)
    result = (_to_json(meta), user)
    _remember(metadata, result)
    return result


def _tags_json(tags: tuple[str, ...]) -> str:
    key = ("tags", tags)
    try:
        return _JSON_CACHE[key]  # type: ignore[no-any-return]
    except (KeyError, TypeError):
        pass
    result = _to_json(list(user_tags(tags)))  # without seq:step:N & co
    _remember(key, result)
    return result


def _remember(key: Any, value: Any) -> None:
    if len(_JSON_CACHE) >= _JSON_CACHE_SIZE:
        _JSON_CACHE.clear()
    with contextlib.suppress(TypeError):
        _JSON_CACHE[key] = value


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _opt_str(value: str | None) -> str | None:
    return None if value is None else str(value)


def decode(row: Sequence[Any]) -> CallRecord:
    """The record of one `SELECT_CALLS` row (tags as JSON text or a list)."""
    tags = row[19]
    return CallRecord(
        timestamp=row[1],
        run_id=row[2],
        requested_model=row[3],
        served_model=row[4],
        outcome=row[5],
        usage=TokenUsage(input=row[6], cached=row[7], output=row[8], reasoning=row[9]),
        cost=None if row[10] is None else Decimal(row[10]),
        currency=row[12],
        latency_ms=row[13],
        ttft_ms=row[14],
        attempt=row[15],
        is_retry=bool(row[16]),
        is_fallback=bool(row[17]),
        error=row[18],
        tags=tuple(json.loads(tags) if isinstance(tags, str) else tags),
        metadata=tuple(json.loads(row[20]).items()),
        estimated=bool(row[22]),
        key_name=row[23],
        model_group=row[24],
    )
