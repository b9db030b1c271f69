"""`Reservation`: money a budget set aside for one call, until it settles."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from langchain_holysheep.spend.pricing._book import format_money

if TYPE_CHECKING:
    from langchain_holysheep.spend.budgets._budget import Budget

__all__ = ["Reservation", "WindowState"]

_ZERO = Decimal(0)


@dataclass
class WindowState:
    """Spend and reservations of one scope value in one window."""

    window_id: str
    spent: Decimal = _ZERO
    reserved: Decimal = _ZERO
    inflight: int = 0
    fired: set[float] = field(default_factory=set)
    ended: bool = False


class Reservation:
    """Money set aside for one call; settle it to the real cost or release it.

    Both `settle()` and `release()` are idempotent: only the first call counts.

    Attributes:
        budget: the budget it belongs to.
        amount: the reserved amount (USD).
        scope_key: the scope value it was charged to.
        window_id: the window it was charged to.
        models: the routes the call may use (all of them, unless downgraded).
    """

    __slots__ = (
        "_done",
        "_state",
        "amount",
        "budget",
        "models",
        "scope_key",
        "window_id",
    )

    def __init__(
        self,
        budget: Budget,
        state: WindowState,
        amount: Decimal,
        scope_key: str,
        models: tuple[str, ...],
    ) -> None:
        self.budget, self._state, self.amount = budget, state, amount
        self.scope_key, self.window_id, self.models = scope_key, state.window_id, models
        self._done = False

    @property
    def done(self) -> bool:
        """Whether the reservation was settled or released."""
        return self._done

    def settle(self, actual_cost: Decimal | None) -> None:
        """Replace the reservation by the real cost (`None`: unpriced, counts 0)."""
        self.budget._finish(self, actual_cost)

    def release(self) -> None:
        """Give the whole reservation back (the call failed or billed nothing)."""
        self.budget._finish(self, None)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"Reservation({self.budget.name!r}, {format_money(self.amount, places=6)}, "
            f"scope_key={self.scope_key!r}, done={self._done})"
        )
