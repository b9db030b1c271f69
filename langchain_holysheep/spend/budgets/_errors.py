"""The errors a budget raises, and the event its soft thresholds send."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from langchain_core.exceptions import ModelError

from langchain_holysheep.errors import HolySheepError
from langchain_holysheep.spend.pricing._book import format_money

__all__ = [
    "BudgetCheckError",
    "BudgetError",
    "BudgetExceededError",
    "BudgetStoreError",
    "ThresholdEvent",
    "UnpricedCallError",
    "display_places",
    "window_label",
]

_ZERO = Decimal(0)
_MIN_PLACES, _MAX_PLACES = 4, 10


def display_places(
    *amounts: Decimal, larger: tuple[Decimal, Decimal] | None = None
) -> int:
    """Decimal places that show `amounts` (USD) without misleading rounding.

    Four places, or more (up to ten) so that no amount above zero shows as
    `$0.0000` and, when `larger=(a, b)` with `a > b`, `a` shows as larger than
    `b` (a refusal never reads "needs up to $0.0001, left $0.0001").
    """
    for places in range(_MIN_PLACES, _MAX_PLACES + 1):
        step = Decimal(1).scaleb(-places)
        if any(a > 0 and a.quantize(step) == 0 for a in amounts):
            continue
        if (
            larger is not None
            and larger[0] > larger[1]
            and larger[0].quantize(step) <= larger[1].quantize(step)
        ):
            continue
        return places
    return _MAX_PLACES


def window_label(window: str, window_id: str) -> str:
    """A budget window as a reader says it: `"day 2026-11-03"`, `"this run"`.

    The id of a `"run"` window is an internal run key and the `"total"` window
    has no id of its own, so neither is shown.
    """
    if window == "run":
        return "this run"
    if window == "total" or not window_id or window_id == window:
        return window
    if window == "hour":
        return f"hour {window_id}:00"
    return f"{window} {window_id}"


class BudgetError(HolySheepError, ModelError):
    """A call was refused by a budget before anything was sent.

    A LangChain `ModelError` with `is_retryable = False`: sending the same
    request again cannot succeed, so LangChain's `ModelRetryMiddleware` (its
    default `retry_on`) and `Runnable` retry helpers built on the taxonomy pass
    it on at once. `holysheep_action = "stop"` tells our own routers the same:
    no retry, no fallback.
    """

    is_retryable = False
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
        self.resets_at = resets_at
        who = "" if scope == "global" else f" for {scope}={scope_key!r}"
        call = f" for {model}" if model else ""
        left = max(limit - spent - reserved, _ZERO)
        places = display_places(
            limit, spent, reserved, left, requested, larger=(requested, left)
        )

        def usd(amount: Decimal) -> str:
            return format_money(amount, places=places)

        when = (
            f"wait for the {window} window to roll over at {resets_at}"
            if resets_at
            else "start a new run"
            if window == "run"
            else "reset the budget"
        )
        super().__init__(
            f"Budget {budget!r} exceeded{who} (window: "
            f"{window_label(window, window_id)}): limit {usd(limit)}, spent "
            f"{usd(spent)}, reserved by calls in flight {usd(reserved)}, left "
            f"{usd(left)}; this call{call} needs up to {usd(requested)} (worst "
            "case: prompt x input price + max_tokens x output price, for every "
            "attempt the call can make). No request was sent. Set a lower "
            "max_tokens or fewer retries, use a cheaper model, raise the limit, "
            f"or {when}."
        )


class UnpricedCallError(BudgetError):
    """A `strict` budget refused a call to a model with no known price."""

    def __init__(
        self, budget: str, models: Sequence[str], window: str | None = None
    ) -> None:
        self.budget, self.models, self.window = budget, list(models), window
        where = f" (window: {window})" if window else ""
        super().__init__(
            f"Budget {budget!r}{where} is strict and no price is known for "
            f"{', '.join(map(repr, models))}, so the call's cost cannot be reserved. "
            "No request was sent. Add a price (PriceBook overrides or "
            "$HOLYSHEEP_PRICING_FILE) or use Budget(strict=False)."
        )


class BudgetCheckError(BudgetError):
    """A budget could not reserve a call's worst case, so the call was refused.

    Budgets fail closed: when the worst case of a call cannot be worked out or
    reserved (a price book that raises, unreadable call parameters), the call
    is not sent unchecked.

    Attributes:
        budget: the budget's name.
        model: the model of the refused call, if known.
        cause: the exception that stopped the check, if known (`__cause__` too).
    """

    def __init__(
        self,
        budget: str,
        model: str | None = None,
        cause: BaseException | None = None,
        window: str | None = None,
    ) -> None:
        self.budget, self.model, self.cause = budget, model, cause
        self.window = window
        call = f" to {model}" if model else ""
        where = f" (window: {window})" if window else ""
        why = (
            f"{type(cause).__name__}: {cause}"
            if cause is not None
            else "the cause is in the log of langchain_holysheep.spend"
        )
        super().__init__(
            f"Budget {budget!r}{where} could not reserve the worst-case cost of this "
            f"call{call} ({why}), so the call was refused: no request was sent. "
            "Fix the cause (usually the prices: pass a PriceBook, e.g. "
            "PriceBook({'my-model': {'input': '1.00', 'output': '3.00'}})) and "
            "run again."
        )


class BudgetStoreError(BudgetCheckError):
    """The budget's state store is down, so the call was refused (fail closed).

    No process can prove that the call fits a shared cap while the store is
    unreachable, so nothing is sent. The store is tried again by itself; calls
    are admitted again as soon as it answers.

    Attributes:
        budget: the budget's name; `window`: its window kind.
        model: the model of the refused call, if known.
        cause: the store's `StateStoreUnavailableError`.
    """

    def __init__(
        self,
        budget: str,
        window: str,
        model: str | None,
        cause: BaseException,
    ) -> None:
        self.budget, self.model, self.cause, self.window = budget, model, cause, window
        call = f" to {model}" if model else ""
        BudgetError.__init__(
            self,
            f"Budget {budget!r} (window: {window}) refused this call{call} because "
            f"its state store is unavailable, so the spend so far cannot be "
            f"checked: no request was sent. {cause} Pass such a store to the "
            "budget: Budget(..., store=open_store(url, on_store_error=...)).",
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
