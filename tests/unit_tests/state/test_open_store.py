from __future__ import annotations

from pathlib import Path

import pytest

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.state import (
    GuardedStore,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    StoreErrorPolicy,
    open_store,
)
from langchain_holysheep.state._open import sqlite_path
from langchain_holysheep.state._redis import redact


def test_memory_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOLYSHEEP_STATE_URL", raising=False)
    assert isinstance(open_store(), MemoryStore)
    assert isinstance(open_store("memory://"), MemoryStore)


def test_the_environment_chooses_the_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOLYSHEEP_STATE_URL", f"sqlite:///{tmp_path}/s.db")
    store = open_store(on_store_error="local")
    assert isinstance(store, GuardedStore) and isinstance(store.store, SQLiteStore)
    assert store.store.path == tmp_path / "s.db"
    assert store.policy == StoreErrorPolicy("local", "local", "local")
    assert store.url == f"sqlite:///{tmp_path}/s.db"


def test_redis_urls_open_a_guarded_redis_store() -> None:
    store = open_store("redis://:pw@cache:6380/2", prefix="app:")
    assert isinstance(store, GuardedStore) and isinstance(store.store, RedisStore)
    assert store.store.prefix == "app:" and store.url == "redis://:***@cache:6380/2"
    assert store.policy == StoreErrorPolicy()  # budgets fail closed by default


def test_sqlite_urls_follow_sqlalchemy() -> None:
    assert sqlite_path("sqlite:///state.db") == "state.db"
    assert sqlite_path("sqlite:////var/lib/app/state.db") == "/var/lib/app/state.db"
    assert sqlite_path("sqlite://") == "~/.holysheep/state.sqlite3"
    with pytest.raises(ConfigurationError):
        sqlite_path("sqlite://host/state.db")


def test_unknown_urls_say_what_works() -> None:
    with pytest.raises(ConfigurationError, match="memory://, sqlite:///"):
        open_store("postgres://user:secret@db/state")
    with pytest.raises(ConfigurationError) as err:
        open_store("mongodb://user:secret@db/state")
    assert "secret" not in str(err.value)


def test_policies() -> None:
    assert StoreErrorPolicy.of({"budgets": "local"}).budgets == "local"
    with pytest.raises(ValueError):
        StoreErrorPolicy.of({"ledger": "local"})
    with pytest.raises(ValueError):
        StoreErrorPolicy(budgets="ignore")  # type: ignore[arg-type]


def test_redact() -> None:
    assert redact("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert redact("redis://h:1/0") == "redis://h:1/0"
