"""The record of one priced upstream attempt, shared by trackers, ledgers, reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Literal, Protocol

Outcome = Literal["ok", "error", "cancelled"]


@dataclass(frozen=True)
class TokenUsage:
    """Token counts of one reply, as the server billed them.

    `cached` is the part of `input` read from the prompt cache; `reasoning` is the
    part of `output` spent on hidden reasoning. Both are already included in
    `input` / `output`.
    """

    input: int = 0
    output: int = 0
    cached: int = 0
    reasoning: int = 0

    @property
    def total(self) -> int:
        """Input plus output tokens."""
        return self.input + self.output

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input + other.input,
            self.output + other.output,
            self.cached + other.cached,
            self.reasoning + other.reasoning,
        )


@dataclass(frozen=True)
class CallRecord:
    """One upstream attempt (a successful call is its last attempt).

    Attributes:
        timestamp: wall-clock time the attempt ended (`time.time()`).
        run_id: the LangChain run id of the chat-model call, as a string.
        requested_model: the model the caller asked for.
        served_model: the model that answered (or was attempted, on error).
        outcome: "ok", "error" or "cancelled".
        usage: the billed tokens (zero for a failed attempt that billed nothing).
        cost: the cost in `currency`, or `None` when the model is unpriced.
        currency: the currency of `cost` ("USD").
        latency_ms: time from the start of the attempt to its end.
        ttft_ms: time to the first streamed token, for streams.
        attempt: 1-based attempt number within the call.
        is_retry: True if this attempt repeated the same route after a failure.
        is_fallback: True if this attempt used a route other than the first.
        error: the error class name (and status code) of a failed attempt.
        tags: the run's tags.
        metadata: selected string metadata of the run (user, thread, ...).
        estimated: `usage` is an estimate: the attempt was billed but ended
            without a usage block (a cut or abandoned stream), so its tokens
            were estimated from the prompt and the text delivered.
        key_name: the name of the virtual key the call was made with (a
            `holysheep serve` client), never the key itself; `None` otherwise.
        model_group: the model group (alias) the caller asked for when a
            server routes one name to several models; `None` otherwise.
    """

    timestamp: float
    run_id: str
    requested_model: str
    served_model: str
    outcome: Outcome
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost: Decimal | None = None
    currency: str = "USD"
    latency_ms: float | None = None
    ttft_ms: float | None = None
    attempt: int = 1
    is_retry: bool = False
    is_fallback: bool = False
    error: str | None = None
    tags: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    estimated: bool = False
    key_name: str | None = None
    model_group: str | None = None

    @property
    def priced(self) -> bool:
        """False when the served model has no known price."""
        return self.cost is not None


_FIELDS = frozenset(f.name for f in fields(CallRecord))
_new = object.__new__


def make_call_record(**values: Any) -> CallRecord:
    """A `CallRecord` from every one of its fields, built without `__init__`.

    The dataclass `__init__` of a frozen class sets each field through
    `object.__setattr__`; filling the instance dictionary at once is several
    times cheaper, for the spend tracker's per-call path.

    Raises:
        TypeError: a field is missing or unknown.
    """
    if len(values) != len(_FIELDS) or not _FIELDS.issuperset(values):
        missing = sorted(_FIELDS.difference(values))
        unknown = sorted(set(values).difference(_FIELDS))
        raise TypeError(
            f"make_call_record() needs every CallRecord field: missing {missing}, "
            f"unknown {unknown}"
        )
    rec: CallRecord = _new(CallRecord)
    rec.__dict__.update(values)
    return rec


class DeferredRecords(Protocol):
    """A call whose records are built when first asked for.

    A spend tracker counts such a call in a batch, and a ledger's writer thread
    stores it (`record_deferred`): the work happens off the call's path. Every
    ask returns the same records.
    """

    def records(self) -> Sequence[CallRecord]:
        """The call's records, the last one final."""
        ...
