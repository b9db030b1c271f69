"""`ScriptCall`: one Lua script run against Redis, and how to read its reply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["US", "ScriptCall", "us"]

US = 1_000_000
"""Times travel to and from the scripts as integer microseconds."""


def us(seconds: float) -> int:
    """`seconds` in integer microseconds."""
    return round(seconds * US)


def _ignore(reply: Any) -> None:
    return None


@dataclass(frozen=True)
class ScriptCall:
    """The script (`"delete"`: a plain `DEL` of `keys`), its keys and arguments.

    The same call runs on the sync and on the async client; `answer` turns the
    reply into the operation's result.
    """

    script: str
    keys: list[str]
    args: list[Any]
    answer: Callable[[Any], Any] = _ignore
