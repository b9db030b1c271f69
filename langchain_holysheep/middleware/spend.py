"""`SpendLimitMiddleware`: per-run and per-thread budgets in money for agents."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

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
    HolySheepCallbackHandler,
    PriceBook,
    format_money,
)

__all__ = ["SpendLimitExceededError", "SpendLimitMiddleware", "SpendState"]

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

    Attributes:
        scope: "run" or "thread".
        limit: that scope's limit (USD).
        spent: what the scope had spent (USD).
        detail: the budget's own explanation (the worst case of the next call).
    """

    def __init__(self, scope: str, limit: Decimal, spent: Decimal, detail: str = ""):
        self.scope, self.limit, self.spent, self.detail = scope, limit, spent, detail
        super().__init__(
            f"Agent spend limit reached: this {scope} has spent {format_money(spent)} "
            f"of its {format_money(limit)} limit, and the next model call does not "
            "fit in what is left. No request was sent."
            + (f" ({detail})" if detail else "")
        )


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

    Put it first in `middleware=[...]` (outermost) so it sees every retry and
    fallback made by the middleware inside it.

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
        quiet_budget_refusals()

    # -- bookkeeping ------------------------------------------------------------
    @staticmethod
    def _spent(state: Any) -> tuple[Decimal, Decimal, int]:
        return (
            Decimal(state.get("run_spend_usd") or 0),
            Decimal(state.get("thread_spend_usd") or 0),
            int(state.get("unpriced_model_calls") or 0),
        )

    def _budgets(self, run: Decimal, thread: Decimal) -> list[Budget] | str:
        """The budgets of one call, or the scope ("run"/"thread") already spent."""
        budgets = []
        for scope, limit, spent in (
            ("run", self.run_limit, run),
            ("thread", self.thread_limit, thread),
        ):
            if limit is None:
                continue
            left = limit - spent
            if left <= 0:
                return scope
            budgets.append(
                Budget(
                    left,
                    window="total",
                    thresholds=(),
                    strict=not self.allow_unpriced,
                    name=f"agent {scope}",
                )
            )
        return budgets

    def _error(self, scope: str, run: Decimal, thread: Decimal, detail: str) -> Any:
        spent = run if scope == "run" else thread
        limit = self.run_limit if scope == "run" else self.thread_limit
        assert limit is not None
        return SpendLimitExceededError(scope, limit, spent, detail)

    def _scope_of(self, exc: BudgetError) -> str:
        name = str(getattr(exc, "budget", ""))
        return "thread" if name.endswith("thread") else "run"

    def _stop(
        self, err: SpendLimitExceededError, update: dict[str, Any]
    ) -> ExtendedModelResponse[Any]:
        if self.exit_behavior == "error":
            raise err
        text = (
            f"I have stopped here: the spend limit of this {err.scope} is reached "
            f"({format_money(err.spent)} spent of {format_money(err.limit)}), and "
            "the next model call could cost more than what is left."
        )
        message = AIMessage(content=text)
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

    # -- hooks ------------------------------------------------------------------
    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ExtendedModelResponse[Any]:
        """Price the model call and stop the run when a limit would be exceeded."""
        run, thread, unpriced = self._spent(request.state)
        budgets = self._budgets(run, thread)
        if isinstance(budgets, str):
            update = {"run_spend_usd": run, "thread_spend_usd": thread}
            return self._stop(self._error(budgets, run, thread, ""), update)
        spend = HolySheepCallbackHandler(budgets, pricebook=self.pricebook)
        try:
            with scoped_config(handlers=[spend]):
                response = handler(request)
        except BudgetError as exc:
            _, update = self._settle(spend, run, thread, unpriced)
            err = self._error(self._scope_of(exc), run, thread, str(exc))
            return self._stop(err, update)
        cost, update = self._settle(spend, run, thread, unpriced)
        return self._finish(response, cost, update)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ExtendedModelResponse[Any]:
        """Async version of `wrap_model_call`."""
        run, thread, unpriced = self._spent(request.state)
        budgets = self._budgets(run, thread)
        if isinstance(budgets, str):
            update = {"run_spend_usd": run, "thread_spend_usd": thread}
            return self._stop(self._error(budgets, run, thread, ""), update)
        spend = HolySheepCallbackHandler(budgets, pricebook=self.pricebook)
        try:
            with scoped_config(handlers=[spend]):
                response = await handler(request)
        except BudgetError as exc:
            _, update = self._settle(spend, run, thread, unpriced)
            err = self._error(self._scope_of(exc), run, thread, str(exc))
            return self._stop(err, update)
        cost, update = self._settle(spend, run, thread, unpriced)
        return self._finish(response, cost, update)
