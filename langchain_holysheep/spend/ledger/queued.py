"""`QueuedLedger`: the record/flush/close life cycle every ledger store shares.

A store subclass opens its storage, then calls `_start()`; it supplies `_write`
(commit one batch in one transaction), `_release` (close the storage) and the
translation of its own errors into `LedgerError`s that say what to do.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from langchain_holysheep.spend.ledger.base import (
    Ledger,
    LedgerClosedError,
    LedgerError,
    TimeBound,
)
from langchain_holysheep.spend.ledger.dialect import Dialect, SQLReader
from langchain_holysheep.spend.ledger.writer import BatchWriter
from langchain_holysheep.spend.records import CallRecord, DeferredRecords

__all__ = ["QueuedLedger", "close_open_ledgers"]

logger = logging.getLogger(__name__)


class QueuedLedger(Ledger):
    """A ledger whose records are committed in batches by a `BatchWriter`.

    `record()` only queues the record (unless `write_through`), one background
    thread commits batches, `flush()` waits for them and `close()` (also run at
    interpreter exit) writes everything left. Subclasses name the store in
    `_where` and implement `_write`, `_release`, `_write_error`, `_lost_error`.
    """

    _where: str
    _dialect: Dialect  # the SQL the store speaks
    write_through: bool

    @staticmethod
    def _check_options(batch_size: int, max_pending: int, *delays: float) -> None:
        """Refuse sizes below 1 and negative delays or timeouts."""
        if batch_size < 1 or max_pending < 1:
            raise LedgerError("batch_size and max_pending must be at least 1.")
        if any(d < 0 for d in delays):
            raise LedgerError("flush_interval and the timeouts must not be negative.")

    def _start(
        self,
        *,
        write_through: bool,
        batch_size: int,
        flush_interval: float,
        max_pending: int,
        hint: Callable[[BaseException | None], str] | None = None,
    ) -> None:
        """Start the writer (or none under `write_through`); call once, last.

        `hint` says what to do while writes keep failing (default: the advice
        for a file on a disk).
        """
        self.write_through = write_through
        self._lock = threading.Lock()
        self._closed = False
        self._malformed = 0  # records that could not be encoded
        self._writer: BatchWriter | None = None
        if not write_through:
            self._writer = BatchWriter(
                self._write,
                where=self._where,
                batch_size=batch_size,
                flush_interval=flush_interval,
                max_pending=max_pending,
                hint=hint,
            )
        _OPEN.add(self)

    @abstractmethod
    def _write(self, batch: list[CallRecord]) -> None:
        """Commit `batch` in one transaction; skip (`_skip`) unstorable records."""

    def query(
        self,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        models: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
    ) -> Iterator[CallRecord]:
        """Stream the stored records, oldest first (see `Ledger.query`)."""
        where, params = self._dialect.where(since, until, models, tags)
        self.flush()
        sql = f"{self._dialect.select_calls}{where} ORDER BY c.ts, c.id"
        return self._iter(sql, params)

    @abstractmethod
    def _iter(self, sql: str, params: list[Any]) -> Iterator[CallRecord]:
        """The records of a `select_calls` query, streamed in bounded memory."""

    @abstractmethod
    def sql_reader(self) -> AbstractContextManager[SQLReader]:
        """A reader for reports that sees every record given so far."""

    def count(self) -> int:
        """The number of stored records (after a flush)."""
        with self.sql_reader() as reader:
            for row in reader.execute("SELECT count(*) FROM calls", []):
                return int(row[0])
        return 0

    @abstractmethod
    def _release(self) -> None:
        """Close the storage (after the last write)."""

    @abstractmethod
    def _write_error(self, exc: Exception) -> LedgerError | None:
        """The `LedgerError` for a store error in `write_through` mode, or None."""

    @abstractmethod
    def _lost_error(self, lost: int, error: BaseException | None) -> LedgerError:
        """The `LedgerError` raised by `close()` when `lost` records were lost."""

    def record(self, rec: CallRecord) -> None:
        """Store one record; cheap unless `write_through=True`."""
        with self._lock:
            if self._closed:
                raise LedgerClosedError(f"The ledger {self._where} is closed.")
            if self._writer is None:
                self._write_now([rec])
            else:
                self._writer.put(rec)

    def record_deferred(self, call: DeferredRecords) -> None:
        """Store a call whose records the writer thread builds (`DeferredRecords`).

        Under `write_through=True` they are built and written at once.
        """
        with self._lock:
            if self._closed:
                raise LedgerClosedError(f"The ledger {self._where} is closed.")
            if self._writer is None:
                self._write_now(list(call.records()))
            else:
                self._writer.put(call)

    def record_many(self, recs: Iterable[CallRecord]) -> None:
        """Store several records; one transaction under `write_through=True`."""
        batch = list(recs)
        if not batch:
            return
        with self._lock:
            if self._closed:
                raise LedgerClosedError(f"The ledger {self._where} is closed.")
            if self._writer is None:
                self._write_now(batch)
            else:
                self._writer.put(batch)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record given so far is committed.

        Raises:
            LedgerError: writes are failing (the records stay queued and are
                retried) or `timeout` seconds passed.
        """
        if self._writer is None:
            return
        with self._lock:
            closing = self._closed
            marker = None if closing else self._writer.request_flush()
        if marker is None:  # close() writes everything
            self._writer.join(timeout)
        else:
            self._writer.wait(marker, timeout)

    def close(self) -> None:
        """Flush, stop the writer and release the store. Idempotent.

        Raises:
            LedgerError: some records could not be written.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _OPEN.discard(self)
        lost, error = self._malformed, None
        if self._writer is not None:
            self._writer.stop()
            lost, error = lost + self._writer.lost, self._writer.error
        self._release()
        if lost:
            raise self._lost_error(lost, error)

    def _write_now(self, batch: list[CallRecord]) -> None:
        """`_write` on the caller's thread, store errors as `LedgerError`s."""
        try:
            self._write(batch)
        except Exception as e:
            translated = self._write_error(e)
            if translated is None:
                raise
            raise translated from e

    def _skip(self, rec: CallRecord) -> None:
        self._malformed += 1
        logger.exception("Skipping a CallRecord the ledger cannot store: %r", rec)


_OPEN: weakref.WeakSet[QueuedLedger] = weakref.WeakSet()


@atexit.register
def close_open_ledgers() -> None:
    """Close every ledger still open (what runs at interpreter exit)."""
    for ledger in list(_OPEN):
        try:
            ledger.close()
        except Exception:
            logger.exception("Closing %r at exit failed", ledger)
