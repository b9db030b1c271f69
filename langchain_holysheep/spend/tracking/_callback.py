"""`HolySheepCallbackHandler`: prices every chat-model run and enforces budgets.

The handler is stateless between runs except for a per-run dictionary cleaned
at the run's end or error; every counter lives in a `SpendTracker` (shared and
locked), so many handler instances can feed one tracker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_holysheep._contract import ATTEMPT_EVENT
from langchain_holysheep.spend.budgets._budget import Budget
from langchain_holysheep.spend.budgets._cost import CallShape, call_cost, call_shape
from langchain_holysheep.spend.budgets._errors import BudgetError
from langchain_holysheep.spend.budgets._inflight import RESERVATIONS, allowed_routes
from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.records import TokenUsage
from langchain_holysheep.spend.tracking import _extract as extract
from langchain_holysheep.spend.tracking._attempts import (
    RunState,
    build_records,
    with_billed_failures,
)
from langchain_holysheep.spend.tracking._logfilter import quiet_budget_refusals
from langchain_holysheep.spend.tracking._openai_compat import OpenAICallbackCompat
from langchain_holysheep.spend.tracking._runtree import RunTree
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

#: Run metadata key under which a `Budget` (or a list of them) may be attached.
BUDGET_METADATA_KEY = "holysheep_budget"
_METADATA_KEYS = frozenset(
    ("user", "user_id", "thread_id", "session_id", "tenant", "team")
)


def _run_metadata(
    metadata: Mapping[str, Any], budgets: list[Budget]
) -> tuple[tuple[str, str], ...]:
    """The run metadata a record keeps: user, thread, ... and budget scopes."""
    keys = _METADATA_KEYS
    if budgets:
        keys = keys | {b.scope for b in budgets}
    elif keys.isdisjoint(metadata):  # the usual run: none of them
        return ()
    return tuple(
        [
            (k, str(v))
            for k, v in metadata.items()
            if k in keys and isinstance(v, (str, int))
        ]
    )


def _budgets_in(metadata: Mapping[str, Any] | None) -> list[Budget]:
    value = (metadata or {}).get(BUDGET_METADATA_KEY)
    if value is None:
        return []
    if isinstance(value, Budget):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return [b for b in value if isinstance(b, Budget)]
    return []


class HolySheepCallbackHandler(OpenAICallbackCompat, RunTree):
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
        root = self._enter(run_id, parent_run_id)
        try:
            params = kwargs.get("invocation_params") or _NO_PARAMS
            requested = extract.requested_model_of(params, metadata)
            budgets = self.budgets
            meta: tuple[tuple[str, str], ...] = ()
            if metadata:
                if BUDGET_METADATA_KEY in metadata:
                    budgets = budgets + [
                        b for b in _budgets_in(metadata) if b not in budgets
                    ]
                meta = _run_metadata(metadata, budgets)
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

    def _reserve(
        self,
        run_id: UUID,
        root: UUID,
        budgets: list[Budget],
        request: tuple[list[list[Any]], Any],
        params: Mapping[str, Any],
        requested: str,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
    ) -> CallShape | None:
        try:
            shape = call_shape(request[0], params, requested, request[1])
            costs = {id(b): call_cost(b, shape, self.pricebook) for b in budgets}
            for m in {
                m for routes, _ in costs.values() for m, c in routes if c is None
            }:
                self.pricebook.cost(m, TokenUsage())  # the one-time warning
        except Exception:
            _logger.exception("HolySheep spend: could not estimate the call's cost")
            return None
        for budget in budgets:
            if RESERVATIONS.has(run_id, budget):
                continue
            routes, combine = costs[id(budget)]
            try:
                res = budget.reserve_routes(
                    routes,
                    budget.scope_key(tags, metadata),
                    run_key=str(root),
                    combine=combine,
                    lease=shape.lease(budget.lease),
                )
            except BudgetError:
                for held in RESERVATIONS.pop(run_id):
                    held.release()
                self._leave(run_id)
                for tracker in self._trackers:
                    tracker.record_rejected()
                raise
            RESERVATIONS.add(run_id, budget, res)
            if budget.window == "run":
                self._root_budgets.setdefault(root, set()).add(budget)
        return shape

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

    def _renew(self, run_id: UUID, run: RunState) -> None:
        """Renew the leases of a long stream's reservations (a third of the way)."""
        now = time.perf_counter()
        lease = min(b.lease for b in run.budgets)
        if now - run.renewed < lease / 3:
            return
        run.renewed = now
        for res in RESERVATIONS.held(run_id):
            res.extend()

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
        try:
            named = extract.usage_metadata_of(response)
        except Exception:
            _logger.exception("HolySheep spend: could not read run %s usage", run_id)
            named = None
        self._finish(run_id, response, None, named)

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
