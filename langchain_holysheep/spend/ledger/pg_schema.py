"""The PostgreSQL ledger's schema: URLs, connections, DDL and row encoding.

The ledger lives in its own schema (`holysheep` unless the URL says
`?schema=...`): tables `meta` (key/value, with the schema version) and `calls`,
one row per attempt. Money is stored as in the SQLite ledger, both exact: `cost`
is the `Decimal`'s text (NULL = unpriced) and `cost_pico` the same amount in
10**-12 units as a BIGINT (NULL when not exact at that scale). Tags are a
`text[]` column with a GIN index; metadata is `json` (key order kept).

psycopg is imported only when a PostgreSQL ledger is opened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from langchain_holysheep.spend.ledger.base import LedgerError, redact_url
from langchain_holysheep.spend.ledger.calls_table import (
    COLUMNS,
    POSTGRES_TYPES,
    create_calls,
    quoted_columns,
)
from langchain_holysheep.spend.ledger.schema import APPLICATION, encode, meta_rows
from langchain_holysheep.spend.ledger.tags import user_tags
from langchain_holysheep.spend.records import CallRecord

__all__ = [
    "DEFAULT_SCHEMA",
    "INSERT_CALL",
    "PG_SCHEMA_VERSION",
    "PgTarget",
    "check_ledger",
    "connect",
    "encode_row",
    "import_psycopg",
]

PG_SCHEMA_VERSION = 1
DEFAULT_SCHEMA = "holysheep"
_LOCK_KEY = 0x48534C47  # "HSLG": advisory lock class of ledger schema changes
_INT64 = (-(2**63), 2**63 - 1)
_RESERVED = ("user",)  # column names PostgreSQL reserves
_INSTALL = "pip install 'langchain-holysheep[postgres]'"

_DDL = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    create_calls(
        "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", POSTGRES_TYPES, _RESERVED
    ),
    "CREATE INDEX calls_ts ON calls (ts)",
    "CREATE INDEX calls_model_ts ON calls (served_model, ts)",
    "CREATE INDEX calls_tags ON calls USING GIN (tags)",
)
_COLUMNS = ", ".join(quoted_columns(_RESERVED))
INSERT_CALL = (
    f"INSERT INTO calls ({_COLUMNS}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)


def import_psycopg() -> Any:
    """The psycopg module, or a `LedgerError` saying how to install it."""
    try:
        import psycopg
    except ImportError as e:
        raise LedgerError(f"The PostgreSQL ledger needs psycopg 3: {_INSTALL}.") from e
    return psycopg


@dataclass(frozen=True)
class PgTarget:
    """Where a PostgreSQL ledger lives.

    Attributes:
        conninfo: the libpq URL without `schema=` (it may hold a password).
        schema: the PostgreSQL schema of the ledger's tables.
        shown: the URL with any password replaced by `***`, for messages.
    """

    conninfo: SecretStr
    schema: str
    shown: str

    @classmethod
    def parse(cls, url: str, schema: str | None = None) -> PgTarget:
        """Split `?schema=` off a `postgresql://` URL and check the schema name."""
        shown = redact_url(url)
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        given = [v for k, v in query if k == "schema"]
        rest = urlencode([(k, v) for k, v in query if k != "schema"])
        name = schema or (given[-1] if given else DEFAULT_SCHEMA)
        if not name.isidentifier() or not name.isascii() or name != name.lower():
            raise LedgerError(
                f"{name!r} is not a usable schema name for the ledger {shown}: use "
                "lowercase letters, digits and '_' (e.g. ?schema=holysheep)."
            )
        conninfo = urlunsplit(parts._replace(query=rest))
        return cls(SecretStr(conninfo), name, redact_url(conninfo))

    def scrub(self, text: object) -> str:
        """`text` with the URL's password (if any) replaced by `***`."""
        out = str(text)
        secret = self.conninfo.get_secret_value()
        password = urlsplit(secret).password
        for value in (password, *(v for k, v in _query(secret) if k == "password")):
            if value:
                out = out.replace(value, "***")
        return out

    def __str__(self) -> str:
        return f"{self.shown} (schema {self.schema})"


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def connect(
    target: PgTarget,
    *,
    timeout: float,
    read_only: bool = False,
    durable: bool = True,
) -> Any:
    """An autocommit connection whose `search_path` is the ledger's schema.

    Settings travel in the startup packet (no extra round trip) and survive a
    reconnect: `synchronous_commit=off` unless `durable`, and read-only
    transactions for readers.
    """
    psycopg = import_psycopg()
    options = f"-c search_path={target.schema}"
    if not durable:
        options += " -c synchronous_commit=off"
    if read_only:
        options += " -c default_transaction_read_only=on"
    try:
        params = psycopg.conninfo.conninfo_to_dict(target.conninfo.get_secret_value())
        if params.get("options"):
            options = f"{params['options']} {options}"
        params.update(
            options=options,
            connect_timeout=max(1, math.ceil(timeout)),
            application_name=params.get("application_name", "langchain-holysheep"),
        )
        return psycopg.connect(**params, autocommit=True)
    except psycopg.Error as e:
        raise LedgerError(
            f"Cannot connect to the PostgreSQL ledger {target.shown} "
            f"({target.scrub(e).strip()}). Check that the server is running "
            "(pg_isready -h HOST -p PORT) and that the URL's user, host, port and "
            "database are right (postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME)."
        ) from None  # the driver's exception may carry the connection string


