"""Budgets: caps reserved before a call (its worst case) and settled after it."""

from langchain_holysheep.spend.budgets import _errors
from langchain_holysheep.spend.budgets._budget import (
    Budget,
)
from langchain_holysheep.spend.budgets._cost import CallShape, call_cost, call_shape
from langchain_holysheep.spend.budgets._errors import *  # noqa: F403 (its __all__)
from langchain_holysheep.spend.budgets._estimate import (
    bound_prompt_tokens,
    estimate_prompt_tokens,
    estimate_text_tokens,
)
from langchain_holysheep.spend.budgets._inflight import (
    RESERVATIONS,
    allowed_routes,
)
from langchain_holysheep.spend.budgets._reservation import (
    Reservation,
)
from langchain_holysheep.spend.budgets._windows import (
    WINDOWS,
    Window,
    next_boundary,
    window_id,
)

__all__ = [
    "Budget",
    "CallShape",
    "RESERVATIONS",
    "Reservation",
    "WINDOWS",
    "Window",
    "allowed_routes",
    "bound_prompt_tokens",
    "call_cost",
    "call_shape",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
    "next_boundary",
    "window_id",
]
__all__ += _errors.__all__
