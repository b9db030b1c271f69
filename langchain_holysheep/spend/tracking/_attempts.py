"""The records of one chat-model run: its failed attempts and its final outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from langchain_holysheep.spend.budgets._budget import Budget
from langchain_holysheep.spend.budgets._cost import CallShape
from langchain_holysheep.spend.budgets._estimate import (
    estimate_prompt_tokens,
    estimate_text_tokens,
)
from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.records import (
    CallRecord,
    Outcome,
    TokenUsage,
    make_call_record,
)
from langchain_holysheep.spend.tracking import _extract as extract

__all__ = [
    "FIRST_TRY",
    "RunState",
    "build_records",
    "final_record",
    "with_billed_failures",
]

_logger = logging.getLogger("langchain_holysheep.spend.tracking._callback")


@dataclass(slots=True)
class RunState:
    """What a handler keeps about a chat-model run in flight."""

    start: float
    requested: str
    root: UUID
    budgets: list[Budget]
    tags: tuple[str, ...]
    metadata: tuple[tuple[str, str], ...]
    first_token: float | None = None
    failures: list[extract.Outcome] = field(default_factory=list)
    shape: CallShape | None = None
    renewed: float = 0.0
    messages: Sequence[Sequence[Any]] = ()
    tools: Any = None


def build_records(
    run: RunState,
    run_id: UUID,
    response: Any,
    error: BaseException | None,
    pricebook: PriceBook,
) -> tuple[list[CallRecord], Decimal | None]:
    """The `CallRecord`s of a finished run (failed attempts first) and its cost.

    The cost is `None` when the served model is unpriced or an answer reported
    no usage; a failed call that reported no usage and delivered nothing cost
    0 on a priced model. A failed call that delivered content without a usage
    block (a cut or abandoned stream) was billed: its last attempt carries
    estimated usage (`estimated=True`).
    """
    now = time.perf_counter()
    message = extract.final_message(response)
    meta = getattr(message, "response_metadata", None) or _EMPTY
    raw_hs = meta.get("holysheep")
    hs = raw_hs if raw_hs is not None and isinstance(raw_hs, Mapping) else _EMPTY
    served = meta.get("model_name") or hs.get("served_model") or run.requested
    usage = extract.usage_of(response, message)
    failures = run.failures or (extract.failures_of(hs) if hs else [])
    stamp, rid = time.time(), str(run_id)
    if error is None and not failures:  # the usual call: one answered attempt
        cost = _cost(served, usage, None, pricebook)
        position = _final_position(run, hs, failures) if hs else FIRST_TRY
        final = final_record(run, rid, stamp, served, usage, cost, now, position)
        return [final], cost
    records = _failure_records(run, failures, pricebook, stamp, rid)
    delivered = _delivered(message) if usage is None and error is not None else ""
    if delivered:  # billed without a usage block: estimated, never zero
        usage = estimate_usage(run, delivered)
        if failures:  # the router listed the broken attempt: it carries the bill
            last = records[-1]
            cost = pricebook.cost(last.served_model, usage)
            records[-1] = replace(last, usage=usage, cost=cost, estimated=True)
            return records, cost
    cost = _cost(served, usage, error, pricebook)
    if error is not None and failures and usage is None:
        return records, cost  # the router reported every failed attempt
    position = _final_position(run, hs, failures)
    records.append(
        final_record(
            run, rid, stamp, served, usage, cost, now, position, error, delivered
        )
    )
    return records, cost


_EMPTY: Mapping[str, Any] = {}
FIRST_TRY = (1, False, False)
"""`_final_position` of a run the router said nothing about: attempt 1."""


class _Started(Protocol):
    """What a final record reads of its run (a `RunState`, an `Answer`)."""

    start: float
    first_token: float | None
    requested: str
    tags: tuple[str, ...]
    metadata: tuple[tuple[str, str], ...]


def final_record(
    run: _Started,
    run_id: str,
    stamp: float,
    served: str,
    usage: TokenUsage | None,
    cost: Decimal | None,
    now: float,
    position: tuple[int, bool, bool],
    error: BaseException | None = None,
    delivered: str = "",
) -> CallRecord:
    """The record of the run's final attempt (the answer, or the last failure)."""
    first = run.first_token
    return make_call_record(
        timestamp=stamp,
        run_id=run_id,
        requested_model=run.requested,
        served_model=served,
        outcome="ok" if error is None else _outcome(error),
        usage=usage or _NO_USAGE,
        cost=cost,
        currency="USD",
        latency_ms=(now - run.start) * 1000,
        ttft_ms=None if first is None else (first - run.start) * 1000,
        attempt=position[0],
        is_retry=position[1],
        is_fallback=position[2],
        error=None if error is None else extract.error_label(error),
        tags=run.tags,
        metadata=run.metadata,
        estimated=bool(delivered),
        key_name=None,
        model_group=None,
    )


_NO_USAGE = TokenUsage()


