"""`Answer`: a usual answered call, kept as read at its end and recorded later.

Most calls are one answered attempt that reported its usage, with no router
metadata and no reservation to settle. For those, the handler keeps what the
call's end says (the served model, a copy of its `usage_metadata`, the clocks)
and the record is built and priced later, once, by whoever asks first: the
tracker counting the call (in a batch, by the next read) or a ledger's writer
thread. It is the record `build_records` makes at the call's end: same fields,
same clocks, same cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration

from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.records import CallRecord
from langchain_holysheep.spend.tracking._attempts import (
    FIRST_TRY,
    RunState,
    final_record,
)
from langchain_holysheep.spend.tracking._extract import (
    usage_copy,
    usage_from_metadata,
)

__all__ = ["Answer", "read_answer"]

if TYPE_CHECKING:
    from langchain_core.messages.ai import UsageMetadata


def read_answer(response: Any) -> tuple[Any, UsageMetadata, bool] | None:
    """`(model_name, usage copy, LangChain counts it)` of a usual answer, or `None`.

    A usual answer is the first generation's message with `usage_metadata` and
    no `response_metadata["holysheep"]`. "LangChain counts it" as
    `get_usage_metadata_callback()` does: a `ChatGeneration` of an `AIMessage`
    with a `model_name`.
    """
    try:
        generation = response.generations[0][0]
        message = generation.message
        meta = message.response_metadata
        usage = message.usage_metadata
    except (AttributeError, IndexError, TypeError):
        return None
    if not usage or "holysheep" in meta:
        return None
    name = meta.get("model_name")
    counted = bool(name) and isinstance(message, AIMessage)
    copied: UsageMetadata = usage_copy(usage)  # type: ignore[assignment]
    return name, copied, counted and isinstance(generation, ChatGeneration)


class Answer:
    """A usual answered call; `records()` builds and prices its one record.

    Keeps what its record needs and nothing else of the run (not its prompt).
    The record is built once, by the first to ask (a tracker counting the call,
    a ledger's writer thread); two threads asking at once build equal records.
    """

    __slots__ = (
        "_book",
        "_end",
        "_records",
        "_run_id",
        "_served",
        "_usage",
        "first_token",
        "metadata",
        "requested",
        "start",
        "tags",
    )

    def __init__(
        self,
        run: RunState,
        run_id: UUID,
        end: tuple[float, float],
        served: str,
        usage: UsageMetadata,
        book: PriceBook,
    ) -> None:
        self.start, self.first_token = run.start, run.first_token
        self.requested, self.tags, self.metadata = run.requested, run.tags, run.metadata
        self._run_id, self._end = run_id, end
        self._served, self._usage, self._book = served, usage, book
        self._records: tuple[CallRecord] | None = None

    def records(self) -> tuple[CallRecord]:
        """The call's record, as `build_records` builds it at the call's end."""
        built = self._records
        if built is None:
            usage = usage_from_metadata(self._usage)
            cost = self._book.cost(self._served, usage, warn=False)  # warned at end
            now, stamp = self._end
            rid = str(self._run_id)
            built = (
                final_record(
                    self, rid, stamp, self._served, usage, cost, now, FIRST_TRY
                ),
            )
            self._records = built
        return built
