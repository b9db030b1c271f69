"""Redis for the state-store tests: a real server, a key prefix per test.

`REDIS_URL` names the server (default `redis://127.0.0.1:6379/0`). When it
cannot be reached the Redis tests are skipped with the reason, except under
`CI=true`, where an unreachable Redis fails them: CI must never pass by
skipping the shared-state guarantees.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from langchain_holysheep.state import RedisStore
from tests._services import unavailable

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _reachable(url: str) -> str | None:
    """`None` if a Redis server answers PING at `url`, else why not."""
    try:
        import redis
    except ImportError:
        return "the redis client is not installed (pip install '.[redis]')"
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"no Redis server at {url}: {exc}"
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server of the tests (skip, or fail under CI=true, if absent)."""
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    problem = _reachable(url)
    if problem is not None:
        unavailable(
            f"Redis is unreachable: {problem}", "set REDIS_URL, or start redis-server"
        )
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    prefix = f"hs-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def make_redis_store(
    redis_url: str, redis_prefix: str
) -> Iterator[Callable[..., RedisStore]]:
    """Build Redis stores on the test's prefix (closed afterwards)."""
    stores: list[RedisStore] = []

    def make(**options: Any) -> RedisStore:
        store = RedisStore(redis_url, prefix=redis_prefix, **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()
