"""Every store operation and its async twin: one signature, named and documented."""

from __future__ import annotations

import inspect

import pytest

from langchain_holysheep.state import (
    GuardedStore,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    StateStore,
)

OPERATIONS = [
    "reserve",
    "settle",
    "release",
    "extend",
    "charge",
    "usage",
    "spent",
    "forget",
    "breaker",
    "record_success",
    "record_failure",
    "count_successes",
    "try_claim_probe",
    "release_probe",
    "force_open",
    "reset_breaker",
    "acquire_rate",
    "refund_rate",
    "penalize_rate",
    "rate_state",
]


@pytest.mark.parametrize("name", OPERATIONS)
def test_the_async_twin_has_the_same_signature(name: str) -> None:
    sync, twin = getattr(StateStore, name), getattr(StateStore, "a" + name)
    assert sync.__name__ == name and twin.__name__ == "a" + name
    assert inspect.signature(twin) == inspect.signature(sync)
    assert inspect.iscoroutinefunction(twin)
    assert sync.__doc__ and twin.__doc__ == f"Async `{name}`."
    assert "Request" not in str(inspect.signature(sync).return_annotation)


@pytest.mark.parametrize("store", [MemoryStore, SQLiteStore, RedisStore, GuardedStore])
def test_stores_keep_the_operations_of_the_base(store: type[StateStore]) -> None:
    for name in OPERATIONS:
        assert getattr(store, name) is getattr(StateStore, name)
        assert getattr(store, "a" + name) is getattr(StateStore, "a" + name)
