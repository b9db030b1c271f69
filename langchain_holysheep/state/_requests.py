"""Requests: one checked store operation, in the store's units."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Generic, Literal, TypeVar

from langchain_holysheep.state._breaker_types import BreakerRules, BreakerView
from langchain_holysheep.state._budget_types import (
    FinishedFlag,
    Refusal,
    Reservation,
    Settlement,
    WindowUsage,
    filled,
    is_finished,
)
from langchain_holysheep.state._checks import check_key, check_seconds, new_id
from langchain_holysheep.state._money import from_units, to_units
from langchain_holysheep.state._rate_types import RateSpec

__all__ = [
    "BreakerOp",
    "Charge",
    "Domain",
    "Extend",
    "Finish",
    "Forget",
    "KeyedOp",
    "RateOp",
    "Repeat",
    "Request",
    "Reserve",
    "Usage",
    "finish",
]

T = TypeVar("T")
Domain = Literal["budgets", "breakers", "rate_limits"]

_CAPS: dict[Decimal, int] = {}  # cap -> its units (a budget's cap rarely changes)


def _cap_units(cap: Decimal) -> int:
    """`to_units(cap, up=False)`, remembered for the usual finite `Decimal` caps."""
    if type(cap) is not Decimal or not cap.is_finite():
        return to_units(cap, up=False, what="cap")
    units = _CAPS.get(cap)
    if units is None:
        units = to_units(cap, up=False, what="cap")
        if len(_CAPS) < 1_000:
            _CAPS[cap] = units
    return units


@dataclass(frozen=True)
class Request(Generic[T]):
    """One operation a store applies atomically; `T` is what it answers."""

    domain: ClassVar[Domain] = "budgets"


@dataclass(frozen=True)
class Reserve(Request["Reservation | Refusal"]):
    """Reserve `units` in a window if the window stays under `cap_units`."""

    budget_key: str
    window_id: str
    units: int
    cap_units: int
    lease_seconds: float
    window_ttl: float | None
    id: str

    @classmethod
    def of(
        cls,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        cap: Decimal,
        lease_seconds: float,
        window_ttl: float | None,
    ) -> Reserve:
        """Check `StateStore.reserve`'s arguments (`ValueError`), in order."""
        units = Charge.units_of(budget_key, window_id, amount, window_ttl)
        cap_units = _cap_units(cap)
        check_seconds(lease_seconds, "lease_seconds")
        return filled(
            cls,
            budget_key=budget_key,
            window_id=window_id,
            units=units,
            cap_units=cap_units,
            lease_seconds=lease_seconds,
            window_ttl=None if window_ttl is None else max(window_ttl, lease_seconds),
            id=new_id(),
        )

    def refusal(self, spent: int, reserved: int) -> Refusal:
        """The answer when the amount does not fit."""
        return Refusal(
            self.budget_key,
            self.window_id,
            from_units(self.units),
            from_units(self.cap_units),
            from_units(spent),
            from_units(reserved),
        )

    def reservation(self, expires_at: float) -> Reservation:
        """The answer when the amount fits (its lease ends at `expires_at`)."""
        return filled(
            Reservation,
            budget_key=self.budget_key,
            window_id=self.window_id,
            id=self.id,
            amount=from_units(self.units),
            lease_seconds=float(self.lease_seconds),
            expires_at=expires_at,
            window_ttl=self.window_ttl,
            fallback=False,
            _finished=FinishedFlag(),
        )


@dataclass(frozen=True)
class Finish(Request[Settlement]):
    """Replace a reservation by the actual spend (`actual=None`: a release)."""

    reservation: Reservation
    actual: Decimal | None
    units: int

    @classmethod
    def of(cls, reservation: Reservation, actual: Decimal | None) -> Finish:
        """Check the actual spend."""
        units = 0 if actual is None else to_units(actual, what="actual")
        return filled(cls, reservation=reservation, actual=actual, units=units)


@dataclass(frozen=True)
class Repeat(Request[Settlement]):
    """A settle or release of a reservation already finished: reads the window."""

    reservation: Reservation

    def answer(self, window: WindowUsage) -> Settlement:
        """The settlement: nothing counted, the window as it is."""
        return Settlement(window.spent, window.reserved, Decimal(0))

    @property
    def usage(self) -> Usage:
        """The read of the reservation's window."""
        return Usage(self.reservation.budget_key, self.reservation.window_id)


