"""`SpendLimitMiddleware`: per-run and per-thread budgets in money for agents."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal, NoReturn
from uuid import UUID

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain.agents.middleware.types import AgentState, ExtendedModelResponse
from langchain_core.messages import AIMessage
from langgraph.channels.untracked_value import UntrackedValue
from langgraph.types import Command
from typing_extensions import NotRequired

from langchain_holysheep.middleware._runconfig import (
    quiet_budget_refusals,
    scoped_config,
)
from langchain_holysheep.middleware._validate import check_spend_limit_args
from langchain_holysheep.spend import (
    Budget,
    BudgetError,
    BudgetExceededError,
    HolySheepCallbackHandler,
    PriceBook,
    UnpricedCallError,
    format_money,
)
from langchain_holysheep.spend.budgets._errors import BudgetCheckError, display_places
from langchain_holysheep.spend.budgets._inflight import RESERVATIONS
from langchain_holysheep.spend.tracking._extract import requested_model_of

__all__ = [
    "BudgetCheckError",
    "SpendLimitExceededError",
    "SpendLimitMiddleware",
    "SpendState",
]

_ZERO = Decimal(0)


class SpendState(AgentState[Any]):
    """Agent state with the spend of the thread and of the current run (USD).

    `thread_spend_usd` is checkpointed with the thread (it adds up over runs when
    the agent has a checkpointer); `run_spend_usd` starts at zero on every
    `invoke` / `stream`. `unpriced_model_calls` counts calls answered by a model
    with no known price (their cost is not in the totals).
    """

    thread_spend_usd: NotRequired[Decimal]
    run_spend_usd: NotRequired[Annotated[Decimal, UntrackedValue]]
    unpriced_model_calls: NotRequired[int]


class SpendLimitExceededError(BudgetError):
    """An agent's spend limit would be exceeded by its next model call.

    A non-retryable LangChain `ModelError` (see `BudgetError`): LangChain's
    `ModelRetryMiddleware` passes it on without retrying.

    Attributes:
        scope: "run" or "thread".
        limit: that scope's limit (USD).
        spent: what the scope had spent (USD).
        detail: the budget's own explanation, when a budget refused the call.
        requested: the worst case of the refused call (USD), when known.
        model: the model of the refused call, when known.
        unpriced: the models refused because no price is known for them
            (`allow_unpriced=False`).
    """

    def __init__(
        self,
        scope: str,
        limit: Decimal,
        spent: Decimal,
        detail: str = "",
        *,
        requested: Decimal | None = None,
        model: str | None = None,
        unpriced: Sequence[str] = (),
    ) -> None:
        self.scope, self.limit, self.spent, self.detail = scope, limit, spent, detail
        self.requested, self.model, self.unpriced = requested, model, list(unpriced)
        super().__init__(self._message())

    def _usd(self) -> Callable[[Decimal], str]:
        left = max(self.limit - self.spent, _ZERO)
        amounts = [self.limit, self.spent, left]
        larger = None
        if self.requested is not None:
            amounts.append(self.requested)
            larger = (self.requested, left)
        places = display_places(*amounts, larger=larger)
        return lambda amount: format_money(amount, places=places)

    def _message(self) -> str:
        usd = self._usd()
        arg = f"{self.scope}_limit"
        fresh = "start a new run" if self.scope == "run" else "use a new thread"
        if self.unpriced:
            models = ", ".join(map(repr, self.unpriced))
            return (
                f"Agent spend limit of this {self.scope} cannot be checked: no price "
                f"is known for {models}, so the next model call's cost cannot be "
                f"counted against {arg} ({usd(self.spent)} spent of "
                f"{usd(self.limit)}). No request was sent. Add a price "
                "(pricebook=PriceBook({...}) or $HOLYSHEEP_PRICING_FILE) or pass "
                "allow_unpriced=True."
            )
        spent = (
            f"Agent spend limit reached: this {self.scope} has spent "
            f"{usd(self.spent)} of its {arg} of {usd(self.limit)}"
        )
        if self.requested is None:
            return (
                f"{spent}, so nothing is left for another model call. No request "
                f"was sent. Raise {arg} or {fresh}."
            )
        left = max(self.limit - self.spent, _ZERO)
        call = f" ({self.model})" if self.model else ""
        return (
            f"{spent} ({usd(left)} left), and the next model call{call} could "
            f"cost up to {usd(self.requested)} (worst case: prompt x input price "
            "+ max_tokens x output price). No request was sent. Set a lower "
            f"max_tokens on the model, use a cheaper model, raise {arg}, or "
            f"{fresh}."
        )

    def final_text(self) -> str:
        """The final AI message of a run this refusal ends (`exit_behavior="end"`)."""
        usd = self._usd()
        if self.unpriced:
            models = ", ".join(map(repr, self.unpriced))
            return (
                f"I have stopped here: no price is known for {models}, so the "
                "next model call cannot be checked against the spend limit of "
                f"this {self.scope}."
            )
        reached = (
            f"I have stopped here: the spend limit of this {self.scope} is "
            f"reached ({usd(self.spent)} spent of {usd(self.limit)})"
        )
        if self.requested is None:
            return f"{reached}, and nothing is left for another model call."
        return f"{reached}, and the next model call could cost more than what is left."


class _HolySheepStepHandler(HolySheepCallbackHandler):
    """Prices and guards the model calls of one agent model step.

    On top of `HolySheepCallbackHandler`:

    - a refusal is final for the step: once a budget refused a call, every
      further call in the step (a retry, a fallback model tried by a middleware
      inside) is refused with the same error, before anything is sent;
    - it fails closed: a call whose worst case could not be reserved in every
      budget (the base handler only logs such problems) is refused with
      `BudgetCheckError` instead of being sent unchecked.

    The class name contains "HolySheep" so that LangChain's duplicate log line
    for a refusal is silenced (`quiet_budget_refusals`).
    """

    def __init__(self, budgets: list[Budget], pricebook: PriceBook) -> None:
        super().__init__(budgets, pricebook=pricebook)
        self.refusal: BudgetError | None = None

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
        """Reserve the call's worst case, or refuse it."""
        if self.refusal is not None:
            raise self.refusal
        try:
            super().on_chat_model_start(
                serialized,
                messages,
                run_id=run_id,
                parent_run_id=parent_run_id,
                tags=tags,
                metadata=metadata,
                **kwargs,
            )
        except BudgetError as exc:
            self.refusal = exc
            raise
        except Exception as exc:
            self._fail_closed(run_id, kwargs, metadata, exc)
        missing = [b for b in self.budgets if not RESERVATIONS.has(run_id, b)]
        if missing:
            self._fail_closed(run_id, kwargs, metadata, None, missing[0])

    def _fail_closed(
        self,
        run_id: UUID,
        kwargs: dict[str, Any],
        metadata: dict[str, Any] | None,
        cause: Exception | None,
        budget: Budget | None = None,
    ) -> NoReturn:
        # Ends the run in the base handler: what was reserved is released.
        self.on_llm_error(cause or RuntimeError("no reservation"), run_id=run_id)
        try:
            model: str | None = requested_model_of(
                kwargs.get("invocation_params") or {}, metadata
            )
        except Exception:
            model = None
        name = (budget or self.budgets[0]).name
        self.refusal = BudgetCheckError(name, model, cause)
        raise self.refusal from cause


