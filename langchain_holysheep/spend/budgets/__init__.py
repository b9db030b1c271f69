"""Budgets: caps reserved before a call (its worst case) and settled after it."""

from langchain_holysheep.spend.budgets._budget import (
    Budget,
)
from langchain_holysheep.spend.budgets._errors import (
    BudgetCheckError,
    BudgetError,
    BudgetExceededError,
    ThresholdEvent,
    UnpricedCallError,
    display_places,
    window_label,
)
from langchain_holysheep.spend.budgets._estimate import (
    estimate_prompt_tokens,
    estimate_text_tokens,
)
from langchain_holysheep.spend.budgets._inflight import (
    RESERVATIONS,
    allowed_routes,
)
from langchain_holysheep.spend.budgets._reservation import (
    Reservation,
    WindowState,
)
from langchain_holysheep.spend.budgets._windows import (
    WINDOWS,
    Window,
    next_boundary,
    window_id,
)

__all__ = [
    "Budget",
    "BudgetCheckError",
    "BudgetError",
    "BudgetExceededError",
    "RESERVATIONS",
    "Reservation",
    "ThresholdEvent",
    "UnpricedCallError",
    "WINDOWS",
    "Window",
    "WindowState",
    "allowed_routes",
    "display_places",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
    "next_boundary",
    "window_id",
    "window_label",
]
