"""Choosing where breakers and rate limits live: `state=` or `HOLYSHEEP_STATE_URL`."""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._model_routes import build_router
from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.resilience import (
    BreakerConfig,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
    RateLimit,
    RateLimiter,
    RateLimiterRegistry,
    Router,
    SharedCircuitBreaker,
    SharedRateLimiter,
    registry_for,
)
from langchain_holysheep.state import GuardedStore, MemoryStore, SQLiteStore

KEY = ("http://gw/v1", "gpt-4.1")
SECRET = "hs-very-secret-key-123"


@pytest.fixture(autouse=True)
def _no_state_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOLYSHEEP_STATE_URL", raising=False)


def test_memory_is_the_default_and_keeps_plain_local_objects() -> None:
    breakers, limits = BreakerRegistry(), RateLimiterRegistry()
    assert breakers.store is None and limits.store is None
    assert type(breakers.get(KEY)) is CircuitBreaker
    assert type(limits.configure(KEY, RateLimit(60))) is RateLimiter
    assert BreakerRegistry(state="memory://").store is None


def test_the_environment_chooses_the_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOLYSHEEP_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    a, b = BreakerRegistry(), BreakerRegistry()  # two "processes" of one machine
    assert isinstance(a.store, GuardedStore) and a.store is b.store  # opened once
    assert isinstance(a.store.store, SQLiteStore)
    assert isinstance(a.get(KEY), SharedCircuitBreaker)
    a.get(KEY).force_open("down")
    b.get(KEY).sync()
    assert b.get(KEY).state is BreakerState.OPEN
    limits = RateLimiterRegistry()
    assert limits.store is a.store
    assert isinstance(limits.configure(KEY, RateLimit(60)), SharedRateLimiter)


def test_registries_on_one_store_share_breakers_and_tokens() -> None:
    store = MemoryStore()
    a, b = BreakerRegistry(state=store), BreakerRegistry(state=store)
    for _ in range(5):
        a.record_failure(KEY, "503")
    assert b.get(KEY).rejects()
    la, lb = RateLimiterRegistry(state=store), RateLimiterRegistry(state=store)
    limit = RateLimit(requests_per_minute=600, tokens_per_minute=6000)
    la.configure(KEY, limit).reserve(tokens=6000)
    limiter = lb.configure(KEY, limit)
    assert limiter.wait_time(tokens=600) == pytest.approx(6.0, abs=0.1)  # shared
    assert limiter.snapshot().requests_available == pytest.approx(599, abs=0.1)
    la.penalize(KEY, 30.0)  # a Retry-After seen by one holds back the other
    assert limiter.wait_time() == pytest.approx(30.0, abs=0.1)


def test_chat_model_state_argument(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    kw = {"api_key": SECRET, "fallbacks": ["gemini-2.5-flash"], "state": url}
    model = ChatHolySheep(model="gpt-4.1", rate_limit=RateLimit(60), **kw)
    other = ChatHolySheep(model="gpt-4.1", breaker=BreakerConfig(cooldown=5), **kw)
    router, router2 = build_router(model), build_router(other)
    assert router.breakers is router2.breakers is registry_for(url)  # one per store
    primary = router.routes[0]
    assert isinstance(router.breakers.get(primary.key), SharedCircuitBreaker)
    assert isinstance(router.rate_limits.get(primary.key), SharedRateLimiter)
    assert router.breakers.get(primary.key).config == BreakerConfig(cooldown=5)
    plain = build_router(ChatHolySheep(model="gpt-4.1", api_key=SECRET))
    assert plain.breakers.store is None  # the default: this process's memory


def test_a_bad_state_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="redis://"):
        ChatHolySheep(model="gpt-4.1", api_key=SECRET, state="postgres://x/y")
    with pytest.raises(ConfigurationError, match="StateStore or a URL"):
        BreakerRegistry(state=42)  # type: ignore[arg-type]


def test_router_state_argument() -> None:
    store = MemoryStore()
    model = ChatHolySheep(model="gpt-4.1", api_key=SECRET)
    router = Router([model], state=store)
    assert router.breakers.store is store and router.rate_limits.store is store
    own = BreakerRegistry()
    assert Router([model], breakers=own, state=store).breakers is own  # explicit wins


def test_middleware_state_argument() -> None:
    from langchain_holysheep.middleware import ResilienceMiddleware
    from langchain_holysheep.resilience import Route

    store = MemoryStore()
    middleware = ResilienceMiddleware("gemini-2.5-flash", state=store)
    model = ChatHolySheep(model="gpt-4.1", api_key=SECRET)
    router = middleware._new_router([Route.of(model)])
    assert router.breakers.store is store and router.rate_limits.store is store
    with pytest.raises(ConfigurationError):
        ResilienceMiddleware("gemini-2.5-flash", state="nope://")


def test_a_state_url_password_never_shows() -> None:
    from langchain_core.load import dumps

    url = "redis://:hunter2@127.0.0.1:6379/0"
    model = ChatHolySheep(model="gpt-4.1", api_key=SECRET, state=url)
    for text in (repr(model), str(model), dumps(model)):
        assert "hunter2" not in text
    assert '"state": {"lc": 1, "type": "secret"' in dumps(model)
