"""`Listeners`: who is told about circuit-breaker transitions."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_holysheep.resilience._breaker import Transition

__all__ = ["Listeners"]

logger = logging.getLogger("langchain_holysheep.resilience._breaker")

Listener = Callable[["Transition"], Any]


class Listeners:
    """Subscribers to transitions (thread-safe; a failing one never breaks a call)."""

    __slots__ = ("_items", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: tuple[Listener, ...] = ()

    def add(self, listener: Listener) -> Callable[[], None]:
        """Subscribe `listener`; returns a function that unsubscribes it."""
        with self._lock:
            self._items = (*self._items, listener)

        def remove() -> None:
            with self._lock:
                self._items = tuple(x for x in self._items if x is not listener)

        return remove

    def notify(self, transition: Transition) -> None:
        """Tell every subscriber."""
        for listener in self._items:
            try:
                listener(transition)
            except Exception:  # a listener must never break a call
                logger.exception("circuit-breaker listener failed")