class _StepRefusals:
    """The refusals a middleware raised, by model step (its state object).

    A middleware outside it that catches the refusal and calls it again in the
    same step (`ModelFallbackMiddleware` trying another model) gets the same
    refusal. Each entry keeps its state object, so the key (its id) cannot be
    reused while the entry lives; the oldest entries are dropped past `size`.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[int, tuple[Any, SpendLimitExceededError]] = (
            OrderedDict()
        )

    def add(self, state: Any, err: SpendLimitExceededError) -> None:
        with self._lock:
            self._items[id(state)] = (state, err)
            self._items.move_to_end(id(state))
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def get(self, state: Any) -> SpendLimitExceededError | None:
        with self._lock:
            item = self._items.get(id(state))
        return item[1] if item is not None and item[0] is state else None


class SpendLimitMiddleware(AgentMiddleware[SpendState, Any]):
    """Caps what an agent may spend, per run and per thread, in money.

    LangChain's `ModelCallLimitMiddleware` counts calls; this counts dollars.
    Each model call is priced at the price of the model that *answered* (the
    response's `model_name`, which may be a fallback), every attempt included,
    with `PriceBook` prices (cached and reasoning tokens too). Before each call
    reaches a model, its worst case (estimated prompt x input price +
    `max_tokens` x output price) must fit in what the run and the thread have
    left, so a limit is never overrun; set `max_tokens` on the model, or the
    catalogue's output limit is assumed. When a call does not fit, the run ends
    with a final AI message saying so (`exit_behavior="end"`) or raises
    `SpendLimitExceededError` (`"error"`).

    The spend is in the agent state: `thread_spend_usd` and `run_spend_usd`
    (`Decimal` USD) and `unpriced_model_calls`; each AI message also gets
    `response_metadata["holysheep_spend"]`. Calls to models with no known price
    pass (counted as unpriced), or are refused with `allow_unpriced=False`.

    A refusal is final for the model step: no retry or fallback model is tried
    after it, whatever middleware sits inside or outside (the refusal is a
    non-retryable LangChain `ModelError`; a middleware that turns it into an
    answer or tries another model gets the same refusal). If the worst case of
    a call cannot be reserved (a price book that raises), the call is refused
    with `BudgetCheckError`, whatever `exit_behavior` says: a limit is never
    left unchecked. A refusal by another budget (one given to
    `get_holysheep_callback`, or a run's `holysheep_budget`) passes through
    unchanged.

    Put it first in `middleware=[...]` (outermost) so it sees, and prices,
    every retry and fallback made by the middleware inside it.

    Args:
        run_limit: USD per run (one `invoke` / `stream`), or `None`.
        thread_limit: USD per thread (needs a checkpointer to span runs), or `None`.
        exit_behavior: `"end"` (final AI message) or `"error"` (raise).
        pricebook: the prices (default: catalogue + `HOLYSHEEP_PRICING_FILE`).
        allow_unpriced: let calls to unpriced models through (default `True`).

    Raises:
        ConfigurationError: at construction, for an argument that cannot work
            (the message names it and says what to pass).

    Example:
        ```python
        from langchain.agents import create_agent
        from langchain_holysheep.middleware import SpendLimitMiddleware

        agent = create_agent(
            ChatHolySheep(model="gpt-4.1", max_tokens=512),
            tools=[search],
            middleware=[SpendLimitMiddleware(run_limit="0.05", thread_limit="1.00")],
            checkpointer=InMemorySaver(),
        )
        result = agent.invoke({"messages": [...]}, {"configurable": {"thread_id": "1"}})
        result["run_spend_usd"], result["thread_spend_usd"]
        ```
    """

    state_schema = SpendState  # type: ignore[assignment]

    def __init__(
        self,
        *,
        run_limit: Decimal | str | int | float | None = None,
        thread_limit: Decimal | str | int | float | None = None,
        exit_behavior: Literal["end", "error"] = "end",
        pricebook: PriceBook | None = None,
        allow_unpriced: bool = True,
    ) -> None:
        super().__init__()
        self.run_limit, self.thread_limit = check_spend_limit_args(
            run_limit=run_limit,
            thread_limit=thread_limit,
            exit_behavior=exit_behavior,
            pricebook=pricebook,
            allow_unpriced=allow_unpriced,
        )
        self.exit_behavior: Literal["end", "error"] = exit_behavior
        self.pricebook = pricebook if pricebook is not None else PriceBook()
        self.allow_unpriced = allow_unpriced
        self._refusals = _StepRefusals()
        quiet_budget_refusals()

    # -- bookkeeping ------------------------------------------------------------
    @staticmethod
    def _spent(state: Any) -> tuple[Decimal, Decimal, int]:
        return (
            Decimal(state.get("run_spend_usd") or 0),
            Decimal(state.get("thread_spend_usd") or 0),
            int(state.get("unpriced_model_calls") or 0),
        )

    def _limit(self, scope: str) -> Decimal:
        limit = self.run_limit if scope == "run" else self.thread_limit
        assert limit is not None
        return limit

    def _budgets(self, run: Decimal, thread: Decimal) -> dict[str, Budget] | str:
        """The budgets of one call by name, or the scope already spent.

        Each budget holds what its scope has left; the names map a budget's
        refusal back to its scope ("run" or "thread").
        """
        budgets: dict[str, Budget] = {}
        for scope, spent in (("run", run), ("thread", thread)):
            limit = self.run_limit if scope == "run" else self.thread_limit
            if limit is None:
                continue
            left = limit - spent
            if left <= 0:
                return scope
            name = f"agent {scope}"
            budgets[name] = Budget(
                left,
                window="total",
                thresholds=(),
                strict=not self.allow_unpriced,
                name=name,
                store="memory://",  # a per-call view of the state's spend
            )
        return budgets

    def _exhausted(
        self, scope: str, run: Decimal, thread: Decimal
    ) -> SpendLimitExceededError:
        spent = run if scope == "run" else thread
        return SpendLimitExceededError(scope, self._limit(scope), spent)

    def _refusal(
        self,
        exc: BudgetError,
        spend: _HolySheepStepHandler,
        budgets: dict[str, Budget],
        run: Decimal,
        thread: Decimal,
    ) -> SpendLimitExceededError | None:
        """Our refusal of this model call, or `None` when another budget refused."""
        if exc is not spend.refusal or isinstance(exc, BudgetCheckError):
            return None
        if not isinstance(exc, (BudgetExceededError, UnpricedCallError)):
            return None
        scope = exc.budget.removeprefix("agent ") if exc.budget in budgets else None
        if scope is None:
            return None
        spent = run if scope == "run" else thread
        if isinstance(exc, UnpricedCallError):
            return SpendLimitExceededError(
                scope, self._limit(scope), spent, str(exc), unpriced=exc.models
            )
        return SpendLimitExceededError(
            scope,
            self._limit(scope),
            spent,
            str(exc),
            requested=exc.requested,
            model=exc.model,
        )

    def _stop(
        self,
        request: ModelRequest[Any],
        err: SpendLimitExceededError,
        update: dict[str, Any],
    ) -> ExtendedModelResponse[Any]:
        if self.exit_behavior == "error":
            # An outer ModelFallbackMiddleware would retry this model call with
            # another model: the same step is refused again, with this error.
            self._refusals.add(request.state, err)
            raise err
        message = AIMessage(content=err.final_text())
        message.response_metadata["holysheep_spend"] = {
            "limit_reached": err.scope,
            **{k: str(v) for k, v in update.items() if k.endswith("_usd")},
        }
        return ExtendedModelResponse(
            model_response=ModelResponse(result=[message]),
            command=Command(update=update),
        )

    def _settle(
        self,
        handler: HolySheepCallbackHandler,
        run: Decimal,
        thread: Decimal,
        unpriced: int,
    ) -> tuple[Decimal, dict[str, Any]]:
        report = handler.report()
        cost = report.cost
        update: dict[str, Any] = {
            "run_spend_usd": run + cost,
            "thread_spend_usd": thread + cost,
            "unpriced_model_calls": unpriced + report.unpriced_calls,
        }
        return cost, update

    def _finish(
        self, response: Any, cost: Decimal, update: dict[str, Any]
    ) -> ExtendedModelResponse[Any]:
        model_response = (
            ModelResponse(result=[response])
            if isinstance(response, AIMessage)
            else response
        )
        for message in model_response.result:
            if isinstance(message, AIMessage):
                message.response_metadata["holysheep_spend"] = {
                    "cost_usd": str(cost),
                    "run_spend_usd": str(update["run_spend_usd"]),
                    "thread_spend_usd": str(update["thread_spend_usd"]),
                }
        return ExtendedModelResponse(
            model_response=model_response, command=Command(update=update)
        )

    # -- one model step -----------------------------------------------------------
    def _begin(
        self, request: ModelRequest[Any]
    ) -> tuple[Decimal, Decimal, int, dict[str, Any] | ExtendedModelResponse[Any]]:
        """The step's spend so far, and its budgets or the answer that ends it."""
        earlier = self._refusals.get(request.state)
        if earlier is not None:
            raise earlier
        run, thread, unpriced = self._spent(request.state)
        budgets = self._budgets(run, thread)
        if isinstance(budgets, str):
            update = {"run_spend_usd": run, "thread_spend_usd": thread}
            stop = self._stop(request, self._exhausted(budgets, run, thread), update)
            return run, thread, unpriced, stop
        return run, thread, unpriced, budgets

    def _end(
        self,
        request: ModelRequest[Any],
        spend: _HolySheepStepHandler,
        budgets: dict[str, Budget],
        spent: tuple[Decimal, Decimal, int],
        response: Any,
        exc: BudgetError | None,
    ) -> ExtendedModelResponse[Any]:
        """Settle the step: its answer, or the end of the run after a refusal.

        A refusal by one of our budgets ends the step even when a middleware
        inside turned it into an answer (`ModelRetryMiddleware`'s
        `on_failure="continue"`): the limit decides, not the error's wording.
        """
        run, thread, unpriced = spent
        refused = spend.refusal if spend.refusal is not None else exc
        if refused is None:
            cost, update = self._settle(spend, run, thread, unpriced)
            return self._finish(response, cost, update)
        err = self._refusal(refused, spend, budgets, run, thread)
        if err is None:
            raise refused  # a budget check that failed, or another budget's refusal
        _, update = self._settle(spend, run, thread, unpriced)
        return self._stop(request, err, update)

    # -- hooks ------------------------------------------------------------------
    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ExtendedModelResponse[Any]:
        """Price the model call and stop the run when a limit would be exceeded."""
        run, thread, unpriced, budgets = self._begin(request)
        if isinstance(budgets, ExtendedModelResponse):
            return budgets
        spend = _HolySheepStepHandler(list(budgets.values()), self.pricebook)
        response: Any = None
        refused: BudgetError | None = None
        try:
            with scoped_config(handlers=[spend]):
                response = handler(request)
        except BudgetError as exc:
            refused = exc
        spent = (run, thread, unpriced)
        return self._end(request, spend, budgets, spent, response, refused)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ExtendedModelResponse[Any]:
        """Async version of `wrap_model_call`."""
        run, thread, unpriced, budgets = self._begin(request)
        if isinstance(budgets, ExtendedModelResponse):
            return budgets
        spend = _HolySheepStepHandler(list(budgets.values()), self.pricebook)
        response: Any = None
        refused: BudgetError | None = None
        try:
            with scoped_config(handlers=[spend]):
                response = await handler(request)
        except BudgetError as exc:
            refused = exc
        spent = (run, thread, unpriced)
        return self._end(request, spend, budgets, spent, response, refused)
