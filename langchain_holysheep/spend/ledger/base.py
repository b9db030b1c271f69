"""The `Ledger` interface, its error type, the default path and time bounds."""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from langchain_holysheep.errors import HolySheepError
from langchain_holysheep.spend.records import CallRecord

__all__ = [
    "LEDGER_PATH_ENV",
    "Ledger",
    "LedgerClosedError",
    "LedgerError",
    "TimeBound",
    "default_ledger_path",
    "default_ledger_target",
    "ledger_target",
    "redact_url",
    "to_timestamp",
]

LEDGER_PATH_ENV = "HOLYSHEEP_LEDGER_PATH"

TimeBound: TypeAlias = float | int | datetime | date
"""A time bound: a Unix timestamp, a `datetime` (naive means UTC) or a `date`
(midnight UTC)."""


_L = TypeVar("_L", bound="Ledger")


class LedgerError(HolySheepError, OSError):
    """A ledger cannot be opened or written; the message says what to do.

    Not a `ConfigurationError`: a full disk or a damaged file is a problem of
    the storage at run time, not of a setting (it is an `OSError`).
    """


class LedgerClosedError(LedgerError):
    """A record was given to a ledger after `close()`."""


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
POSTGRES_SCHEMES = ("postgresql", "postgres")
_ACCEPTED = (
    "a file path (ledger.sqlite3), sqlite:///path/to/ledger.sqlite3, or "
    "postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME[?schema=NAME]"
)


def redact_url(url: str) -> str:
    """`url` with its password (in the user part or `?password=`) as `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unreadable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "password" for k, _ in query):
        hidden = [(k, "***" if k == "password" else v) for k, v in query]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(hidden)))
    return urlunsplit(parts._replace(netloc=netloc))


def ledger_target(target: str | os.PathLike[str]) -> Path | str:
    """A ledger's location: a `Path` for SQLite, the URL string for PostgreSQL.

    Accepts a file path, `sqlite:///relative/path` or `sqlite:////absolute/path`
    (as SQLAlchemy writes them), and `postgresql://` or `postgres://` URLs.

    Raises:
        LedgerError: any other URL scheme, or an empty target.
    """
    if not isinstance(target, str):
        return Path(target).expanduser()
    text = target.strip()
    if not text:
        raise LedgerError(f"The ledger location is empty; give {_ACCEPTED}.")
    match = _SCHEME.match(text)
    if match is None:
        return Path(text).expanduser()
    scheme = match.group(1).lower()
    if scheme in POSTGRES_SCHEMES:
        return text
    if scheme == "sqlite":
        if text.startswith("sqlite:///") and len(text) > len("sqlite:///"):
            return Path(text[len("sqlite:///") :]).expanduser()
        raise LedgerError(
            f"{text!r} names no file: write sqlite:///relative/path or "
            "sqlite:////absolute/path (or just the path)."
        )
    raise LedgerError(
        f"Cannot open the ledger {redact_url(text)}: {scheme}:// is not a ledger "
        f"store. Give {_ACCEPTED}."
    )


def default_ledger_target() -> Path | str:
    """Where the ledger lives when none is given: a path or a PostgreSQL URL.

    `$HOLYSHEEP_LEDGER_PATH` when set (a path, `sqlite:///...` or
    `postgresql://...`), else `~/.holysheep/ledger.sqlite3`.
    """
    env = os.environ.get(LEDGER_PATH_ENV, "").strip()
    if env:
        return ledger_target(env)
    return Path.home() / ".holysheep" / "ledger.sqlite3"


def default_ledger_path() -> Path:
    """Where the SQLite ledger lives when no path is given.

    `$HOLYSHEEP_LEDGER_PATH` when set, else `~/.holysheep/ledger.sqlite3`.

    Raises:
        LedgerError: `$HOLYSHEEP_LEDGER_PATH` holds a PostgreSQL URL (open it
            with `open_ledger()`).
    """
    target = default_ledger_target()
    if isinstance(target, str):
        raise LedgerError(
            f"${LEDGER_PATH_ENV} holds a PostgreSQL URL ({redact_url(target)}), "
            "not a file: open it with open_ledger() or PostgresLedger()."
        )
    return target


def to_timestamp(bound: TimeBound | None) -> float | None:
    """Convert a time bound to a Unix timestamp (naive datetimes are UTC)."""
    if bound is None:
        return None
    if isinstance(bound, datetime):
        if bound.tzinfo is None:
            bound = bound.replace(tzinfo=timezone.utc)
        return bound.timestamp()
    if isinstance(bound, date):
        return datetime.combine(bound, time(), tzinfo=timezone.utc).timestamp()
    if isinstance(bound, bool) or not isinstance(bound, (int, float)):
        raise TypeError(
            f"A time bound must be a Unix timestamp, a datetime or a date, "
            f"not {type(bound).__name__}."
        )
    return float(bound)


class Ledger(ABC):
    """A durable, append-only store of `CallRecord`s: one row per attempt.

    A ledger is a `RecordSink` (it has `record(rec)` and `close()`), so the spend
    tracker can forward every record to it. Implementations must be thread-safe.

    Example:
        ```python
        from langchain_holysheep.spend.ledger import SQLiteLedger

        with SQLiteLedger() as ledger:  # ~/.holysheep/ledger.sqlite3
            ledger.record(rec)
            for r in ledger.query(since=date.today(), models=["gpt-4.1"]):
                print(r.served_model, r.cost)
        ```
    """

    @abstractmethod
    def record(self, rec: CallRecord) -> None:
        """Store one record (may be buffered until `flush()`)."""

    def record_many(self, recs: Iterable[CallRecord]) -> None:
        """Store several records (one transaction where the store allows)."""
        for rec in recs:
            self.record(rec)

    @abstractmethod
    def query(
        self,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        models: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
    ) -> Iterator[CallRecord]:
        """Stream the stored records, oldest first.

        Args:
            since: keep records with `timestamp >= since`.
            until: keep records with `timestamp < until`.
            models: keep records whose served *or* requested model is one of these.
            tags: keep records that carry at least one of these tags.
        """

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make every record given so far durable."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the store; later `record()` calls raise."""

    def __enter__(self: _L) -> _L:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
