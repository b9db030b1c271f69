"""The budget operations of `SQLiteStore`, each run inside one transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from langchain_holysheep.state import _requests as rq
from langchain_holysheep.state._budget_types import (
    Refusal,
    Reservation,
    Settlement,
    WindowUsage,
)
from langchain_holysheep.state._requests import settlement, usage

__all__ = [
    "SCHEMA",
    "charge",
    "extend",
    "finish",
    "forget",
    "purge",
    "reserve",
    "window_usage",
]

SCHEMA = """
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


def purge(conn: sqlite3.Connection, now: float) -> None:
    """Drop expired windows and their leases."""
    conn.execute(
        "DELETE FROM hs_budget_lease WHERE EXISTS (SELECT 1 FROM hs_budget_window "
        "w WHERE w.budget_key = hs_budget_lease.budget_key AND w.window_id = "
        "hs_budget_lease.window_id AND w.expires_at <= ?)",
        (now,),
    )
    conn.execute("DELETE FROM hs_budget_window WHERE expires_at <= ?", (now,))


def _load(conn: sqlite3.Connection, key: str, wid: str, now: float) -> tuple[int, int]:
    """(spent, reserved) of a live window; expired leases swept first."""
    row = conn.execute(
        "SELECT spent, reserved, expires_at FROM hs_budget_window "
        "WHERE budget_key = ? AND window_id = ?",
        (key, wid),
    ).fetchone()
    if row is not None and row[2] is not None and row[2] <= now:
        forget(conn, rq.Forget(key, wid))
        return 0, 0
    if row is None:
        return 0, 0
    freed = conn.execute(
        "DELETE FROM hs_budget_lease WHERE budget_key = ? AND window_id = ? "
        "AND expires_at <= ? RETURNING units, settled",
        (key, wid, now),
    ).fetchall()
    return row[0], row[1] - sum(units for units, settled in freed if not settled)


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
    conn: sqlite3.Connection, req: rq.Reserve, now: float
) -> Reservation | Refusal:
    """See `StateStore.reserve`."""
    key, wid, ttl = req.budget_key, req.window_id, req.window_ttl
    spent, reserved = _load(conn, key, wid, now)
    if spent + reserved + req.units > req.cap_units:  # keep what the sweep freed
        _save(conn, key, wid, spent, reserved, now, ttl)
        return req.refusal(spent, reserved)
    expires_at = now + req.lease_seconds
    conn.execute(
        "INSERT INTO hs_budget_lease (id, budget_key, window_id, units, "
        "expires_at) VALUES (?, ?, ?, ?, ?)",
        (req.id, key, wid, req.units, expires_at),
    )
    _save(conn, key, wid, spent, reserved + req.units, now, ttl)
    return req.reservation(expires_at)


def finish(conn: sqlite3.Connection, req: rq.Finish, now: float) -> Settlement:
    """See `StateStore.settle` and `StateStore.release`."""
    res = req.reservation
    spent, reserved = _load(conn, res.budget_key, res.window_id, now)
    # Expired leases of the window are gone (swept by _load): a row found
    # here is live. The settled row stays until its lease ends, so a repeated
    # settle counts nothing.
    row = conn.execute(
        "UPDATE hs_budget_lease SET settled = 1 WHERE id = ? AND settled = 0 "
        "RETURNING units",
        (res.id,),
    ).fetchone()
    counted, late = req.units, False
    if row is not None:
        reserved -= row[0]
    elif conn.execute(
        "SELECT 1 FROM hs_budget_lease WHERE id = ?", (res.id,)
    ).fetchone():
        counted = 0
    else:
        late = True
    spent += counted
    _save(conn, res.budget_key, res.window_id, spent, reserved, now, res.window_ttl)
    return settlement(spent, reserved, counted, late)


def extend(conn: sqlite3.Connection, req: rq.Extend, now: float) -> Reservation | None:
    """See `StateStore.extend`."""
    res = req.reservation
    expires_at = now + req.lease_seconds
    row = conn.execute(
        "UPDATE hs_budget_lease SET expires_at = ? WHERE id = ? "
        "AND settled = 0 AND expires_at > ? RETURNING id",
        (expires_at, res.id, now),
    ).fetchone()
    if row is None:
        return None
    if res.window_ttl is not None:
        conn.execute(
            "UPDATE hs_budget_window SET expires_at = max(coalesce(expires_at, "
            "0), ?) WHERE budget_key = ? AND window_id = ?",
            (now + res.window_ttl, res.budget_key, res.window_id),
        )
    return replace(res, expires_at=expires_at, lease_seconds=float(req.lease_seconds))


def charge(conn: sqlite3.Connection, req: rq.Charge, now: float) -> WindowUsage:
    """See `StateStore.charge`."""
    key, wid = req.budget_key, req.window_id
    spent, reserved = _load(conn, key, wid, now)
    spent += req.units
    _save(conn, key, wid, spent, reserved, now, req.window_ttl)
    return usage(spent, reserved)


def window_usage(conn: sqlite3.Connection, req: rq.Usage, now: float) -> WindowUsage:
    """See `StateStore.usage` (reads only)."""
    row = conn.execute(
        "SELECT spent, reserved, expires_at FROM hs_budget_window "
        "WHERE budget_key = ? AND window_id = ?",
        (req.budget_key, req.window_id),
    ).fetchone()
    if row is None or (row[2] is not None and row[2] <= now):
        return usage(0, 0)
    (expired,) = conn.execute(
        "SELECT coalesce(sum(units), 0) FROM hs_budget_lease WHERE "
        "budget_key = ? AND window_id = ? AND expires_at <= ? AND settled = 0",
        (req.budget_key, req.window_id, now),
    ).fetchone()
    return usage(row[0], row[1] - expired)


def forget(conn: sqlite3.Connection, req: rq.Forget) -> None:
    """See `StateStore.forget`."""
    for table in ("hs_budget_lease", "hs_budget_window"):
        conn.execute(
            f"DELETE FROM {table} WHERE budget_key = ? AND window_id = ?",
            (req.budget_key, req.window_id),
        )
