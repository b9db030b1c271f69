"""`PostgresLedger`: one spend ledger shared by many processes and machines."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from langchain_holysheep.spend.ledger.base import (
    LedgerError,
    default_ledger_target,
)
from langchain_holysheep.spend.ledger.dialect import POSTGRES, SQLReader
from langchain_holysheep.spend.ledger.pg_schema import (
    INSERT_CALL,
    PgTarget,
    check_ledger,
    connect,
    encode_row,
    import_psycopg,
)
from langchain_holysheep.spend.ledger.queued import QueuedLedger
from langchain_holysheep.spend.ledger.schema import decode
from langchain_holysheep.spend.records import CallRecord

__all__ = ["PostgresLedger", "postgres_reader"]


class PostgresLedger(QueuedLedger):
    """The spend ledger in PostgreSQL: one row per attempt, money exact, shared.

    Several processes (e.g. `holysheep serve` instances on several machines)
    write into one ledger; reports read it like the SQLite one
    (`ledger_report(ledger)`, `holysheep report --ledger postgresql://...`).
    It behaves as `SQLiteLedger` does: `record()` queues the record, one
    writer thread commits batches, and a record that cannot be stored is
    skipped and counted, never blocking the others.

    - A batch is one transaction sent in one round trip (pipeline mode), so a
      killed process loses at most its uncommitted batch, never half a record.
    - `durable=False` (default) commits with `synchronous_commit=off`: a
      committed batch survives the client's death; a crash of the *server* may
      lose its last fraction of a second (never corrupts). `durable=True`
      waits for the server's WAL flush at each commit.
    - `write_through=True`: `record()` commits before it returns.
    - The tables live in their own schema (default `holysheep`, or
      `?schema=NAME` in the URL), created on first use under an advisory
      lock, so many processes may start at once. A schema version in its
      `meta` table guards against a newer package's ledger.
    - The server going away is survived: failed batches are retried with
      back-off on a new connection; `flush()` raises after `patience`
      seconds of failures, while the records stay queued.

    Needs the `postgres` extra: `pip install 'langchain-holysheep[postgres]'`.

    Example:
        ```python
        from langchain_holysheep.spend.ledger import PostgresLedger

        ledger = PostgresLedger("postgresql://app@db.internal:5432/spend")
        ledger.record(call_record)
        ledger_report(ledger, by="key").to_table()
        ledger.close()
        ```

    Args:
        url: `postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME[?schema=NAME]` (any
            libpq URL parameter works). Defaults to `$HOLYSHEEP_LEDGER_PATH`
            when that holds such a URL. The password is never shown.
        schema: the PostgreSQL schema of the tables (overrides `?schema=`).
        batch_size: the most records committed in one transaction.
        flush_interval: the longest (seconds) a record waits in memory.
        durable: wait for the server's WAL flush at each commit.
        write_through: commit on the caller's thread inside `record()`.
        max_pending: queue bound; a full queue makes `record()` wait.
        connect_timeout: seconds to wait for the server when connecting.
    """

    _dialect = POSTGRES

    def __init__(
        self,
        url: str | None = None,
        *,
        schema: str | None = None,
        batch_size: int = 1000,
        flush_interval: float = 0.05,
        durable: bool = False,
        write_through: bool = False,
        max_pending: int = 10_000,
        connect_timeout: float = 10.0,
    ) -> None:
        self._check_options(batch_size, max_pending, flush_interval, connect_timeout)
        self._target = PgTarget.parse(_url_or_default(url), schema)
        self.url, self.schema = self._target.shown, self._target.schema
        self.durable = durable
        self._timeout = connect_timeout
        self._where = str(self._target)
        self._psycopg = import_psycopg()
        self._conn = self._connect()
        try:
            self._guard(check_ledger, self._conn, self._target, create=True)
        except BaseException:
            self._conn.close()
            raise
        self._start(
            write_through=write_through,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_pending=max_pending,
            hint=self._hint,
        )

    def __repr__(self) -> str:
        mode = "write_through" if self.write_through else "queued"
        state = "closed" if self._closed else "open"
        return (
            f"PostgresLedger(url={self.url!r}, schema={self.schema!r}, {mode}, "
            f"durable={self.durable}, {state})"
        )

    def _connect(self, *, read_only: bool = False) -> Any:
        return connect(
            self._target,
            timeout=self._timeout,
            read_only=read_only,
            durable=self.durable,
        )

    def _guard(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """`fn(...)`, its psycopg errors as `LedgerError`s naming the ledger."""
        try:
            return fn(*args, **kwargs)
        except self._psycopg.Error as e:
            raise LedgerError(
                f"Cannot use the ledger {self._where} ({self._target.scrub(e)}). "
                "Check that the URL's role may create tables in that database."
            ) from None

    # -- writing ------------------------------------------------------------

    def _write(self, batch: list[CallRecord]) -> None:
        """Commit `batch` in one transaction, in one round trip.

        On a lost connection the batch fails (and is retried by the writer)
        and the next attempt reconnects.
        """
        rows: list[tuple[Sequence[Any], CallRecord]] = []
        for rec in batch:
            try:
                rows.append((encode_row(rec), rec))
            except Exception:
                self._skip(rec)
        if not rows:
            return
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        conn, errors = self._conn, self._psycopg.errors
        try:
            with conn.pipeline(), conn.transaction(), conn.cursor() as cur:
                cur.executemany(INSERT_CALL, [row for row, _ in rows])
        except (errors.DataError, errors.IntegrityError):
            self._insert_each(conn, rows)  # find the bad rows, keep the others
        except self._psycopg.OperationalError:
            conn.close()  # reconnect on the next attempt
            raise

    def _insert_each(
        self, conn: Any, rows: list[tuple[Sequence[Any], CallRecord]]
    ) -> None:
        errors = self._psycopg.errors
        with conn.transaction():
            for row, rec in rows:
                try:
                    with conn.transaction():  # a savepoint per row
                        conn.execute(INSERT_CALL, row)
                except (errors.DataError, errors.IntegrityError):
                    self._skip(rec)

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    def _hint(self, error: BaseException | None) -> str:
        return (
            "Check that the PostgreSQL server is up (pg_isready -h HOST -p PORT) "
            "and accepts this role's connections."
        )

    def _write_error(self, exc: Exception) -> LedgerError | None:
        if not isinstance(exc, self._psycopg.Error):
            return None
        return LedgerError(
            f"Cannot write to the ledger {self._where} ({self._target.scrub(exc)}). "
            + self._hint(exc)
        )

    def _lost_error(self, lost: int, error: BaseException | None) -> LedgerError:
        why = (
            f"last error: {self._target.scrub(error)}; {self._hint(error)}"
            if error
            else "see the log"
        )
        return LedgerError(
            f"{lost} records could not be written to the ledger {self._where} ({why})."
        )

    # -- reading ------------------------------------------------------------

    def sql_reader(self) -> AbstractContextManager[SQLReader]:
        """A read-only reader for reports that sees every record given so far."""
        self.flush()
        return postgres_reader(self._target, timeout=self._timeout)

    def _iter(self, sql: str, params: list[Any]) -> Iterator[CallRecord]:
        """Rows from a server-side cursor, 1000 at a time."""
        reader = postgres_reader(self._target, timeout=self._timeout)
        with reader as r, r.conn.transaction(), r.conn.cursor("query") as cur:
            cur.itersize = 1000
            cur.execute(sql, params)
            for row in cur:
                yield decode(row)


def _url_or_default(url: str | None) -> str:
    if url is not None:
        return url
    target = default_ledger_target()
    if isinstance(target, str):
        return target
    raise LedgerError(
        "PostgresLedger() needs a postgresql:// URL: pass one, or set "
        "HOLYSHEEP_LEDGER_PATH to postgresql://USER@HOST:PORT/DBNAME."
    )


@contextlib.contextmanager
def postgres_reader(target: PgTarget, *, timeout: float = 10.0) -> Iterator[SQLReader]:
    """A read-only reader of an existing PostgreSQL ledger (errors as `LedgerError`).

    Raises:
        LedgerError: the server cannot be reached, or holds no ledger there.
    """
    psycopg = import_psycopg()
    conn = connect(target, timeout=timeout, read_only=True)
    try:
        check_ledger(conn, target, create=False)
        yield SQLReader(conn, POSTGRES)
    except psycopg.Error as e:
        raise LedgerError(
            f"Cannot read the ledger {target} ({target.scrub(e)}). Check that the "
            "server is up (pg_isready -h HOST -p PORT) and the role may read it."
        ) from None
    finally:
        conn.close()
