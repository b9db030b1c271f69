"""The errors a budget raises, and the event its soft thresholds send."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from langchain_holysheep.errors import HolySheepError
from langchain_holysheep.spend.pricing import format_money

__all__ = ["BudgetError", "BudgetExceededError", "ThresholdEvent", "UnpricedCallError"]

_ZERO = Decimal(0)


class BudgetError(HolySheepError):
    """A call was refused by a budget before anything was sent."""

    holysheep_action = "stop"  # the router never retries or falls back on it


class BudgetExceededError(BudgetError):
    """The call's worst-case cost does not fit in what is left of the budget.

    Attributes:
        budget: the budget's name.
        limit: the budget limit (USD).
        spent: settled spend in the current window and scope.
        reserved: reserved by calls still in flight.
        requested: the worst-case cost this call asked to reserve.
        window: the window kind; `window_id`: the current window.
        scope_key: the scope value (e.g. the user id), "global" for a global budget.
        model: the model (or first route) of the refused call, if known.
    """

    def __init__(
        self,
        *,
        budget: str,
        limit: Decimal,
        spent: Decimal,
        reserved: Decimal,
        requested: Decimal,
        window: str,
        window_id: str,
        scope: str,
        scope_key: str,
        model: str | None = None,
        resets_at: str | None = None,
    ) -> None:
        self.budget, self.limit, self.spent = budget, limit, spent
        self.reserved, self.requested = reserved, requested
        self.window, self.window_id = window, window_id
        self.scope, self.scope_key, self.model = scope, scope_key, model
        who = "" if scope == "global" else f" for {scope}={scope_key!r}"
        call = f" for {model}" if model else ""
        left = max(limit - spent - reserved, _ZERO)
        when = (
            f"wait for the {window} window to roll over at {resets_at}"
            if resets_at
            else "start a new run"
            if window == "run"
            else "reset the budget"
        )
        super().__init__(
            f"Budget {budget!r} exceeded{who} (window {window} {window_id}): limit "
            f"{format_money(limit)}, spent {format_money(spent)}, reserved by calls "
            f"in flight {format_money(reserved)}, left {format_money(left)}; this "
            f"call{call} needs up to {format_money(requested)} (worst case: prompt "
            "x input price + max_tokens x output price). No request was sent. "
            f"Set a lower max_tokens, use a cheaper model, raise the limit, or {when}."
        )


class UnpricedCallError(BudgetError):
    """A `strict` budget refused a call to a model with no known price."""

    def __init__(self, budget: str, models: Sequence[str]) -> None:
        self.budget, self.models = budget, list(models)
        super().__init__(
            f"Budget {budget!r} is strict and no price is known for "
            f"{', '.join(map(repr, models))}, so the call's cost cannot be reserved. "
            "No request was sent. Add a price (PriceBook overrides or "
            "$HOLYSHEEP_PRICING_FILE) or use Budget(strict=False)."
        )


@dataclass(frozen=True)
class ThresholdEvent:
    """Passed to `on_threshold` when settled spend first crosses a threshold."""

    budget: str
    threshold: float
    spent: Decimal
    limit: Decimal
    scope_key: str
    window: str
    window_id: str
