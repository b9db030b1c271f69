"""Argument checks shared by every store (the same errors everywhere)."""

from __future__ import annotations

import math
import os

__all__ = ["check_key", "check_seconds", "new_id"]


def check_seconds(value: float | None, what: str, *, optional: bool = False) -> None:
    """`value` must be a finite number of seconds > 0 (or `None` if optional)."""
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


def new_id() -> str:
    """A fresh reservation id (96 random bits: unique across processes and hosts)."""
    return os.urandom(12).hex()
