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
from contextlib import contextmanager, suppress
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from langchain_holysheep.state._breaker_logic import BreakerRecord
from langchain_holysheep.state._breaker_types import (
    BreakerRules,
    BreakerStateName,
    BreakerView,
)
from langchain_holysheep.state._budget_types import (
    Refusal,
    Reservation,
    Settlement,
    WindowUsage,
)
from langchain_holysheep.state._checks import check_key, check_seconds, new_id
from langchain_holysheep.state._errors import StateStoreUnavailableError
from langchain_holysheep.state._money import from_units, to_units
from langchain_holysheep.state._rate_logic import BucketRecord
from langchain_holysheep.state._rate_types import RateGrant, RateSpec, RateView
from langchain_holysheep.state._store import StateStore

__all__ = ["DEFAULT_SQLITE_PATH", "SQLiteStore"]

_T = TypeVar("_T")

DEFAULT_SQLITE_PATH = "~/.holysheep/state.sqlite3"
"""Where `open_store("sqlite://")` keeps its file."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hs_budget_window (
    budget_key TEXT NOT NULL,
    window_id TEXT NOT NULL,
    spent INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    expires_at REAL,
    PRIMARY KEY (budget_key, window_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hs_budget_lease (
    id TEXT PRIMARY KEY,
    budget_key TEXT NOT NULL,
    window_id TEXT NOT NULL,
    units INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hs_budget_lease_expiry
    ON hs_budget_lease (budget_key, window_id, expires_at);
CREATE TABLE IF NOT EXISTS hs_breaker (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hs_rate (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL
) WITHOUT ROWID;
"""

_PURGE_EVERY = 60.0
_HINT = (
    "Check that the file's folder exists and is writable, and that no process "
    "holds the write lock longer than the store's timeout"
)


