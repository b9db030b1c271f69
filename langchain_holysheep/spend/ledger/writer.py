"""`BatchWriter`: one background thread that commits queued records in batches."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from langchain_holysheep.spend.ledger.base import LedgerError
from langchain_holysheep.spend.ledger.schema import damaged_hint, is_damaged
from langchain_holysheep.spend.records import CallRecord, DeferredRecords

__all__ = ["BatchWriter"]

logger = logging.getLogger(__name__)

_STOP = object()
_GIVE_UP_ATTEMPTS = 3  # write attempts per batch once stop() has begun


def _built(call: DeferredRecords) -> Sequence[CallRecord]:
    """`call.records()`; nothing (logged) if they cannot be built."""
    try:
        return call.records()
    except Exception:
        logger.exception("A spend record could not be built; it is not stored")
        return ()


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class _Queue(deque[Any]):
    """The writer's queue: appends and pops are atomic, nobody is notified."""

    def qsize(self) -> int:
        """How many items wait (a `record_many` list counts as one)."""
        return len(self)


class BatchWriter:
    """A bounded queue drained by one daemon thread that calls `write(batch)`.

    Queueing a record costs the caller an append: the writer thread is not
    woken per record. It sleeps until a record arrives while it is idle, then
    lets records gather for `flush_interval` seconds (or until `batch_size` are
    waiting, a flush is asked for, or the writer is stopped), takes everything
    waiting and hands it to `write` in batches of up to `batch_size` records
    (one transaction each). A failed write is retried with back-off (0.05 s
    doubling to 2 s) until it succeeds; meanwhile records keep queueing. Once
    writes have failed for `patience` seconds, `flush()` raises, and so does
    `put()` on a full queue (instead of waiting).

    Args:
        write: commits a batch; raises on failure (the batch is retried).
        where: names the store in messages (a path).
        batch_size: the most records per `write` call.
        flush_interval: the longest a record waits to be batched with others.
        max_pending: the queue bound; a full queue makes `put()` wait.
        hint: what to do while writes fail, given the last error (default: the
            SQLite file's advice).
    """

    def __init__(
        self,
        write: Callable[[list[CallRecord]], None],
        *,
        where: str,
        batch_size: int,
        flush_interval: float,
        max_pending: int,
        hint: Callable[[BaseException | None], str] | None = None,
    ) -> None:
        self._write = write
        self._hint = hint or self._file_hint
        self._where = where
        self._size = batch_size
        self._interval = flush_interval
        self._max = max_pending
        self._queue = _Queue()
        self._room = threading.Condition(threading.Lock())  # guards appends
        self._wake = threading.Event()
        self._idle = True  # the writer waits for a first record, with no deadline
        self._flushes = 0  # flush markers queued and not yet taken
        self._stopping = threading.Event()
        self.error: BaseException | None = None  # the last failed write, if failing
        self.patience = 5.0  # seconds of failing writes before flush()/put() raise
        self._failing_since: float | None = None
        self.lost = 0  # records given up on (only after stop() while failing)
        self._thread = threading.Thread(
            target=self._run, name="holysheep-ledger-writer", daemon=True
        )
        self._thread.start()

    def put(
        self, item: CallRecord | list[CallRecord] | DeferredRecords | _Flush
    ) -> None:
        """Queue a record (or a list of them); wait for room while writes work.

        Raises:
            LedgerError: the queue is full because writes keep failing.
        """
        queue = self._queue
        with self._room:
            while len(queue) >= self._max:  # back-pressure: wait for the writer
                self._wake.set()
                self._room.wait(0.1)
                self.check()
            queue.append(item)
            if type(item) is _Flush:
                self._flushes += 1
        if self._idle or len(queue) >= self._size or self._flushes:
            self._wake.set()

    def check(self) -> None:
        """Raise `LedgerError` once writes have been failing for `patience` s."""
        since = self._failing_since
        if since is not None and time.monotonic() - since >= self.patience:
            hint = self._hint(self.error)
            raise LedgerError(
                f"Writing to the ledger {self._where} is failing ({self.error}); "
                f"about {self._queue.qsize()} records wait in memory and are "
                f"retried. {hint}"
            )

    def _file_hint(self, error: BaseException | None) -> str:
        if error is not None and is_damaged(error):
            return f"The file is damaged. {damaged_hint(self._where)}"
        return "Check the disk (space, permissions, another process's lock)."

    def request_flush(self) -> _Flush:
        """Queue a flush marker (call it where `put` may be called)."""
        marker = _Flush()
        self.put(marker)
        return marker

    def wait(self, marker: _Flush, timeout: float | None = None) -> None:
        """Wait until everything queued before `marker` is written."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not marker.done.wait(0.05):
            self.check()
            if deadline is not None and time.monotonic() > deadline:
                raise LedgerError(
                    f"Flushing the ledger {self._where} timed out after {timeout} s."
                )

    def stop(self) -> None:
        """Write everything queued, then end the thread (queue nothing after)."""
        self._stopping.set()
        self._queue.append(_STOP)
        self._wake.set()
        self._thread.join()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after `stop()`)."""
        self._thread.join(timeout)

    def _run(self) -> None:
        queue, wake = self._queue, self._wake
        stop = False
        while not stop:
            self._idle = True
            if not queue:  # (a record queued after this check sets `wake`)
                wake.wait()
            self._idle = False
            wake.clear()
            if self._interval > 0 and not self._urgent():
                wake.wait(self._interval)  # let records gather into one batch
                wake.clear()
            stop = self._drain()

    def _urgent(self) -> bool:
        """Whether what waits should be written without gathering more."""
        return (
            len(self._queue) >= self._size
            or self._flushes > 0
            or self._stopping.is_set()
        )

    def _drain(self) -> bool:
        """Write everything waiting, in batches; True once `_STOP` was taken."""
        popleft, size = self._queue.popleft, self._size
        stop = False
        while True:
            batch: list[CallRecord] = []
            flushes: list[_Flush] = []
            while len(batch) < size:
                try:
                    item = popleft()
                except IndexError:
                    break
                if item is _STOP:
                    stop = True
                    break
                if type(item) is _Flush:
                    flushes.append(item)
                elif isinstance(item, list):
                    batch.extend(item)
                elif isinstance(item, CallRecord):
                    batch.append(item)
                else:  # a `DeferredRecords`: its records are built here
                    batch.extend(_built(item))
            with self._room:  # room for waiting producers
                self._flushes -= len(flushes)
                self._room.notify_all()
            if batch:
                self._commit(batch)
            for marker in flushes:
                marker.done.set()
            if stop or not (batch or flushes):
                return stop

    def _commit(self, batch: list[CallRecord]) -> None:
        delay, attempts = 0.05, 0
        while True:
            attempts += 1
            try:
                self._write(batch)
            except Exception as e:  # sqlite3.Error, OSError, MemoryError, ...
                if self.error is None:
                    logger.error(
                        "Ledger write to %s failed, retrying: %s", self._where, e
                    )
                    self._failing_since = time.monotonic()
                self.error = e
                if self._stopping.is_set() and attempts >= _GIVE_UP_ATTEMPTS:
                    self.lost += len(batch)
                    logger.error("Lost %d ledger records: %s", len(batch), e)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                if self.error is not None:
                    logger.warning("Ledger writes to %s recovered.", self._where)
                    self.error = self._failing_since = None
                return
