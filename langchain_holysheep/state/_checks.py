"""Argument checks shared by every store (the same errors everywhere)."""

from __future__ import annotations

import itertools
import math
import os

__all__ = ["check_key", "check_seconds", "new_id"]


def check_seconds(value: float | None, what: str, *, optional: bool = False) -> None:
    """`value` must be a finite number of seconds > 0 (or `None` if optional)."""
    if type(value) is float and 0.0 < value < math.inf:  # the usual case
        return
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{what} must be a number of seconds > 0, got {value!r}")


def check_key(*keys: str) -> None:
    """Keys and window ids must be non-empty strings."""
    for key in keys:
        if not isinstance(key, str) or not key:
            raise ValueError(f"keys and window ids must be non-empty str, got {key!r}")


class _Ids:
    """Reservation ids: 64 random bits per process, then a 32-bit counter."""

    def __init__(self) -> None:
        self.reset()
        if hasattr(os, "register_at_fork"):  # a forked child draws its own bits
            os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.state = (os.urandom(8).hex(), itertools.count())

    def next(self) -> str:
        prefix, counter = self.state  # one read: each count goes with its prefix
        n = next(counter)  # atomic across threads
        if n > 0xFFFFFFFF:  # spent: new random bits
            self.reset()
            return self.next()
        return f"{prefix}{n:08x}"


_IDS = _Ids()


def new_id() -> str:
    """A fresh reservation id (24 hex digits: unique across processes and hosts).

    Each process draws 64 random bits (again after a `fork`) and numbers its
    reservations after them: no system call per id.
    """
    return _IDS.next()