class SQLiteStore(StateStore):
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
                for statement in _SCHEMA.split(";"):
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

    async def _run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- budgets -----------------------------------------------------------------------
    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        """Drop expired windows and their leases (at most once a minute)."""
        if now - self._purged < _PURGE_EVERY:
            return
        self._purged = now
        conn.execute(
            "DELETE FROM hs_budget_lease WHERE EXISTS (SELECT 1 FROM hs_budget_window "
            "w WHERE w.budget_key = hs_budget_lease.budget_key AND w.window_id = "
            "hs_budget_lease.window_id AND w.expires_at <= ?)",
            (now,),
        )
        conn.execute("DELETE FROM hs_budget_window WHERE expires_at <= ?", (now,))

    @staticmethod
    def _load(
        conn: sqlite3.Connection, key: str, wid: str, now: float
    ) -> tuple[int, int]:
        """(spent, reserved) of a live window; expired leases swept first."""
        row = conn.execute(
            "SELECT spent, reserved, expires_at FROM hs_budget_window "
            "WHERE budget_key = ? AND window_id = ?",
            (key, wid),
        ).fetchone()
        if row is not None and row[2] is not None and row[2] <= now:
            conn.execute(
                "DELETE FROM hs_budget_lease WHERE budget_key = ? AND window_id = ?",
                (key, wid),
            )
            conn.execute(
                "DELETE FROM hs_budget_window WHERE budget_key = ? AND window_id = ?",
                (key, wid),
            )
            return 0, 0
        if row is None:
            return 0, 0
        freed = conn.execute(
            "DELETE FROM hs_budget_lease WHERE budget_key = ? AND window_id = ? "
            "AND expires_at <= ? RETURNING units, settled",
            (key, wid, now),
        ).fetchall()
        return row[0], row[1] - sum(units for units, settled in freed if not settled)

    @staticmethod
    def _save(
        conn: sqlite3.Connection,
        key: str,
        wid: str,
        spent: int,
        reserved: int,
        now: float,
        ttl: float | None,
    ) -> None:
        expires_at = None if ttl is None else now + ttl
        conn.execute(
            "INSERT INTO hs_budget_window (budget_key, window_id, spent, reserved, "
            "expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (budget_key, window_id) "
            "DO UPDATE SET spent = excluded.spent, reserved = excluded.reserved, "
            "expires_at = CASE WHEN excluded.expires_at IS NULL THEN expires_at "
            "ELSE max(coalesce(expires_at, 0), excluded.expires_at) END",
            (key, wid, spent, reserved, expires_at),
        )

    def reserve(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        cap: Decimal,
        lease_seconds: float,
        *,
        window_ttl: float | None = None,
    ) -> Reservation | Refusal:
        """See `StateStore.reserve`."""
        check_key(budget_key, window_id)
        units = to_units(amount)
        cap_units = to_units(cap, up=False, what="cap")
        check_seconds(lease_seconds, "lease_seconds")
        check_seconds(window_ttl, "window_ttl", optional=True)
        ttl = None if window_ttl is None else max(window_ttl, lease_seconds)
        rid = new_id()
        with self._tx() as conn:
            now = self._clock()
            self._purge(conn, now)
            spent, reserved = self._load(conn, budget_key, window_id, now)
            if spent + reserved + units > cap_units:  # keep what the sweep freed
                self._save(conn, budget_key, window_id, spent, reserved, now, ttl)
                return Refusal(
                    budget_key,
                    window_id,
                    from_units(units),
                    from_units(cap_units),
                    from_units(spent),
                    from_units(reserved),
                )
            expires_at = now + lease_seconds
            conn.execute(
                "INSERT INTO hs_budget_lease (id, budget_key, window_id, units, "
                "expires_at) VALUES (?, ?, ?, ?, ?)",
                (rid, budget_key, window_id, units, expires_at),
            )
            self._save(conn, budget_key, window_id, spent, reserved + units, now, ttl)
        return Reservation(
            budget_key,
            window_id,
            rid,
            from_units(units),
            float(lease_seconds),
            expires_at,
            ttl,
        )

    def _finish(self, res: Reservation, actual: Decimal | None) -> Settlement:
        units = 0 if actual is None else to_units(actual, what="actual")
        with self._tx() as conn:
            now = self._clock()
            spent, reserved = self._load(conn, res.budget_key, res.window_id, now)
            # Expired leases of the window are gone (swept by _load): a row
            # found here is live. The settled row stays until its lease ends,
            # so a repeated settle counts nothing.
            row = conn.execute(
                "UPDATE hs_budget_lease SET settled = 1 WHERE id = ? AND settled = 0 "
                "RETURNING units",
                (res.id,),
            ).fetchone()
            counted, late = units, False
            if row is not None:
                reserved -= row[0]
            elif conn.execute(
                "SELECT 1 FROM hs_budget_lease WHERE id = ?", (res.id,)
            ).fetchone():
                counted = 0
            else:
                late = True
            spent += counted
            self._save(
                conn,
                res.budget_key,
                res.window_id,
                spent,
                reserved,
                now,
                res.window_ttl,
            )
        return Settlement(
            from_units(spent),
            from_units(reserved),
            from_units(counted),
            late and counted > 0,
        )

    def settle(self, reservation: Reservation, actual: Decimal | None) -> Settlement:
        """See `StateStore.settle`."""
        return self._finish(reservation, actual)

    def release(self, reservation: Reservation) -> None:
        """See `StateStore.release`."""
        self._finish(reservation, None)

    def extend(
        self, reservation: Reservation, lease_seconds: float
    ) -> Reservation | None:
        """See `StateStore.extend`."""
        check_seconds(lease_seconds, "lease_seconds")
        with self._tx() as conn:
            now = self._clock()
            expires_at = now + lease_seconds
            row = conn.execute(
                "UPDATE hs_budget_lease SET expires_at = ? WHERE id = ? "
                "AND settled = 0 AND expires_at > ? RETURNING id",
                (expires_at, reservation.id, now),
            ).fetchone()
            if row is None:
                return None
            if reservation.window_ttl is not None:
                conn.execute(
                    "UPDATE hs_budget_window SET expires_at = max(coalesce(expires_at, "
                    "0), ?) WHERE budget_key = ? AND window_id = ?",
                    (
                        now + reservation.window_ttl,
                        reservation.budget_key,
                        reservation.window_id,
                    ),
                )
        return replace(
            reservation, expires_at=expires_at, lease_seconds=float(lease_seconds)
        )

    def charge(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        *,
        window_ttl: float | None = None,
    ) -> WindowUsage:
        """See `StateStore.charge`."""
        check_key(budget_key, window_id)
        units = to_units(amount)
        check_seconds(window_ttl, "window_ttl", optional=True)
        with self._tx() as conn:
            now = self._clock()
            spent, reserved = self._load(conn, budget_key, window_id, now)
            spent += units
            self._save(conn, budget_key, window_id, spent, reserved, now, window_ttl)
        return WindowUsage(from_units(spent), from_units(reserved))

    def usage(self, budget_key: str, window_id: str) -> WindowUsage:
        """See `StateStore.usage`."""
        with self._tx(write=False) as conn:
            now = self._clock()
            row = conn.execute(
                "SELECT spent, reserved, expires_at FROM hs_budget_window "
                "WHERE budget_key = ? AND window_id = ?",
                (budget_key, window_id),
            ).fetchone()
            if row is None or (row[2] is not None and row[2] <= now):
                return WindowUsage(from_units(0), from_units(0))
            (expired,) = conn.execute(
                "SELECT coalesce(sum(units), 0) FROM hs_budget_lease WHERE "
                "budget_key = ? AND window_id = ? AND expires_at <= ? AND settled = 0",
                (budget_key, window_id, now),
            ).fetchone()
        return WindowUsage(from_units(row[0]), from_units(row[1] - expired))

    def forget(self, budget_key: str, window_id: str) -> None:
        """See `StateStore.forget`."""
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM hs_budget_lease WHERE budget_key = ? AND window_id = ?",
                (budget_key, window_id),
            )
            conn.execute(
                "DELETE FROM hs_budget_window WHERE budget_key = ? AND window_id = ?",
                (budget_key, window_id),
            )

    # -- breakers ----------------------------------------------------------------------
    @contextmanager
    def _breaker(self, key: str) -> Iterator[tuple[BreakerRecord, float]]:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT record FROM hs_breaker WHERE key = ?", (key,)
            ).fetchone()
            record = BreakerRecord.loads(None if row is None else row[0])
            yield record, self._clock()
            conn.execute(
                "INSERT INTO hs_breaker (key, record) VALUES (?, ?) ON CONFLICT (key) "
                "DO UPDATE SET record = excluded.record",
                (key, record.dumps()),
            )

    def breaker(self, key: str, rules: BreakerRules) -> BreakerView:
        """See `StateStore.breaker`."""
        with self._tx(write=False) as conn:
            row = conn.execute(
                "SELECT record FROM hs_breaker WHERE key = ?", (key,)
            ).fetchone()
            now = self._clock()
        return BreakerRecord.loads(None if row is None else row[0]).view(
            key, rules, now
        )

    def record_success(self, key: str, rules: BreakerRules) -> BreakerView:
        """See `StateStore.record_success`."""
        with self._breaker(key) as (record, now):
            previous = record.record(rules, now, ok=True)
        return record.view(key, rules, now, previous)

    def record_failure(
        self, key: str, rules: BreakerRules, reason: str = "failure"
    ) -> BreakerView:
        """See `StateStore.record_failure`."""
        with self._breaker(key) as (record, now):
            previous = record.record(rules, now, ok=False, reason=reason)
        return record.view(key, rules, now, previous)

    def count_successes(self, key: str, rules: BreakerRules, count: int) -> BreakerView:
        """See `StateStore.count_successes`."""
        with self._breaker(key) as (record, now):
            record.count_successes(rules, now, count)
        return record.view(key, rules, now)

    def try_claim_probe(self, key: str, ttl: float) -> bool:
        """See `StateStore.try_claim_probe`."""
        check_seconds(ttl, "ttl")
        with self._breaker(key) as (record, now):
            won, _ = record.claim_probe(now, ttl)
        return won

    def release_probe(self, key: str) -> None:
        """See `StateStore.release_probe`."""
        with self._breaker(key) as (record, _):
            record.release_probe()

    def force_open(
        self, key: str, rules: BreakerRules, reason: str = "forced open"
    ) -> BreakerView:
        """See `StateStore.force_open`."""
        with self._breaker(key) as (record, now):
            previous = record.force_open(rules, now, reason)
        return record.view(key, rules, now, previous)

    def reset_breaker(self, key: str) -> BreakerStateName | None:
        """See `StateStore.reset_breaker`."""
        with self._breaker(key) as (record, _):
            previous = record.reset()
        return previous

    # -- rate limits -------------------------------------------------------------------
    @contextmanager
    def _bucket(self, key: str) -> Iterator[tuple[BucketRecord, float]]:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT record FROM hs_rate WHERE key = ?", (key,)
            ).fetchone()
            record = BucketRecord.loads(None if row is None else row[0])
            yield record, self._clock()
            conn.execute(
                "INSERT INTO hs_rate (key, record) VALUES (?, ?) ON CONFLICT (key) "
                "DO UPDATE SET record = excluded.record",
                (key, record.dumps()),
            )

    def acquire_rate(
        self,
        key: str,
        spec: RateSpec,
        *,
        tokens: float = 0.0,
        max_wait: float = 0.0,
    ) -> RateGrant:
        """See `StateStore.acquire_rate`."""
        with self._bucket(key) as (record, now):
            grant = record.acquire(spec, now, tokens, max_wait)
        return grant

    def refund_rate(
        self, key: str, spec: RateSpec, *, requests: float = 1.0, tokens: float = 0.0
    ) -> None:
        """See `StateStore.refund_rate`."""
        with self._bucket(key) as (record, now):
            record.refund(spec, now, requests, tokens)

    def penalize_rate(self, key: str, seconds: float) -> None:
        """See `StateStore.penalize_rate`."""
        if seconds > 0:
            with self._bucket(key) as (record, now):
                record.penalize(now, seconds)

    def rate_state(self, key: str, spec: RateSpec) -> RateView:
        """See `StateStore.rate_state`."""
        with self._tx(write=False) as conn:
            row = conn.execute(
                "SELECT record FROM hs_rate WHERE key = ?", (key,)
            ).fetchone()
            now = self._clock()
        return BucketRecord.loads(None if row is None else row[0]).view(spec, now)
