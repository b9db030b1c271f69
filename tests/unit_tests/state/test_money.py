from __future__ import annotations

from decimal import Decimal

import pytest

from langchain_holysheep.state import MAX_AMOUNT, UNIT
from langchain_holysheep.state._money import from_units, to_units


def test_units_round_trip_exactly() -> None:
    for amount in ("0", "0.000000001", "0.013", "5", "123456.789012345"):
        assert from_units(to_units(Decimal(amount))) == Decimal(amount)


def test_amounts_round_up_and_caps_round_down() -> None:
    assert to_units(Decimal("1E-12")) == 1
    assert to_units(Decimal("0.0000000011")) == 2
    assert to_units(Decimal("0.0000000019"), up=False) == 1
    assert to_units("2") == 2_000_000_000 and to_units(3) == 3_000_000_000
    many_digits = Decimal("0.1000000000000000000000000000000000001")  # 37 digits
    assert to_units(many_digits) == 100_000_001  # never rounded down first


@pytest.mark.parametrize(
    "bad", [Decimal("-1E-9"), Decimal("NaN"), Decimal("Infinity"), 0.5, True, "x"]
)
def test_bad_amounts(bad: object) -> None:
    with pytest.raises(ValueError):
        to_units(bad)  # type: ignore[arg-type]


def test_the_largest_amount_is_exact_in_lua_doubles() -> None:
    assert to_units(MAX_AMOUNT) == 2**53 - 1
    with pytest.raises(ValueError):
        to_units(MAX_AMOUNT + UNIT)
