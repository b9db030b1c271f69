"""The breaker and rate-limit unit tests, on a real Redis server.

Every unit test of `test_breaker.py` and `test_ratelimit_deadline.py` that
takes a `state` runs here again with a `RedisStore` (on the tests' fake
clock, a key prefix of its own): the store decides where the state lives,
never what a breaker or a limit means.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from langchain_holysheep.state import RedisStore
from tests.integration_tests.state.conftest import (  # noqa: F401 (fixtures)
    make_redis_store,
    redis_prefix,
    redis_url,
)
from tests.unit_tests.resilience import test_breaker, test_ratelimit_deadline
from tests.unit_tests.resilience.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(
    make_redis_store: Callable[..., RedisStore],  # noqa: F811 (the fixture)
    clock: FakeClock,
) -> RedisStore:
    return make_redis_store(clock=clock)


def _shared_tests() -> dict[str, Callable[..., object]]:
    found = {}
    for module in (test_breaker, test_ratelimit_deadline):
        for name, fn in vars(module).items():
            takes_state = inspect.isfunction(fn) and (
                "state" in inspect.signature(fn).parameters
            )
            if name.startswith("test_") and takes_state:
                found[name] = fn
    return found


globals().update(_shared_tests())
