"""`HolySheepCallbackHandler`: prices every chat-model run and enforces budgets.

The handler is stateless between runs except for a per-run dictionary cleaned
at the run's end or error; every counter lives in a `SpendTracker` (shared and
locked), so many handler instances can feed one tracker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_holysheep._contract import ATTEMPT_EVENT
from langchain_holysheep.spend.budgets._budget import Budget
from langchain_holysheep.spend.budgets._inflight import RESERVATIONS, allowed_routes
from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.tracking import _extract as extract
from langchain_holysheep.spend.tracking._answer import Answer, read_answer
from langchain_holysheep.spend.tracking._attempts import (
    RunState,
    build_records,
    with_billed_failures,
)
from langchain_holysheep.spend.tracking._logfilter import quiet_budget_refusals
from langchain_holysheep.spend.tracking._openai_compat import OpenAICallbackCompat
from langchain_holysheep.spend.tracking._reserving import (
    BUDGET_METADATA_KEY,
    METADATA_KEYS,
    Reserving,
    budgets_in,
    run_metadata,
)
from langchain_holysheep.spend.tracking._sinks import RecordSink
from langchain_holysheep.spend.tracking._summary import SpendReport
from langchain_holysheep.spend.tracking._tracker import SpendTracker

if TYPE_CHECKING:
    from langchain_core.messages.ai import UsageMetadata

__all__ = [
    "ATTEMPT_EVENT",
    "BUDGET_METADATA_KEY",
    "HolySheepCallbackHandler",
    "allowed_routes",
]

_logger = logging.getLogger(__name__)
_NO_PARAMS: Mapping[str, Any] = {}
_STOCK_COST = PriceBook.cost


class HolySheepCallbackHandler(OpenAICallbackCompat, Reserving):
    """Prices every chat-model run it sees and enforces budgets before the call.

    Works with any LangChain chat model (`ChatHolySheep`, `ChatOpenAI`, ...).
    Spend is attributed to the model that answered
    (`response_metadata["model_name"]`). It reads like the handlers of
    `get_openai_callback()` and `get_usage_metadata_callback()`
    (`prompt_tokens`, `total_cost`, `usage_metadata`, ... see
    `OpenAICallbackCompat`), and `str(handler)` prints the same summary.
    Budgets attached to the handler, or to a run through
    `config={"metadata": {"holysheep_budget": budget}}`, reserve the call's
    worst-case cost in `on_chat_model_start`; a refusal raises
    `BudgetExceededError` there, so no request is sent (`raise_error=True`).
    Any other problem in the handler is logged, never raised.

    Args:
        budget: one `Budget` or several.
        tracker: where the numbers go (default: a new `SpendTracker`).
        pricebook: the prices (default: the tracker's).
        ledger: a `RecordSink` (e.g. `SQLiteLedger`) added to the tracker.
        parent: an enclosing handler whose budgets also apply and whose
            tracker also receives the records (nested tracking blocks).

    What a budget reserves is its choice (`Budget(estimate=...)`): by default a
    hard bound over every attempt of every route (see
    `langchain_holysheep.spend.budgets._cost`).

    Example:
        ```python
        handler = HolySheepCallbackHandler(budget=Budget("1.00"))
        llm.invoke("hi", config={"callbacks": [handler]})
        print(handler.report())
        print(handler)  # Tokens Used: ... Total Cost (USD): $...
        ```
    """

    raise_error: bool = True
    run_inline: bool = True

    def __init__(
        self,
        budget: Budget | Sequence[Budget] | None = None,
        *,
        tracker: SpendTracker | None = None,
        pricebook: PriceBook | None = None,
        ledger: RecordSink | None = None,
        parent: HolySheepCallbackHandler | None = None,
    ) -> None:
        super().__init__()
        quiet_budget_refusals()  # idempotent; installed with the first handler
        if budget is None:
            own: list[Budget] = []
        elif isinstance(budget, Budget):
            own = [budget]
        else:
            own = list(budget)
            if not all(isinstance(b, Budget) for b in own):
                raise TypeError("budget must be a Budget or a sequence of Budgets")
        self.tracker = tracker if tracker is not None else SpendTracker(pricebook)
        self.pricebook = pricebook if pricebook is not None else self.tracker.pricebook
        if ledger is not None:
            self.tracker.add_sink(ledger)
        self.budgets: list[Budget] = own + (parent.budgets if parent else [])
        self._trackers: list[SpendTracker] = [self.tracker] + (
            [t for t in parent._trackers if t is not self.tracker] if parent else []
        )
        self._runs: dict[UUID, RunState] = {}
        self._priced: set[str] = set()  # served models the price book prices

    # -- numbers ----------------------------------------------------------------
    def report(self) -> SpendReport:
        """The tracker's report."""
        return self.tracker.report()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(budgets={len(self.budgets)}, {self.tracker!r})"

    # -- chat-model runs ----------------------------------------------------------
    def on_chat_model_start(
        self,
        serialized: Any,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start the clock and reserve the call's worst case in every budget."""
        start = time.perf_counter()
        root = run_id if parent_run_id is None else self._enter(run_id, parent_run_id)
        try:
            params = kwargs.get("invocation_params") or _NO_PARAMS
            requested = params.get("model")
            if not requested or type(requested) is not str:
                requested = extract.requested_model_of(params, metadata)
            budgets = self.budgets
            meta: tuple[tuple[str, str], ...] = ()
            if metadata:
                if BUDGET_METADATA_KEY in metadata:
                    budgets = budgets + [
                        b for b in budgets_in(metadata) if b not in budgets
                    ]
                if budgets or not METADATA_KEYS.isdisjoint(metadata):
                    meta = run_metadata(metadata, budgets)
        except Exception:
            _logger.exception("HolySheep spend: could not read the run's start")
            return
        shape = None
        if budgets:
            shape = self._reserve(
                run_id,
                root,
                budgets,
                (messages, serialized),
                params,
                requested,
                tags,
                metadata,
            )
        self._runs[run_id] = RunState(
            start,
            requested,
            root,
            budgets,
            tuple(tags) if tags else (),
            meta,
            None,  # positional, for the per-call path: first_token, failures, ...
            [],
            shape,
            start,
            messages,
            params.get("tools"),
        )

    def on_llm_new_token(
        self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any
    ) -> None:
        """Note the time of the first streamed content (time to first token)."""
        run = self._runs.get(run_id)
        if run is None:
            return
        if run.budgets:
            self._renew(run_id, run)
        if run.first_token is not None:
            return
        message = getattr(chunk, "message", None)
        if token or getattr(message, "tool_call_chunks", None):
            run.first_token = time.perf_counter()

    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Collect failed attempts reported by the router (`holysheep_attempt`)."""
        if name != ATTEMPT_EVENT:
            return
        run = self._runs.get(run_id)
        failure = extract.attempt_failure(data) if run is not None else None
        if run is not None and failure is not None:
            run.failures.append(failure)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Price the answer, settle the reservations, record the call."""
        run = self._runs.get(run_id)
        if run is not None and self._hand_over(run, run_id, response):
            return
        try:
            named = extract.usage_metadata_of(response)
        except Exception:
            _logger.exception("HolySheep spend: could not read run %s usage", run_id)
            named = None
        self._finish(run_id, response, None, named)

    def _hand_over(self, run: RunState, run_id: UUID, response: Any) -> bool:
        """Give a usual answer to the tracker, recorded and priced when counted.

        Only when nothing needs the record at the call's end: no reservation
        (this handler's or another's) to settle, one tracker whose sinks (if
        any) take deferred records (a ledger's writer thread builds them), the
        stock `PriceBook.cost`, and a priced model (an unpriced one warns now).
        """
        end = (time.perf_counter(), time.time())
        trackers, book = self._trackers, self.pricebook
        if (
            run.failures
            or len(trackers) > 1
            or not trackers[0].takes_deferred
            or type(book).cost is not _STOCK_COST
            or RESERVATIONS.holds(run_id)
        ):
            return False
        read = read_answer(response)
        if read is None:
            return False
        name, usage, counted = read
        served = name or run.requested
        if served not in self._priced:
            if not book.is_priced(served):
                return False
            if len(self._priced) > 10_000:
                self._priced.clear()
            self._priced.add(served)
        del self._runs[run_id]
        answer = Answer(run, run_id, end, served, usage, book)
        trackers[0].record_deferred(answer, (str(name), usage) if counted else None)
        self._leave(run_id)
        return True

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Record the failure; settle what a broken stream billed, release the rest."""
        self._finish(run_id, kwargs.get("response"), error)

    def _finish(
        self,
        run_id: UUID,
        response: Any,
        error: BaseException | None,
        named: tuple[str, UsageMetadata] | None = None,
    ) -> None:
        run = self._runs.pop(run_id, None)
        reservations = RESERVATIONS.pop(run_id)
        cost: Decimal | None = None
        usage_unknown = False
        try:
            if run is not None:
                records, cost = build_records(
                    run, run_id, response, error, self.pricebook
                )
                if len(records) > 1:
                    cost = with_billed_failures(cost, records[:-1])
                if reservations:
                    final = records[-1]
                    usage_unknown = final.outcome == "ok" and not final.usage.total
                for tracker in self._trackers:
                    tracker.record_call(records, usage_metadata=named)
                named = None
        except Exception:
            _logger.exception("HolySheep spend: could not record run %s", run_id)
        finally:
            if named is not None:  # an answer LangChain counts, whatever we could
                for tracker in self._trackers:
                    tracker.record_usage_metadata(*named)
            for res in reservations:
                # no usage reported for an answer: keep the worst case, to be safe
                res.settle(res.amount if usage_unknown else cost)
            self._leave(run_id)
