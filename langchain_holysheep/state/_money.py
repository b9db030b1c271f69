"""Money in a store: exact integer units of 1e-9 USD (nano-dollars).

Every store keeps amounts as integers so that sums are exact in SQLite, in
Redis (whose Lua numbers are doubles, exact up to 2**53) and in memory alike.
Amounts to reserve or charge round *up* to the next unit and caps round
*down*, so rounding can only make a budget stricter, never looser. One unit is
finer than any per-token price with up to three decimals per 1M tokens.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, InvalidOperation

__all__ = ["MAX_AMOUNT", "UNIT", "from_units", "to_units"]

UNIT = Decimal("0.000000001")
"""The smallest amount a store counts (USD)."""

_EXACT = Context(prec=200)
_MAX_UNITS = 2**53 - 1
MAX_AMOUNT = UNIT * _MAX_UNITS
"""The largest amount (and cap) a store accepts: about $9 million per window."""


def to_units(
    amount: Decimal | int | str, *, up: bool = True, what: str = "amount"
) -> int:
    """`amount` (USD) in store units, rounded up (`up=True`) or down.

    Raises:
        ValueError: `amount` is not a finite number in `[0, MAX_AMOUNT]`.
    """
    if type(amount) is Decimal:
        value = amount
    elif isinstance(amount, (bool, float)):
        raise ValueError(f"{what} must be a Decimal, int or str, got {amount!r}")
    else:
        try:
            value = Decimal(amount)
        except (InvalidOperation, TypeError, ValueError):
            raise ValueError(
                f"{what} must be an amount in USD, got {amount!r}"
            ) from None
    if not value.is_finite() or value < 0 or value > MAX_AMOUNT:
        raise ValueError(
            f"{what} must be a finite amount in [0, {MAX_AMOUNT}] USD, got {amount!r}"
        )
    scaled = value.scaleb(9, _EXACT)  # exact: no rounding to the context's 28 digits
    return int(scaled.to_integral_value(ROUND_CEILING if up else ROUND_FLOOR, _EXACT))


_NONE = Decimal(0).scaleb(-9)


def from_units(units: int) -> Decimal:
    """Store units as an exact `Decimal` amount in USD."""
    if type(units) is not int:
        units = int(units)
    return Decimal(units).scaleb(-9) if units else _NONE
