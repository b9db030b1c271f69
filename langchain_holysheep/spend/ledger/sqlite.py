"""`SQLiteLedger`: the embedded, durable default ledger."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from langchain_holysheep.spend.ledger.base import (
    LedgerError,
    default_ledger_path,
)
from langchain_holysheep.spend.ledger.dialect import SQLITE, SQLReader
from langchain_holysheep.spend.ledger.queued import QueuedLedger, close_open_ledgers
from langchain_holysheep.spend.ledger.schema import (
    INSERT_CALL,
    INSERT_TAG,
    check_schema,
    connect,
    create_schema,
    damaged_hint,
    decode,
    encode,
    is_damaged,
    ledger_read_error,
    open_reader,
)
from langchain_holysheep.spend.ledger.tags import user_tags
from langchain_holysheep.spend.records import CallRecord

__all__ = ["SQLiteLedger", "sqlite_reader"]

# Errors caused by one record's values (not by the disk): skip that record.
_BAD_DATA = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
    OverflowError,
    UnicodeError,
    ValueError,
    TypeError,
)


class SQLiteLedger(QueuedLedger):
    """The spend ledger in one SQLite file: one row per attempt, money exact.

    `record()` only puts the record on a bounded queue (median ~1.5 µs on the
    caller's thread); one background writer thread encodes the records and
    inserts them in batches, one transaction per batch (~25,000 records/s on a
    busy 2-CPU VM, far above any LLM call rate). Many threads and asyncio tasks
    may call `record()` at once. `query()` and reports see every record given
    before they were called (they flush first).

    Durability (measured in `benchmarks/bench_ledger.py`):

    - default: WAL journal, `synchronous=NORMAL`. A committed batch survives a
      killed process; a process killed by SIGKILL loses only the records not yet
      committed (at most `flush_interval` seconds' worth, or `max_pending`
      records when writes fall behind). An OS crash or power cut may also lose
      the last committed batches (never corrupts the file).
    - `durable=True`: `synchronous=FULL`, the WAL is fsynced at each commit, so a
      committed batch also survives power loss (slower commits, same `record()`).
    - `write_through=True`: no queue; `record()` commits before it returns
      (median ~0.06 ms; ~0.3 ms and up with `durable=True`, as fast as the disk
      syncs), so an acknowledged record is never lost to a killed process.

    `flush()` waits until everything recorded so far is committed; `close()`
    flushes and closes (it also runs at interpreter exit). The schema is
    versioned in a `meta` table; a file that is not a ledger, or a ledger written
    by a newer version of the package, is refused with a `LedgerError`.

    Several processes may share one ledger file (SQLite locks serialise their
    batches), but not over a network filesystem (WAL needs shared memory).

    Example:
        ```python
        from langchain_holysheep.spend.ledger import SQLiteLedger
        from langchain_holysheep.spend.report import ledger_report

        ledger = SQLiteLedger()  # $HOLYSHEEP_LEDGER_PATH or ~/.holysheep/ledger.sqlite3
        ledger.record(call_record)
        ledger_report(ledger, by="model").to_table()
        ledger.close()
        ```

    Args:
        path: the database file; created (with its directories) if missing.
            Defaults to `$HOLYSHEEP_LEDGER_PATH`, else `~/.holysheep/ledger.sqlite3`.
        batch_size: the most records committed in one transaction.
        flush_interval: the longest (seconds) a record waits in memory to be
            batched with later ones; 0 commits as soon as the writer wakes.
        durable: fsync every commit (`synchronous=FULL`).
        write_through: commit on the caller's thread inside `record()`.
        max_pending: queue bound (a `record_many` list counts as one); when the
            writer falls this far behind, `record()` waits for it (back-pressure)
            instead of growing memory.
        busy_timeout: seconds to wait for another process's write lock.
    """

    _dialect = SQLITE

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 1000,
        flush_interval: float = 0.05,
        durable: bool = False,
        write_through: bool = False,
        max_pending: int = 10_000,
        busy_timeout: float = 30.0,
    ) -> None:
        self._check_options(batch_size, max_pending, flush_interval, busy_timeout)
        self.path = Path(path).expanduser() if path else default_ledger_path()
        if self.path.is_dir():
            raise LedgerError(
                f"{self.path} is a directory; give the path of a ledger file "
                "inside it, e.g. ledger.sqlite3."
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LedgerError(
                f"Cannot create the ledger directory {self.path.parent} ({e}). "
                "Pass a writable path or set HOLYSHEEP_LEDGER_PATH."
            ) from e
        self.durable = durable
        self._where = str(self.path)
        self._conn = self._open(busy_timeout)
        self._start(
            write_through=write_through,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_pending=max_pending,
        )

    def _open(self, busy_timeout: float) -> sqlite3.Connection:
        try:
            conn = connect(self.path, timeout=busy_timeout)
        except sqlite3.Error as e:
            raise LedgerError(f"Cannot open the ledger {self.path}: {e}.") from e
        try:
            empty = check_schema(conn, self.path)  # before touching the file
            sync = "FULL" if self.durable else "NORMAL"
            conn.execute(f"PRAGMA synchronous = {sync}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(
                    f"{self.path} cannot use SQLite's WAL journal (got {mode!r}); "
                    "keep the ledger on a local disk."
                )
            if empty:
                create_schema(conn, self.path)
        except sqlite3.Error as e:
            conn.close()
            raise LedgerError(f"Cannot open the ledger {self.path}: {e}.") from e
        except BaseException:
            conn.close()
            raise
        return conn

    def __repr__(self) -> str:
        mode = "write_through" if self.write_through else "queued"
        state = "closed" if self._closed else "open"
        return (
            f"SQLiteLedger(path={str(self.path)!r}, {mode}, "
            f"durable={self.durable}, {state})"
        )

    # -- writing ------------------------------------------------------------

    def _release(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def _lost_error(self, lost: int, error: BaseException | None) -> LedgerError:
        if error is not None and is_damaged(error):
            return LedgerError(
                f"{lost} records could not be written to {self.path}: the file "
                f"is damaged ({error}). {damaged_hint(self.path)}"
            )
        why = f"last error: {error}; check the disk" if error else "see the log"
        return LedgerError(
            f"{lost} records could not be written to {self.path} ({why})."
        )

    def _write_error(self, exc: Exception) -> LedgerError | None:
        """A `LedgerError` for an SQLite error of a `write_through` commit."""
        if not isinstance(exc, sqlite3.Error):
            return None
        if is_damaged(exc):
            return LedgerError(
                f"Cannot write to the ledger {self.path}: the file is damaged "
                f"({exc}). {damaged_hint(self.path)}"
            )
        return LedgerError(
            f"Cannot write to the ledger {self.path} ({exc}). Check the disk "
            "(space, permissions, another process's lock)."
        )

    def _write(self, batch: list[CallRecord]) -> None:
        """Commit `batch` in one transaction (writer thread or under `_lock`).

        A record that cannot be stored (a value SQLite cannot bind, a NaN time)
        is logged and skipped; it never blocks the rest of the batch.
        """
        encoded: list[tuple[tuple[Any, ...], CallRecord]] = []
        for rec in batch:
            try:
                encoded.append((encode(rec), rec))
            except Exception:
                self._skip(rec)
        if not encoded:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            first = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM calls")
            start = first.fetchone()[0]
            rows = [(i, *row) for i, (row, _) in enumerate(encoded, start)]
            stored: Sequence[int] = range(len(rows))
            conn.execute("SAVEPOINT batch")
            try:
                conn.executemany(INSERT_CALL, rows)
            except _BAD_DATA:  # find the bad rows one by one, keep the others
                conn.execute("ROLLBACK TO batch")
                stored = self._insert_each(conn, rows, [r for _, r in encoded])
            conn.execute("RELEASE batch")
            tags = [
                (start + i, t) for i in stored for t in user_tags(encoded[i][1].tags)
            ]
            if tags:
                conn.executemany(INSERT_TAG, tags)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _insert_each(
        self, conn: sqlite3.Connection, rows: list[Any], recs: list[CallRecord]
    ) -> list[int]:
        stored = []
        for i, (row, rec) in enumerate(zip(rows, recs, strict=True)):
            try:
                conn.execute(INSERT_CALL, row)
                stored.append(i)
            except _BAD_DATA:
                self._skip(rec)
        return stored

    # -- reading ------------------------------------------------------------

    @contextlib.contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection that sees every record given so far."""
        self.flush()
        conn = open_reader(self.path)
        try:
            yield conn
        finally:
            conn.close()

    def sql_reader(self) -> AbstractContextManager[SQLReader]:
        """A reader for reports that sees every record given so far."""
        self.flush()
        return sqlite_reader(self.path)

    def _iter(self, sql: str, params: list[Any]) -> Iterator[CallRecord]:
        with sqlite_reader(self.path) as r:
            cur = r.conn.execute(sql, params)
            while rows := cur.fetchmany(1000):
                for row in rows:
                    yield decode(row)


@contextlib.contextmanager
def sqlite_reader(path: Path) -> Iterator[SQLReader]:
    """A read-only reader of the ledger file at `path` (errors as `LedgerError`)."""
    conn = open_reader(path)
    try:
        yield SQLReader(conn, SQLITE)
    except sqlite3.Error as e:
        raise ledger_read_error(path, e) from e
    finally:
        conn.close()


_close_open_ledgers = close_open_ledgers  # what runs at interpreter exit
