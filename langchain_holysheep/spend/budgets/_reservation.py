"""`Reservation`: money a budget set aside for one call, until it settles."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from langchain_holysheep.spend.pricing._book import format_money
from langchain_holysheep.state import Reservation as StoreReservation

if TYPE_CHECKING:
    from langchain_holysheep.spend.budgets._budget import Budget

__all__ = ["Reservation"]


class Reservation:
    """Money set aside for one call; settle it to the real cost or release it.

    Both `settle()` and `release()` are idempotent: only the first call counts.
    The money is held in the budget's state store under a lease: if the
    process dies before settling, the store lets it go when the lease ends.

    Attributes:
        budget: the budget it belongs to.
        amount: the reserved amount (USD).
        scope_key: the scope value it was charged to.
        window_id: the window it was charged to.
        models: the routes the call may use (all of them, unless downgraded).
        held: the store's reservation (`None` for a zero amount: nothing held).
    """

    __slots__ = (
        "_done",
        "amount",
        "budget",
        "held",
        "models",
        "scope_key",
        "window_id",
    )

    def __init__(
        self,
        budget: Budget,
        held: StoreReservation | None,
        amount: Decimal,
        scope_key: str,
        window_id: str,
        models: tuple[str, ...],
    ) -> None:
        self.budget, self.held, self.amount = budget, held, amount
        self.scope_key, self.window_id, self.models = scope_key, window_id, models
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

    def extend(self) -> None:
        """Renew the lease for another `budget.lease` seconds (long streams)."""
        self.budget._extend(self)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"Reservation({self.budget.name!r}, {format_money(self.amount, places=6)}, "
            f"window={self.budget.window!r}, scope_key={self.scope_key!r}, "
            f"done={self._done})"
        )