def finish(reservation: Reservation, actual: Decimal | None) -> Finish | Repeat:
    """The request that settles (`actual`) or releases (`None`) a reservation.

    A reservation already finished (this object or a copy `extend` made) is
    only read: its spend was counted once.
    """
    request = Finish.of(reservation, actual)  # checks `actual` either way
    return Repeat(reservation) if is_finished(reservation) else request


def settlement(spent: int, reserved: int, counted: int, late: bool) -> Settlement:
    """A `Settlement` from store units (`late` only matters if spend counted)."""
    return filled(
        Settlement,
        spent=from_units(spent),
        reserved=from_units(reserved),
        counted=from_units(counted),
        late=late and counted > 0,
        deferred=False,
    )


def usage(spent: int, reserved: int) -> WindowUsage:
    """A `WindowUsage` from store units."""
    return WindowUsage(from_units(spent), from_units(reserved))


@dataclass(frozen=True)
class Extend(Request["Reservation | None"]):
    """Renew a live reservation's lease from now."""

    reservation: Reservation
    lease_seconds: float

    @classmethod
    def of(cls, reservation: Reservation, lease_seconds: float) -> Extend:
        """Check the lease."""
        check_seconds(lease_seconds, "lease_seconds")
        return cls(reservation, lease_seconds)


@dataclass(frozen=True)
class Charge(Request[WindowUsage]):
    """Count spend that had no reservation."""

    budget_key: str
    window_id: str
    units: int
    window_ttl: float | None

    @classmethod
    def of(
        cls,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        window_ttl: float | None,
    ) -> Charge:
        """Check a budget, a window, an amount and a window TTL (`ValueError`)."""
        units = cls.units_of(budget_key, window_id, amount, window_ttl)
        return cls(budget_key, window_id, units, window_ttl)

    @staticmethod
    def units_of(
        budget_key: str, window_id: str, amount: Decimal, window_ttl: float | None
    ) -> int:
        """`amount` in units, once the other arguments are checked (`ValueError`)."""
        check_key(budget_key, window_id)
        units = to_units(amount)
        if window_ttl is not None:
            check_seconds(window_ttl, "window_ttl")
        return units


@dataclass(frozen=True)
class Usage(Request[WindowUsage]):
    """Read a window's settled spend and live reservations."""

    budget_key: str
    window_id: str


@dataclass(frozen=True)
class Forget(Request[None]):
    """Drop a window."""

    budget_key: str
    window_id: str


@dataclass(frozen=True)
class KeyedOp(Request[T]):
    """Operation `op` on the shared record of `key` (a breaker or a rate limit)."""

    op: str
    key: str

    @property
    def writes(self) -> bool:
        """Whether the operation may change the record (all but `"view"` may)."""
        return self.op != "view"


@dataclass(frozen=True)
class BreakerOp(KeyedOp[T]):
    """One step of a breaker's state machine.

    `op` is `"view"`, `"ok"`, `"fail"`, `"oks"` (counted successes),
    `"claim"`, `"release"` (the probe), `"force"` (open) or `"reset"`.
    """

    domain: ClassVar[Domain] = "breakers"

    rules: BreakerRules | None = None
    reason: str = ""
    ttl: float = 0.0
    count: int = 1

    @property
    def creates(self) -> bool:
        """Whether the step needs a record for a breaker never seen before."""
        return self.op in ("ok", "fail", "oks", "force")

    def answer(self, view: BreakerView, claimed: bool) -> Any:
        """The operation's answer from the breaker's view after the step."""
        if self.op == "claim":
            return claimed
        if self.op == "release":
            return None
        if self.op == "reset":
            return view.previous
        return view


@dataclass(frozen=True)
class RateOp(KeyedOp[T]):
    """One operation on a rate limit's token buckets.

    `op` is `"acquire"`, `"refund"`, `"penalize"` or `"view"`.
    """

    domain: ClassVar[Domain] = "rate_limits"

    spec: RateSpec | None = None
    tokens: float = 0.0
    max_wait: float = 0.0
    requests: float = 0.0
    penalty: float = 0.0
