"""The settings of a `Budget`, checked once: limit, choices, lease, store."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.spend.budgets._windows import WINDOWS
from langchain_holysheep.state import (
    MAX_AMOUNT,
    STATE_URL_ENV,
    MemoryStore,
    StateStore,
    open_store,
)

__all__ = [
    "ESTIMATES",
    "Estimate",
    "check_choices",
    "check_extra_tokens",
    "check_forget_after",
    "check_key",
    "check_lease",
    "check_limit",
    "check_usd",
    "check_thresholds",
    "resolve_store",
    "scope_value",
    "window_ttl",
]

Estimate = Literal["bound", "heuristic"]
ESTIMATES: tuple[str, ...] = ("bound", "heuristic")

_HOUR, _DAY = 3600.0, 86400.0
_TTL = {"run": _DAY, "hour": _HOUR + _DAY, "day": 2 * _DAY, "month": 33 * _DAY}
_shared: dict[str, StateStore] = {}
_shared_lock = threading.Lock()


def check_usd(
    value: Any, name: str, *, example: str, none_means: str | None = None
) -> Decimal:
    """`value` as a finite `Decimal` amount of USD above 0.

    Reads a `Decimal`, an `int`, a `float` (through its shortest str, so `0.1`
    is `Decimal('0.1')`) or a numeric string (`" 0.50 "`); never a `bool`.

    Args:
        value: the amount given.
        name: what it is, as the error names it (`"run_limit"`).
        example: amounts to show in the error (`"'0.50' or Decimal('0.50')"`).
        none_means: what `None` would mean, when `None` is accepted too.

    Raises:
        ConfigurationError: not an amount, not finite, or not above 0.
    """
    alternative = f" (or None for {none_means})" if none_means else ""
    amount: Decimal | None = None
    if isinstance(value, (Decimal, int, float, str)) and not isinstance(value, bool):
        text = str(value).strip() if isinstance(value, (float, str)) else value
        try:
            amount = Decimal(text)
        except InvalidOperation:
            amount = None
    if amount is None:
        raise ConfigurationError(
            f"{name} must be an amount in USD such as {example}{alternative}, got "
            f"{value!r} ({type(value).__name__})."
        )
    if not amount.is_finite() or amount <= 0:
        raise ConfigurationError(
            f"{name} must be a finite amount of USD above 0{alternative}, got "
            f"{value!r}."
        )
    return amount


def check_limit(value: Any) -> Decimal:
    """The cap in USD, or a `ConfigurationError` saying what to pass."""
    amount = check_usd(value, "Budget limit", example="Decimal('5') or '5.00'")
    if amount > MAX_AMOUNT:
        raise ConfigurationError(
            f"Budget limit must be at most {MAX_AMOUNT} USD, got {value!r}"
        )
    return amount


def check_choices(window: Any, scope: Any, on_exceeded: Any, estimate: Any) -> None:
    """Reject a window, scope, `on_exceeded` or `estimate` that is not known."""
    if window not in WINDOWS:
        raise ConfigurationError(
            f"Budget window must be one of {', '.join(WINDOWS)}, got {window!r}"
        )
    if not isinstance(scope, str) or not scope:
        raise ConfigurationError(
            "Budget scope must be 'global' or a metadata key such as 'user', "
            f"got {scope!r}"
        )
    if on_exceeded not in ("raise", "downgrade"):
        raise ConfigurationError(
            f"on_exceeded must be 'raise' or 'downgrade', got {on_exceeded!r}"
        )
    if estimate not in ESTIMATES:
        raise ConfigurationError(
            f"Budget estimate must be 'bound' (a hard upper bound, the default) or "
            f"'heuristic' (cheaper, may be exceeded), got {estimate!r}"
        )


def check_thresholds(thresholds: Iterable[Any]) -> tuple[float, ...]:
    """The soft thresholds as sorted fractions in (0, 1]."""
    marks = []
    for t in thresholds:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1:
            raise ConfigurationError(
                f"Budget thresholds must be fractions in (0, 1], got {t!r}"
            )
        marks.append(float(t))
    return tuple(sorted(set(marks)))


def check_lease(lease: Any) -> float:
    """The reservation lease in seconds (> 0)."""
    if (
        isinstance(lease, bool)
        or not isinstance(lease, (int, float))
        or not math.isfinite(lease)
        or lease <= 0
    ):
        raise ConfigurationError(
            f"Budget lease must be a number of seconds > 0 (e.g. 300), got {lease!r}"
        )
    return float(lease)


def check_forget_after(value: Any) -> float | None:
    """Seconds a store keeps a window after its last write (> 0), or `None`."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            "Budget forget_after must be a number of seconds > 0 (e.g. 86400) or "
            f"None, got {value!r}"
        )
    return float(value)


def check_extra_tokens(value: Any) -> int:
    """Prompt tokens a gateway adds on its own (a whole number >= 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            "Budget extra_prompt_tokens must be a whole number >= 0 (the prompt "
            f"tokens your gateway adds to every request), got {value!r}"
        )
    return value


def check_key(key: Any, name: str) -> str:
    """The budget's identity in a shared store (`key`, else its name)."""
    if key is None:
        return name
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError(
            "Budget key must be a non-empty string that names the budget in a "
            f"shared store (the same in every process), got {key!r}"
        )
    return key


def window_ttl(window: str) -> float | None:
    """How long a store keeps a window after its last write (`None`: forever)."""
    return _TTL.get(window)


def _shared_store(url: str) -> StateStore:
    """One store per URL in this process (connections are shared)."""
    with _shared_lock:
        store = _shared.get(url)
        if store is None:
            store = _shared[url] = open_store(url)
        return store


def resolve_store(
    store: StateStore | str | None,
    *,
    what: str = "Budget store",
    memory: Callable[[], StateStore] = MemoryStore,
) -> StateStore:
    """The store of a budget: given, named by URL, or `HOLYSHEEP_STATE_URL`.

    `memory://` (the default) gives each budget a store of its own (`memory()`),
    so two `Budget` objects in one process never share a cap by accident; a
    shared store (SQLite, Redis) keys budgets by name, so budgets of the same
    name in every process share one cap.

    Args:
        store: a store, its URL, or `None` for `HOLYSHEEP_STATE_URL`.
        what: what the store is, as an error names it.
        memory: the store a `memory://` URL means.
    """
    if isinstance(store, StateStore):
        return store
    if store is None:
        store = os.environ.get(STATE_URL_ENV, "").strip() or "memory://"
    if not isinstance(store, str):
        raise ConfigurationError(
            f"{what} must be a StateStore or a URL such as 'memory://', "
            f"'sqlite:///state.db' or 'redis://127.0.0.1:6379/0', got {store!r}"
        )
    if store.strip().lower().startswith("memory:"):
        return memory()
    return _shared_store(store)


def scope_value(
    scope: str, tags: Sequence[str] | None, metadata: Mapping[str, Any] | None
) -> str:
    """A run's value of the scope key: metadata first, then a `key:value` tag."""
    if scope == "global":
        return "global"
    if metadata and metadata.get(scope) is not None:
        return str(metadata[scope])
    for tag in tags or ():
        for sep in (":", "="):
            if tag.startswith(scope + sep):
                return tag[len(scope) + 1 :]
    return ""
