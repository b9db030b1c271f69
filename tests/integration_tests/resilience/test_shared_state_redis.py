"""The breaker and rate-limit unit tests, on a real Redis server.

Every unit test of `test_breaker.py`, `test_ratelimit_deadline.py` and
`test_shared_breaker.py` that takes a `state` (or `shared`) runs here again
with a `RedisStore` (on the tests' fake clock, a key prefix of its own): the
store decides where the state lives, never what a breaker or a limit means.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.resilience import (
    BreakerConfig,
    BreakerRegistry,
    BreakerState,
    RateLimit,
    RateLimiterRegistry,
    RetryPolicy,
)
from langchain_holysheep.resilience._shared_ratelimit import rate_spec
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.state import RedisStore, StoreEvent, open_store
from tests.integration_tests.state.conftest import (  # noqa: F401 (fixtures)
    make_redis_store,
    redis_prefix,
    redis_url,
)
from tests.unit_tests.resilience import (
    test_breaker,
    test_ratelimit_deadline,
    test_shared_breaker,
)
from tests.unit_tests.resilience.fakes import FakeClock

KEY = ("http://gw/v1", "gpt-4.1")
PRIMARY, FALLBACK = "gpt-4.1", "gemini-2.5-flash"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(
    make_redis_store: Callable[..., RedisStore],  # noqa: F811 (the fixture)
    clock: FakeClock,
) -> RedisStore:
    return make_redis_store(clock=clock)


@pytest.fixture
def shared(state: RedisStore) -> RedisStore:
    return state


def _shared_tests() -> dict[str, Callable[..., object]]:
    found = {}
    for module in (test_breaker, test_ratelimit_deadline, test_shared_breaker):
        for name, fn in vars(module).items():
            takes_state = inspect.isfunction(fn) and bool(
                {"state", "shared"} & set(inspect.signature(fn).parameters)
            )
            if name.startswith("test_") and takes_state:
                found[name] = fn
    return found


globals().update(_shared_tests())


def test_breakers_and_limits_fall_back_to_local_state_when_redis_is_down(
    clock: FakeClock,
) -> None:
    """Nothing listens on the port: every call still works, on local state."""
    events: list[StoreEvent] = []
    store = open_store(
        "redis://127.0.0.1:1/0",
        on_alert=events.append,
        connect_timeout=0.2,
        socket_timeout=0.2,
    )
    config = BreakerConfig(failure_threshold=2, failure_rate=None, minimum_requests=2)
    breakers = BreakerRegistry(config, clock=clock, state=store)
    limits = RateLimiterRegistry(clock=clock, sleep=clock.sleep, state=store)
    limiter = limits.configure(KEY, RateLimit(requests_per_minute=60, burst_requests=1))
    breaker = breakers.get(KEY)
    assert breaker.allow()
    breakers.record_failure(KEY, "503")
    breakers.record_failure(KEY, "503")
    assert breaker.state is BreakerState.OPEN and not breaker.allow()  # locally
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(1.0, abs=0.05)  # held locally
    assert [e.available for e in events] == [False]  # one alert for the outage
    assert "127.0.0.1:1" in events[0].store


async def test_async_calls_share_breakers_and_limits_through_redis(
    sim: GatewaySimulator,
    redis_url: str,  # noqa: F811 (the fixture)
    redis_prefix: str,  # noqa: F811 (the fixture)
) -> None:
    """`ainvoke` on one store object, then on another (as another process would)."""
    config = BreakerConfig(
        failure_threshold=2, failure_rate=None, minimum_requests=2, cooldown=60
    )
    limit = RateLimit(requests_per_minute=6)  # a slot every 10 s, 6 at once

    def model() -> ChatHolySheep:
        return ChatHolySheep(
            model=PRIMARY,
            fallbacks=[FALLBACK],
            base_url=sim.base_url,
            api_key=sim.api_key,
            retry=RetryPolicy(max_attempts=1),
            breaker=config,
            rate_limit=limit,
            state=open_store(redis_url, prefix=redis_prefix),
        )

    sim.script(PRIMARY, [], then=Fault.status(503))
    first = model()
    for _ in range(2):
        reply = await first.ainvoke("hi")
        assert reply.response_metadata["holysheep"]["served_model"] == FALLBACK
    raw = RedisStore(redis_url, prefix=redis_prefix)
    key = f"{sim.base_url}|{PRIMARY}"
    assert raw.breaker(key, config).state == "open"
    view = raw.rate_state(key, rate_spec(limit))
    assert view.requests_available == pytest.approx(4, abs=0.2)  # 2 slots taken
    sent = len(sim.log.records(PRIMARY))
    reply = await model().ainvoke("hi")  # a new store object: nothing cached
    assert reply.response_metadata["holysheep"]["served_model"] == FALLBACK
    assert len(sim.log.records(PRIMARY)) == sent  # skipped without a request
    raw.close()
