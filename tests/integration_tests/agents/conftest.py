"""Fixtures of the agent-cap tests: Redis as in the state-store tests."""

from tests.integration_tests.state.conftest import redis_prefix, redis_url

__all__ = ["redis_prefix", "redis_url"]
