"""Budget values: a reservation, a refusal, a settlement, a window's usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

__all__ = [
    "FinishedFlag",
    "Refusal",
    "Reservation",
    "Settlement",
    "WindowUsage",
    "is_finished",
    "mark_finished",
]

_ZERO = Decimal(0)
_T = TypeVar("_T")
_new = object.__new__


def filled(cls: type[_T], **values: Any) -> _T:
    """An instance of the frozen dataclass `cls`, given every field's value.

    The same object as `cls(**values)` without the generated `__init__`'s
    one `object.__setattr__` per field: the budget operations build a few of
    these per call. `values` must name every field.
    """
    obj = _new(cls)
    obj.__dict__.update(values)
    return obj  # type: ignore[no-any-return]


class FinishedFlag:
    """Whether a reservation (and every copy `extend` made of it) was finished."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = False


@dataclass(frozen=True)
class Reservation:
    """Money set aside in one budget window until its lease ends.

    Returned by `StateStore.reserve`; hand it back to `settle`, `release` or
    `extend`. If nobody does before `expires_at` (the process died), the
    reservation stops counting: nothing leaks.

    The first `settle` or `release` counts; the object remembers it, and so
    do the copies `extend` returns, so a repeated one counts nothing, however
    late (and the store keeps nothing of a finished reservation for it).

    Attributes:
        budget_key: the budget (and scope value) it was charged to.
        window_id: the window it was charged to (`"total"`, `"2026-11-03"`, ...).
        id: a unique id.
        amount: the amount set aside (USD, rounded up to the store's unit).
        lease_seconds: the lease it was taken with.
        expires_at: when the lease ends, in seconds on the store's clock.
        window_ttl: how long the window is kept after its last write
            (`None`: forever).
        fallback: made by a local fallback store while the shared one was down.
    """

    admitted: ClassVar[bool] = True

    budget_key: str
    window_id: str
    id: str
    amount: Decimal
    lease_seconds: float
    expires_at: float
    window_ttl: float | None = None
    fallback: bool = False
    _finished: FinishedFlag = field(
        default_factory=FinishedFlag, compare=False, repr=False
    )


def is_finished(reservation: Reservation) -> bool:
    """Whether `reservation` (or a copy of it) was settled or released."""
    return reservation._finished.value


def mark_finished(reservation: Reservation) -> None:
    """Note that `reservation` was settled or released (its copies share it)."""
    reservation._finished.value = True


@dataclass(frozen=True)
class Refusal:
    """A reservation that did not fit: `spent + reserved + amount > cap`.

    Nothing was reserved. `available` is what would have fitted.
    """

    admitted: ClassVar[bool] = False

    budget_key: str
    window_id: str
    amount: Decimal
    cap: Decimal
    spent: Decimal
    reserved: Decimal

    @property
    def available(self) -> Decimal:
        """What is left of the cap: `cap - spent - reserved` (never below 0)."""
        return max(self.cap - self.spent - self.reserved, _ZERO)


@dataclass(frozen=True)
class WindowUsage:
    """Settled spend and live reservations of one budget window."""

    spent: Decimal
    reserved: Decimal

    def available(self, cap: Decimal) -> Decimal:
        """What is left of `cap` (never below 0)."""
        return max(cap - self.spent - self.reserved, _ZERO)


@dataclass(frozen=True)
class Settlement:
    """What a `settle` did.

    Attributes:
        spent: the window's settled spend afterwards (`None` when deferred).
        reserved: the window's live reservations afterwards (`None` when
            deferred).
        counted: the amount added to `spent` by this call (0 for a repeated
            settle of the same reservation).
        late: the lease had already ended: the actual spend was still counted.
        deferred: the shared store was down; the settle is queued and replayed
            when it is back.
    """

    spent: Decimal | None
    reserved: Decimal | None
    counted: Decimal
    late: bool = False
    deferred: bool = False

    @property
    def spent_before(self) -> Decimal | None:
        """The settled spend just before this call counted (for thresholds)."""
        return None if self.spent is None else self.spent - self.counted
