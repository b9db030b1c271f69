"""The `RecordSink` protocol: where the spend tracker forwards every `CallRecord`.

A sink is anything with a `record(rec)` method (a SQLite ledger, Prometheus
metrics, a test list). `close()` is optional; `close_sink()` calls it if present.
So is `record_deferred(call)`, for a sink that can take a call whose records are
built later (`DeferredRecords`, as the ledgers' writer threads build them): when
every sink of a tracker has it, usual answers reach the sinks that way.

Sinks are called synchronously, under no lock of the tracker, from whatever thread
finished the call: a sink must be thread-safe and cheap (or hand off to its own
worker thread). An exception raised by a sink is logged and swallowed; it never
fails the chat-model call.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from langchain_holysheep.spend.records import CallRecord

__all__ = ["ListSink", "RecordSink", "close_sink"]


@runtime_checkable
class RecordSink(Protocol):
    """Receives every `CallRecord` the spend tracker produces.

    Implementations may also define `close(self) -> None` and
    `record_deferred(self, call: DeferredRecords) -> None`; both are optional.
    """

    def record(self, rec: CallRecord) -> None:
        """Store or publish one record. Must be thread-safe."""
        ...


def close_sink(sink: RecordSink) -> None:
    """Call `sink.close()` when the sink defines it."""
    close = getattr(sink, "close", None)
    if callable(close):
        close()


class ListSink:
    """A sink that keeps records in a list (for tests and small scripts)."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def record(self, rec: CallRecord) -> None:
        """Append `rec` (list.append is atomic under the GIL)."""
        self.records.append(rec)
