"""`SQLiteStore`: state in one SQLite file, shared by the processes of a machine.

Each operation is one `BEGIN IMMEDIATE` transaction (the write lock is taken
first, so read-check-write cannot interleave with another process), in WAL
mode (readers never block the writer). The file survives restarts: a daily
budget remembers the day's spend. Money is stored as integer units of 1e-9
USD; reservations are rows with a lease (`expires_at`) that stop counting once
it has passed, so a killed process leaks nothing.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from langchain_holysheep.state import _requests as rq
from langchain_holysheep.state import _sqlite_budget as sql
from langchain_holysheep.state._breaker_logic import BreakerRecord
from langchain_holysheep.state._budget_types import (
    Refusal,
    Reservation,
    Settlement,
    WindowUsage,
)
from langchain_holysheep.state._errors import StateStoreUnavailableError
from langchain_holysheep.state._rate_logic import BucketRecord
from langchain_holysheep.state._records import RecordStore

__all__ = ["DEFAULT_SQLITE_PATH", "SQLiteStore"]

_T = TypeVar("_T")
_R = TypeVar("_R", BreakerRecord, BucketRecord)

DEFAULT_SQLITE_PATH = "~/.holysheep/state.sqlite3"
"""Where `open_store("sqlite://")` keeps its file."""

_PURGE_EVERY = 60.0
_HINT = (
    "Check that the file's folder exists and is writable, and that no process "
    "holds the write lock longer than the store's timeout"
)


class SQLiteStore(RecordStore):
    """State in a SQLite file: atomic across the processes of one machine.

    Args:
        path: the database file (created with its folders if missing).
        clock: seconds (`time.time` by default; every process must use the
            same clock, so inject one only in single-process tests).
        timeout: seconds to wait for the write lock before the store counts
            as unavailable.
        durable: also survive power loss (`synchronous=FULL`; by default
            commits survive a killed process, not a power cut).

    Example:
        ```python
        store = SQLiteStore("/var/lib/myapp/holysheep-state.sqlite3")
        # or: open_store("sqlite:////var/lib/myapp/holysheep-state.sqlite3")
        ```
    """

    kind = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_SQLITE_PATH,
        *,
        clock: Callable[[], float] | None = None,
        timeout: float = 10.0,
        durable: bool = False,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        self._clock = clock or time.time
        self._timeout = timeout
        self._synchronous = "FULL" if durable else "NORMAL"
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._purged = 0.0
        self._schema_ready = False

    @property
    def url(self) -> str:
        """The store's URL (`sqlite:////absolute/path`)."""
        return f"sqlite:///{self.path}"

    # -- connections and transactions --------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=self._timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        self._wal(conn)
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        if not self._schema_ready:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in sql.SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._schema_ready = True
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL mode (once; the mode is stored in the file).

        Changing the journal mode does not wait on SQLite's busy handler, so
        processes opening a new file at the same moment retry for `timeout`.
        """
        deadline = time.monotonic() + self._timeout
        while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            conn = local.conn = self._connect()
            local.pid = os.getpid()
        return conn

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction; SQLite I/O errors become `StateStoreUnavailableError`."""
        try:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except (sqlite3.OperationalError, OSError) as exc:
            raise StateStoreUnavailableError(self.url, str(exc), hint=_HINT) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) or type(exc) is (
                sqlite3.DatabaseError
            ):
                raise StateStoreUnavailableError(
                    self.url, str(exc), hint=_HINT
                ) from exc
            raise

    def close(self) -> None:
        """Close every connection this store opened (new ones open on next use)."""
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    async def _aapply(self, request: rq.Request[_T]) -> _T:
        return await asyncio.to_thread(self._apply, request)

    # -- budgets -----------------------------------------------------------------------
    @contextmanager
    def _budget_tx(self) -> Iterator[tuple[sqlite3.Connection, float]]:
        """A write transaction for a budget operation, expired windows purged."""
        with self._tx() as conn:
            now = self._clock()
            if now - self._purged >= _PURGE_EVERY:  # at most once a minute
                self._purged = now
                sql.purge(conn, now)
            yield conn, now

    def _reserve_units(self, request: rq.Reserve) -> Reservation | Refusal:
        with self._budget_tx() as (conn, now):
            return sql.reserve(conn, request, now)

    def _finish(self, request: rq.Finish) -> Settlement:
        with self._tx() as conn:
            return sql.finish(conn, request, self._clock())

    def _extend_lease(self, request: rq.Extend) -> Reservation | None:
        with self._tx() as conn:
            return sql.extend(conn, request, self._clock())

    def _charge_units(self, request: rq.Charge) -> WindowUsage:
        with self._tx() as conn:
            return sql.charge(conn, request, self._clock())

    def _window_usage(self, request: rq.Usage) -> WindowUsage:
        with self._tx(write=False) as conn:
            return sql.window_usage(conn, request, self._clock())

    def _forget_window(self, request: rq.Forget) -> None:
        with self._tx() as conn:
            sql.forget(conn, request)

    # -- breakers and rate limits ------------------------------------------------------
    @contextmanager
    def _record(
        self, table: str, key: str, writes: bool, kind: type[_R]
    ) -> Iterator[tuple[_R, float]]:
        """The record of `key` in `table` (saved afterwards if `writes`)."""
        with self._tx(write=writes) as conn:
            row = conn.execute(
                f"SELECT record FROM {table} WHERE key = ?", (key,)
            ).fetchone()
            record = kind.loads(None if row is None else row[0])
            yield record, self._clock()
            if writes:
                conn.execute(
                    f"INSERT INTO {table} (key, record) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET record = excluded.record",
                    (key, record.dumps()),
                )

    def _breaker_record(
        self, key: str, op: rq.BreakerOp[Any]
    ) -> AbstractContextManager[tuple[BreakerRecord, float]]:
        return self._record("hs_breaker", key, op.writes, BreakerRecord)

    def _bucket_record(
        self, key: str, op: rq.RateOp[Any]
    ) -> AbstractContextManager[tuple[BucketRecord, float]]:
        return self._record("hs_rate", key, op.writes, BucketRecord)
