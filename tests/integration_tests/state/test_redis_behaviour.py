"""The behavioural suite on a real Redis server, plus the server's own clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from langchain_holysheep.state import (
    BreakerSpec,
    RedisStore,
    Reservation,
    StateStore,
    StateStoreUnavailableError,
    open_store,
)
from tests.unit_tests.state._suite import ManualClock, StoreBehaviour

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(
    make_redis_store: Callable[..., RedisStore], clock: ManualClock
) -> StateStore:
    return make_redis_store(clock=clock)


class TestRedisBehaviour(StoreBehaviour):
    pass


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Poll `condition` until true; returns the seconds it took (fails after)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


def test_leases_run_on_the_server_clock(
    make_redis_store: Callable[..., RedisStore],
) -> None:
    store = make_redis_store()  # no injected clock: Redis TIME
    res = store.reserve("b", "w", D("1"), D("1"), 0.3)
    assert isinstance(res, Reservation)
    assert abs(res.expires_at - (time.time() + 0.3)) < 2  # server and host agree
    assert not store.reserve("b", "w", D("0.01"), D("1"), 0.3).admitted
    took = wait_until(lambda: store.usage("b", "w").reserved == 0, timeout=3)
    assert took < 1.5
    assert store.reserve("b", "w", D("1"), D("1"), 10).admitted


def test_breaker_on_the_server_clock(
    make_redis_store: Callable[..., RedisStore],
) -> None:
    store = make_redis_store()
    rules = BreakerSpec(failure_threshold=1, minimum_requests=1, cooldown=0.2)
    opened = store.record_failure("k", rules)
    assert opened.state == "open" and 0 < opened.retry_in <= 0.2
    assert abs((opened.opened_at or 0) - time.time()) < 2
    wait_until(lambda: store.try_claim_probe("k", 5), timeout=3)
    assert store.record_success("k", rules).state == "closed"


def test_keys_share_one_cluster_slot_per_window(
    make_redis_store: Callable[..., RedisStore], redis_prefix: str
) -> None:
    from redis.crc import key_slot

    store = make_redis_store()
    store.reserve("team{a}", "2026-01-01", D("0.1"), D("1"), 60, window_ttl=60)
    client = store.client()
    keys = sorted(client.scan_iter(match=redis_prefix + "*"))
    assert len(keys) == 2
    slots = {key_slot(k.encode()) for k in keys}
    assert len(slots) == 1
    assert all(0 < client.pttl(k) <= 61_000 + 60_000 for k in keys)


def test_password_is_never_shown(redis_url: str) -> None:
    store = open_store("redis://user:s3cret@127.0.0.1:1/0", socket_timeout=0.2)
    assert "s3cret" not in store.url and "s3cret" not in repr(store)
    with pytest.raises(StateStoreUnavailableError) as err:
        store.reserve("b", "w", D("0.1"), D("1"), 60)
    assert "s3cret" not in str(err.value)
    assert err.value.domain == "budgets"


async def test_async_client_per_event_loop(
    make_redis_store: Callable[..., RedisStore],
) -> None:
    store = make_redis_store()
    assert (await store.areserve("b", "w", D("0.5"), D("1"), 60)).admitted
    assert (await store.ausage("b", "w")).reserved == D("0.5")
    await store.aclose()
