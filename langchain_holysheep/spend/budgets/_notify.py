"""What a budget tells its owner: thresholds crossed, reservations overrun."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from langchain_holysheep.spend.budgets._errors import ThresholdEvent
from langchain_holysheep.spend.pricing._book import format_money

__all__ = ["fire_threshold", "warn_overrun"]

_logger = logging.getLogger("langchain_holysheep.spend.budgets._budget")


def fire_threshold(
    event: ThresholdEvent, hook: Callable[[ThresholdEvent], Any] | None
) -> None:
    """Call `hook(event)` (default: a log warning); a failing hook is logged."""
    if hook is None:
        _logger.warning(
            "Budget %r: %d%% of %s reached (spent %s, scope %r, window %s %s)",
            event.budget,
            round(event.threshold * 100),
            format_money(event.limit),
            format_money(event.spent),
            event.scope_key,
            event.window,
            event.window_id,
        )
        return
    try:
        hook(event)
    except Exception:
        _logger.exception("Budget %r: on_threshold hook failed", event.budget)


def warn_overrun(
    name: str, window: str, estimate: str, actual: Decimal, reserved: Decimal
) -> None:
    """Log that a call cost more than it reserved (the caller logs it once)."""
    _logger.warning(
        "Budget %r (window: %s): a call cost %s, more than its reservation %s "
        "(estimate=%r); "
        "spend may pass the limit. Use estimate='bound' (the default) for a hard "
        "bound, or extra_prompt_tokens= if your gateway adds a long system "
        "prompt. (Logged once.)",
        name,
        window,
        actual,
        reserved,
        estimate,
    )
