"""The resilience module's own configs plug into the store unchanged."""

from __future__ import annotations

from langchain_holysheep.resilience import BreakerConfig, RateLimit
from langchain_holysheep.state import BreakerRules, MemoryStore, RateSpec
from tests.unit_tests.state._suite import ManualClock


def test_breaker_config_is_breaker_rules() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    rules: BreakerRules = BreakerConfig(failure_threshold=2, minimum_requests=2)
    store.record_failure("https://api.holysheep.ai/v1|gpt-4.1", rules)
    view = store.record_failure("https://api.holysheep.ai/v1|gpt-4.1", rules)
    assert view.state == "open" and view.retry_in == rules.cooldown


def test_rate_limit_maps_to_rate_spec() -> None:
    limit = RateLimit(
        requests_per_minute=120, tokens_per_minute=10_000, burst_requests=3
    )
    spec = RateSpec(
        limit.requests_per_minute,
        limit.tokens_per_minute,
        burst_requests=limit.burst_requests,
        burst_tokens=limit.burst_tokens,
    )
    store = MemoryStore(clock=ManualClock())
    grants = [store.acquire_rate("k", spec, tokens=100) for _ in range(4)]
    assert [g.granted for g in grants] == [True, True, True, False]
    assert grants[-1].wait == 0.5  # 2 requests a second
    assert spec.token_capacity == 10_000
