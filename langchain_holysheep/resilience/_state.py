"""Where breakers and rate limits live: a `state=` argument or `HOLYSHEEP_STATE_URL`.

`state=None` reads `HOLYSHEEP_STATE_URL`; `memory://` (its default) keeps
breakers and limits in this process, as plain local objects (no store, no
round trip). A URL opens its store once per process, so the breakers, the
rate limits and every model naming the same URL share one connection and one
outage alert. A shared store given as an object is wrapped once in a
`GuardedStore` (its outage policy: breakers and limits fall back to local
state) unless it already is one; a `MemoryStore` object is used as is (state
shared by the registries of this process that are given it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.state import (
    STATE_URL_ENV,
    GuardedStore,
    MemoryStore,
    StateStore,
    open_store,
)

__all__ = ["ProcessDefault", "StateArg", "per_store", "resolve_state", "shared_store"]

StateArg = StateStore | str | None
"""A store, a URL (`memory://`, `sqlite:///state.db`, `redis://...`), or `None`."""

_LOCK = threading.Lock()
_BY_URL: dict[str, StateStore] = {}
_GUARDED: dict[int, tuple[StateStore, StateStore]] = {}


def _is_memory_url(url: str) -> bool:
    return url.strip().lower().startswith("memory:")


def shared_store(url: str) -> StateStore:
    """The process's store for `url` (opened on first use, then reused)."""
    key = url.strip()
    store = _BY_URL.get(key)
    if store is None:
        with _LOCK:
            store = _BY_URL.get(key)
            if store is None:
                store = _BY_URL[key] = open_store(key)
    return store


def _guarded(store: StateStore) -> StateStore:
    if isinstance(store, (GuardedStore, MemoryStore)):
        return store
    with _LOCK:
        entry = _GUARDED.get(id(store))
        if entry is None or entry[0] is not store:
            entry = _GUARDED[id(store)] = (store, GuardedStore(store))
    return entry[1]


def resolve_state(state: StateArg) -> StateStore | None:
    """The store behind breakers and limits; `None` means local (in-process) state.

    Raises:
        ConfigurationError: `state` is neither a store, a URL nor `None`.
    """
    if state is None:
        state = os.environ.get(STATE_URL_ENV, "").strip() or "memory://"
    if isinstance(state, str):
        return None if _is_memory_url(state) else shared_store(state)
    if isinstance(state, StateStore):
        return _guarded(state)
    raise ConfigurationError(
        f"state= expects a StateStore or a URL (memory://, sqlite:///state.db, "
        f"redis://host:6379/0), got {state!r}"
    )


R = TypeVar("R")
_PER_STORE: dict[tuple[type, int], tuple[StateStore | None, Any]] = {}
_PER_STORE_LOCK = threading.Lock()


def per_store(state: StateArg, default: R, make: Callable[[str | StateStore], R]) -> R:
    """The process's one registry for `state` (`None`, or `default`'s store: it).

    Every model given the same store (or URL) shares one registry of each kind,
    so its breakers or limiters and their listeners exist once per process.
    """
    if state is None:
        return default
    store = resolve_state(state)
    if store is getattr(default, "store", None):
        return default
    key = (type(default), id(store))
    with _PER_STORE_LOCK:
        entry = _PER_STORE.get(key)
        if entry is None or entry[0] is not store:
            entry = _PER_STORE[key] = (store, make(store or "memory://"))
    return entry[1]  # type: ignore[no-any-return]


class ProcessDefault(Generic[R]):
    """The process-wide object of a kind, made on first use (once, thread-safe).

    Args:
        make: makes it (e.g. a registry whose store is `HOLYSHEEP_STATE_URL`'s).
    """

    def __init__(self, make: Callable[[], R]) -> None:
        self._make = make
        self._value: R | None = None
        self._lock = threading.Lock()

    def get(self) -> R:
        """The object (made now if this is the first use)."""
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
                value = self._value
        return value
