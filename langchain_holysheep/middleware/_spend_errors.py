"""The agent state of `SpendLimitMiddleware` and its refusal error."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Annotated, Any

from langchain.agents.middleware.types import AgentState, PrivateStateAttr
from langgraph.channels.untracked_value import UntrackedValue
from typing_extensions import NotRequired

from langchain_holysheep.spend import BudgetError, format_money
from langchain_holysheep.spend.budgets._errors import display_places

__all__ = ["SpendLimitExceededError", "SpendState"]

_ZERO = Decimal(0)


class SpendState(AgentState[Any]):
    """Agent state with the spend of the thread and of the current run (USD).

    `thread_spend_usd` is checkpointed with the thread (it adds up over runs when
    the agent has a checkpointer); `run_spend_usd` starts at zero on every
    `invoke` / `stream`. Both mirror the middleware's state store, where the
    limits are enforced: they are read back from it after each model call, so
    they include what concurrent runs of the thread spent. `unpriced_model_calls`
    counts calls answered by a model with no known price (their cost is not in
    the totals). `holysheep_run_key` (private) names the run in the store.
    """

    thread_spend_usd: NotRequired[Decimal]
    run_spend_usd: NotRequired[Annotated[Decimal, UntrackedValue]]
    unpriced_model_calls: NotRequired[int]
    holysheep_run_key: NotRequired[Annotated[str, UntrackedValue, PrivateStateAttr]]


class SpendLimitExceededError(BudgetError):
    """An agent's spend limit would be exceeded by its next model call.

    A non-retryable LangChain `ModelError` (see `BudgetError`): LangChain's
    `ModelRetryMiddleware` passes it on without retrying.

    Attributes:
        scope: "run" or "thread".
        limit: that scope's limit (USD).
        spent: what the scope had spent (USD, settled, every run included).
        reserved: what calls in flight of the scope held (USD).
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
        reserved: Decimal = _ZERO,
    ) -> None:
        self.scope, self.limit, self.spent, self.detail = scope, limit, spent, detail
        self.reserved = reserved
        self.requested, self.model, self.unpriced = requested, model, list(unpriced)
        super().__init__(self._message())

    def _usd(self) -> Callable[[Decimal], str]:
        left = self._left()
        amounts = [self.limit, self.spent, left, self.reserved]
        larger = None
        if self.requested is not None:
            amounts.append(self.requested)
            larger = (self.requested, left)
        places = display_places(*amounts, larger=larger)
        return lambda amount: format_money(amount, places=places)

    def _left(self) -> Decimal:
        return max(self.limit - self.spent - self.reserved, _ZERO)

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
        left = self._left()
        call = f" ({self.model})" if self.model else ""
        held = (
            f", {usd(self.reserved)} held by calls in flight"
            if self.reserved > 0
            else ""
        )
        return (
            f"{spent} ({usd(left)} left{held}), and the next model call{call} could "
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
