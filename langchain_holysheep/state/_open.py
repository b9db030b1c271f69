"""`open_store`: a state store from a URL or `HOLYSHEEP_STATE_URL`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.state._guarded import (
    GuardedStore,
    OnStoreError,
    StoreErrorPolicy,
    StoreEvent,
)
from langchain_holysheep.state._memory import MemoryStore
from langchain_holysheep.state._redis import RedisStore, redact
from langchain_holysheep.state._sqlite import DEFAULT_SQLITE_PATH, SQLiteStore
from langchain_holysheep.state._store import StateStore

__all__ = ["STATE_URL_ENV", "open_store", "sqlite_path"]

STATE_URL_ENV = "HOLYSHEEP_STATE_URL"
"""The environment variable `open_store()` reads when no URL is given."""

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def sqlite_path(url: str) -> str:
    """The file of a `sqlite://` URL (SQLAlchemy's convention).

    `sqlite:///state.db` is relative to the working directory,
    `sqlite:////var/lib/app/state.db` is absolute, `sqlite:///~/state.db` is
    in the home folder and `sqlite://` alone is `~/.holysheep/state.sqlite3`.
    """
    rest = url[len("sqlite://") :].split("?", 1)[0]
    if not rest or rest == "/":
        return DEFAULT_SQLITE_PATH
    if not rest.startswith("/"):
        raise ConfigurationError(
            f"A SQLite state URL is sqlite:///relative/path.db or "
            f"sqlite:////absolute/path.db, got {url!r}"
        )
    return rest[1:]


def open_store(
    url: str | None = None,
    *,
    on_store_error: StoreErrorPolicy | OnStoreError | Mapping[str, str] | None = None,
    on_alert: Callable[[StoreEvent], Any] | None = None,
    retry_interval: float = 1.0,
    **options: Any,
) -> StateStore:
    """Open the state store named by `url` (default: `HOLYSHEEP_STATE_URL`).

    - `memory://` (the default): `MemoryStore`, this process only, fastest.
    - `sqlite:///state.db` (relative), `sqlite:////abs/state.db`, `sqlite://`
      (`~/.holysheep/state.sqlite3`): `SQLiteStore`, the processes of one
      machine; survives restarts.
    - `redis://host:6379/0`, `rediss://...`, `unix:///path.sock`:
      `RedisStore`, many machines.

    SQLite and Redis stores come wrapped in a `GuardedStore` that applies
    `on_store_error` while the store is unreachable (budgets fail closed by
    default, breakers and rate limits fall back to local memory), calls
    `on_alert` once per outage, and recovers by itself.

    Args:
        url: the store's URL; `None` reads `HOLYSHEEP_STATE_URL`, else
            `memory://`.
        on_store_error: the outage policy (`StoreErrorPolicy`, `"raise"`,
            `"local"`, or a mapping by concern).
        on_alert: called with a `StoreEvent` when an outage starts and ends.
        retry_interval: seconds between attempts to reach a down store.
        **options: passed to the store (`clock`, `prefix`, `socket_timeout`,
            `timeout`, `durable`, ...).

    Raises:
        ConfigurationError: the URL names no known store.

    Example:
        ```python
        store = open_store()                                  # HOLYSHEEP_STATE_URL
        store = open_store("sqlite:////var/lib/app/state.db")
        store = open_store("redis://127.0.0.1:6379/0", prefix="app:")
        ```
    """
    if url is None:
        url = os.environ.get(STATE_URL_ENV, "").strip() or "memory://"
    if url.lower().startswith("memory:"):
        return MemoryStore(**options)
    return GuardedStore(
        _shared_store(url, options),
        on_store_error=on_store_error,
        on_alert=on_alert,
        retry_interval=retry_interval,
    )


def _shared_store(url: str, options: dict[str, Any]) -> StateStore:
    """The SQLite or Redis store a URL names."""
    lowered = url.lower()
    if lowered.startswith("sqlite:"):
        return SQLiteStore(sqlite_path(url), **options)
    if lowered.startswith(_REDIS_SCHEMES):
        return RedisStore(url, **options)
    raise ConfigurationError(
        f"Unknown state store URL {redact(url)!r} (from "
        f"{'the argument' if url else STATE_URL_ENV}). Use memory://, "
        "sqlite:///path/to/state.db or redis://host:6379/0."
    )
