"""Checks of fault and profile parameters, and the error they raise."""

from __future__ import annotations

import math

__all__ = [
    "FaultSpecError",
    "check_choice",
    "check_count",
    "check_error_status",
    "check_nonneg",
    "check_positive",
    "check_text",
]


class FaultSpecError(ValueError):
    """A fault, profile or fault-script file is invalid.

    Attributes:
        field: dotted path of the offending field (e.g. `models.gpt-4.1.then.code`).
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        where = f"{field}: " if field else ""
        super().__init__(f"{where}{problem}")


def check_nonneg(value: float | None, name: str, *, allow_none: bool = False) -> None:
    """A finite number >= 0 (`None` only with `allow_none`)."""
    if value is None:
        if allow_none:
            return
        raise FaultSpecError(name, "is required")
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise FaultSpecError(name, f"expected a number >= 0, got {value!r}")


def check_count(value: int, name: str) -> None:
    """An integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultSpecError(name, f"expected an integer >= 0, got {value!r}")


def check_positive(value: float, name: str) -> None:
    """A finite number > 0."""
    check_nonneg(value, name)
    if value == 0:
        raise FaultSpecError(name, f"expected a number > 0, got {value!r}")


def check_choice(value: str, name: str, allowed: tuple[str, ...]) -> None:
    """One of `allowed`."""
    if value not in allowed:
        raise FaultSpecError(
            name, f"expected one of {', '.join(allowed)}; got {value!r}"
        )


def check_text(value: str | None, name: str) -> None:
    """A string or `None`."""
    if value is not None and not isinstance(value, str):
        raise FaultSpecError(name, f"expected a string, got {value!r}")


def check_error_status(code: int) -> None:
    """An HTTP error status: an integer 400-599 (the field is `code`)."""
    if isinstance(code, bool) or not isinstance(code, int) or not 400 <= code <= 599:
        raise FaultSpecError(
            "code", f"expected an HTTP error status 400-599, got {code!r}"
        )