def check_ledger(conn: Any, target: PgTarget, *, create: bool) -> None:
    """Check (and with `create`, make) the ledger's tables, under an advisory lock.

    Several processes may start at once: the lock (per schema) lets one create
    the schema while the others wait, then find it ready.

    Raises:
        LedgerError: the schema holds other tables, belongs to another
            application, was written by a newer version, or (without `create`)
            does not exist yet.
    """
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_KEY, target.schema)
        )
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s",
                (target.schema,),
            )
        }
        if not tables and not create:
            raise LedgerError(
                f"No HolySheep spend ledger in {target}. Record some calls first "
                "(PostgresLedger(url)) or check the URL and its ?schema=."
            )
        if not tables:
            _create(conn, target.schema)
        else:
            _check_meta(conn, target, tables)


def _create(conn: Any, schema: str) -> None:
    exists = conn.execute(
        "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
    ).fetchone()
    if not exists:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    for stmt in _DDL:
        conn.execute(stmt)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO meta (key, value) VALUES (%s, %s)",
            meta_rows(PG_SCHEMA_VERSION),
        )


def _check_meta(conn: Any, target: PgTarget, tables: set[str]) -> None:
    def refuse(why: str) -> LedgerError:
        return LedgerError(
            f"{target} is not a HolySheep spend ledger: {why}. Use another "
            "schema (?schema=... in the URL) or another database."
        )

    if "meta" not in tables or "calls" not in tables:
        raise refuse(f"the schema holds other tables ({', '.join(sorted(tables))})")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("application") != APPLICATION:
        raise refuse("its meta table belongs to another application")
    version = meta.get("schema_version", "")
    if not version.isdigit():
        raise refuse("its schema version is unreadable")
    if int(version) > PG_SCHEMA_VERSION:
        raise LedgerError(
            f"{target} is a HolySheep spend ledger with schema version {version}, "
            "written by a newer langchain-holysheep; this version reads schema "
            f"version {PG_SCHEMA_VERSION} at most. Upgrade the package "
            "(pip install -U langchain-holysheep) or use another schema."
        )


def encode_row(rec: CallRecord) -> Sequence[Any]:
    """The `INSERT_CALL` parameters of one record, checked so no row fails.

    The values are the SQLite ledger's (`encode`), with booleans, a `text[]` of
    the user tags, and what PostgreSQL cannot store refused here: a NaN time,
    a NUL character, text that is not Unicode, an integer beyond BIGINT.

    Raises:
        ValueError: the record cannot be stored (it is skipped).
    """
    row = list(encode(rec))
    if math.isnan(row[0]):
        raise ValueError("the timestamp is NaN")
    for i in (12, 13):  # latency_ms, ttft_ms: NaN means unknown
        if row[i] is not None and math.isnan(row[i]):
            row[i] = None
    for i in (15, 16, 21):  # is_retry, is_fallback, estimated
        row[i] = bool(row[i])
    tags = list(user_tags(rec.tags))
    row[18] = tags
    text = "\x01".join(v for v in (*row, *tags) if isinstance(v, str))
    if "\x00" in text or any("\x00" in str(x) for kv in rec.metadata for x in kv):
        raise ValueError("PostgreSQL text cannot hold a NUL character")
    text.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError
    for i in (5, 6, 7, 8, 10, 14):
        if row[i] is not None and not _INT64[0] <= row[i] <= _INT64[1]:
            raise ValueError("an integer does not fit in a BIGINT")
    return row