def _delivered(message: Any) -> str:
    """The text and tool-call arguments a broken or abandoned answer delivered."""
    if message is None:
        return ""
    parts = [_text(getattr(message, "content", ""))]
    for chunk in getattr(message, "tool_call_chunks", None) or ():
        parts.append(str(chunk.get("name") or "") + str(chunk.get("args") or ""))
    return "".join(parts)


def _text(content: Any) -> str:
    """The text of a message content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p if isinstance(p, str) else str(p.get("text") or "")
            for p in content
            if isinstance(p, (str, Mapping))
        )
    return ""


def estimate_usage(run: RunState, delivered: str) -> TokenUsage:
    """Tokens of an attempt billed without a usage block, estimated.

    The prompt at `estimate_prompt_tokens` of the run's messages (tools
    included) and the output at `estimate_text_tokens` of what was delivered:
    both over-estimate ordinary text, so the spend is never counted as zero
    nor, usually, below the bill.
    """
    prompt = sum(
        estimate_prompt_tokens(batch, tools=run.tools) for batch in run.messages
    )
    return TokenUsage(input=prompt, output=estimate_text_tokens(delivered))


def _estimate_billed(run: RunState, delivered_chars: int) -> TokenUsage:
    """Estimated usage of a failed attempt that delivered `delivered_chars`.

    The prompt as `estimate_usage` counts it; the output at one token per three
    characters, rounded up (as the text estimator counts one word-like piece):
    above ordinary text's ~4 characters per token, so never counted short.
    """
    if not delivered_chars:
        return TokenUsage()
    prompt = estimate_usage(run, "").input
    return TokenUsage(input=prompt, output=(delivered_chars + 2) // 3)


def _failure_records(
    run: RunState,
    failures: list[extract.Outcome],
    pricebook: PriceBook,
    stamp: float,
    run_id: str,
) -> list[CallRecord]:
    """One error record per failed attempt, in order."""
    records: list[CallRecord] = []
    for i, f in enumerate(failures, 1):
        prev = failures[i - 2].model if i > 1 else None
        # a stream that broke after content was billed: estimated, never zero
        usage = _estimate_billed(run, f.delivered_chars)
        priced = pricebook.is_priced(f.model)
        records.append(
            CallRecord(
                served_model=f.model,
                outcome="error",
                usage=usage,
                estimated=bool(f.delivered_chars),
                cost=(pricebook.cost(f.model, usage) if priced else None),
                latency_ms=f.elapsed_ms,
                attempt=i,
                is_retry=prev == f.model,
                is_fallback=(f.route_index or 0) > 0 or f.model != run.requested,
                error=f.error,
                timestamp=stamp,
                run_id=run_id,
                requested_model=run.requested,
                tags=run.tags,
                metadata=run.metadata,
            )
        )
    return records


def _cost(
    served: str,
    usage: TokenUsage | None,
    error: BaseException | None,
    pricebook: PriceBook,
) -> Decimal | None:
    """The final attempt's cost (`None`: unpriced, or no usage on an answer)."""
    if usage is not None:
        return pricebook.cost(served, usage)
    if error is not None and pricebook.is_priced(served):
        return Decimal(0)  # a failed call that reported no usage billed nothing
    if error is None:
        _warn_no_usage(served)
    return None


def _outcome(error: BaseException | None) -> Outcome:
    if error is None:
        return "ok"
    cancelled = type(error).__name__ in ("CancelledError", "KeyboardInterrupt")
    return "cancelled" if cancelled else "error"


def _final_position(
    run: RunState, hs: Mapping[str, Any], failures: list[extract.Outcome]
) -> tuple[int, bool, bool]:
    """The final attempt's number, and whether it was a retry, a fallback."""
    route_model = hs.get("served_model") or run.requested
    route_index = hs.get("route_index")
    attempt = hs.get("attempts") if isinstance(hs.get("attempts"), int) else None
    if isinstance(route_index, int):
        is_fallback = route_index > 0
    else:
        is_fallback = route_model != run.requested
    return (
        max(attempt or 0, len(failures) + 1),
        bool(failures) and failures[-1].model == route_model,
        is_fallback,
    )


_no_usage_warned: set[str] = set()


def _warn_no_usage(model: str) -> None:
    if model in _no_usage_warned:
        return
    _no_usage_warned.add(model)
    _logger.warning(
        "HolySheep spend: a %s answer reported no token usage, so its cost is "
        "unknown (reported unpriced). For streams through a gateway, set "
        "stream_usage=True on the chat model.",
        model,
    )


def with_billed_failures(
    cost: Decimal | None, failed: Sequence[CallRecord]
) -> Decimal | None:
    """The call's cost plus what its broken, billed attempts cost (estimated).

    A stream that broke after content was billed although no usage came; when
    a later attempt answered, the budget is charged for both.
    """
    if cost is None:
        return None
    return cost + sum(
        (r.cost for r in failed if r.estimated and r.cost is not None), Decimal(0)
    )
