"""The outage policy, on a store whose availability the test switches."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from langchain_holysheep.state import (
    BreakerSpec,
    GuardedStore,
    MemoryStore,
    RateSpec,
    Reservation,
    StateStoreUnavailableError,
    StoreEvent,
)
from tests.unit_tests.state._suite import ManualClock

D = Decimal
RULES = BreakerSpec(failure_threshold=2, minimum_requests=2)
LIMIT = RateSpec(requests=60, burst_requests=2)


class SwitchableStore(MemoryStore):
    """A memory store that answers like an unreachable one while `down`."""

    kind = "switchable"

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def _apply(self, request: Any) -> Any:  # every operation, sync and async
        self.calls += 1
        if self.down:
            raise StateStoreUnavailableError("switchable://", "switched off")
        return super()._apply(request)


@pytest.fixture
def shared() -> SwitchableStore:
    return SwitchableStore()


@pytest.fixture
def mono() -> ManualClock:
    return ManualClock(0.0)


@pytest.fixture
def events() -> list[StoreEvent]:
    return []


@pytest.fixture
def store(
    shared: SwitchableStore, mono: ManualClock, events: list[StoreEvent]
) -> GuardedStore:
    return GuardedStore(shared, on_alert=events.append, retry_interval=1.0, clock=mono)


def test_budgets_fail_closed_and_the_alert_fires_once(
    store: GuardedStore, shared: SwitchableStore, events: list[StoreEvent]
) -> None:
    shared.down = True
    for _ in range(10):
        with pytest.raises(StateStoreUnavailableError) as err:
            store.reserve("b", "w", D("0.1"), D("1"), 60)
    assert err.value.domain == "budgets" and err.value.holysheep_action == "stop"
    assert shared.calls == 1  # not tried again before retry_interval
    assert events == [StoreEvent("switchable://", False, "switched off")]
    assert not store.available


def test_it_recovers_by_itself_and_replays_spend_in_order(
    store: GuardedStore,
    shared: SwitchableStore,
    mono: ManualClock,
    events: list[StoreEvent],
) -> None:
    res = store.reserve("b", "w", D("0.5"), D("1"), 60)
    assert isinstance(res, Reservation)
    shared.down = True
    done = store.settle(res, D("0.3"))
    assert done.deferred and done.spent is None and done.spent_before is None
    store.charge("b", "w", D("0.1"))
    store.release(res)  # nothing raised
    assert store.extend(res, 60) is None
    assert store.pending == 2
    shared.down = False
    mono.advance(0.5)
    with pytest.raises(StateStoreUnavailableError):  # not retried yet
        store.usage("b", "w")
    mono.advance(0.5)
    assert store.usage("b", "w").spent == D("0.4")
    assert store.available and store.pending == 0
    assert events[1].available and events[1].replayed == 2
    assert events[1].down_for == pytest.approx(1.0)
    assert store.reserve("b", "w", D("0.6"), D("1"), 60).admitted  # res settled


def test_local_budgets_during_an_outage(
    shared: SwitchableStore, mono: ManualClock, events: list[StoreEvent]
) -> None:
    store = GuardedStore(
        shared, on_store_error={"budgets": "local"}, clock=mono, on_alert=events.append
    )
    shared.down = True
    local = store.reserve("b", "w", D("0.6"), D("1"), 60)
    assert isinstance(local, Reservation) and local.fallback
    assert not store.reserve("b", "w", D("0.6"), D("1"), 60).admitted  # local cap
    assert store.extend(local, 30) is not None
    assert store.settle(local, D("0.2")).counted == D("0.2")
    assert store.pending == 1  # the local spend goes to the shared store later
    shared.down = False
    mono.advance(1)
    assert store.spent("b", "w") == D("0.2")
    assert shared.spent("b", "w") == D("0.2")


def test_breakers_and_limits_fall_back_to_fresh_local_state(
    store: GuardedStore, shared: SwitchableStore, mono: ManualClock
) -> None:
    store.force_open("k", RULES)
    shared.down = True
    assert store.breaker("k", RULES).state == "closed"  # local, per process
    store.record_failure("k", RULES)
    assert store.record_failure("k", RULES).state == "open"
    assert [store.acquire_rate("r", LIMIT).granted for _ in range(3)] == [
        True,
        True,
        False,
    ]
    shared.down = False
    mono.advance(1)
    assert store.breaker("k", RULES).state == "open"  # the shared state again
    shared.down = True
    mono.advance(1)
    assert store.acquire_rate("r", LIMIT).granted  # a new outage starts fresh


def test_breakers_can_fail_closed_too(shared: SwitchableStore) -> None:
    store = GuardedStore(shared, on_store_error="raise")
    shared.down = True
    with pytest.raises(StateStoreUnavailableError) as err:
        store.try_claim_probe("k", 30)
    assert err.value.domain == "breakers"
    with pytest.raises(StateStoreUnavailableError):
        store.acquire_rate("r", LIMIT)


def test_a_failed_replay_keeps_the_rest_queued(
    store: GuardedStore, shared: SwitchableStore, mono: ManualClock
) -> None:
    shared.down = True
    store.charge("b", "w", D("0.1"))
    store.charge("b", "w", D("0.2"))
    shared.down = False
    real_apply = shared._apply
    seen: list[Any] = []

    def flaky_apply(request: Any) -> Any:
        seen.append(request)
        if len(seen) == 3:  # the store goes away again during the replay
            shared.down = True
        return real_apply(request)

    shared._apply = flaky_apply  # type: ignore[method-assign]
    mono.advance(1)
    store.charge("b", "w", D("0.4"))  # answers; the replay sends 0.1 then fails
    assert store.pending == 1 and not store.available
    shared.down = False
    mono.advance(1)
    assert store.spent("b", "w") == D("0.7")
    assert store.pending == 0 and store.available


def test_the_queue_is_bounded(
    shared: SwitchableStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = GuardedStore(shared, max_pending=2)
    shared.down = True
    with caplog.at_level(logging.ERROR):
        for amount in ("0.1", "0.2", "0.3"):
            store.charge("b", "w", D(amount))
    assert store.pending == 2 and "dropped" in caplog.text


def test_a_broken_alert_hook_breaks_nothing(shared: SwitchableStore) -> None:
    def hook(event: StoreEvent) -> None:
        raise RuntimeError("pager down")

    store = GuardedStore(shared, on_alert=hook, on_store_error="local")
    shared.down = True
    assert store.reserve("b", "w", D("0.1"), D("1"), 60).admitted


def test_the_default_alert_logs(
    shared: SwitchableStore, mono: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = GuardedStore(shared, clock=mono)
    shared.down = True
    with caplog.at_level(logging.WARNING):
        store.record_success("k", RULES)
        shared.down = False
        mono.advance(1)
        store.record_success("k", RULES)
    assert "unavailable" in caplog.text and "available again" in caplog.text


async def test_async_paths(
    store: GuardedStore, shared: SwitchableStore, mono: ManualClock
) -> None:
    res = await store.areserve("b", "w", D("0.5"), D("1"), 60)
    assert isinstance(res, Reservation)
    shared.down = True
    with pytest.raises(StateStoreUnavailableError):
        await store.areserve("b", "w", D("0.1"), D("1"), 60)
    assert (await store.asettle(res, D("0.2"))).deferred
    await store.acharge("b", "w", D("0.1"))
    await store.arelease(res)
    assert await store.aextend(res, 10) is None
    assert (await store.arecord_failure("k", RULES)).failures == 1
    assert (await store.aacquire_rate("r", LIMIT)).granted
    shared.down = False
    mono.advance(1)
    assert await store.aspent("b", "w") == D("0.3")
    assert store.available
