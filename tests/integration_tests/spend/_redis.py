"""The Redis fixtures of the state-store tests, for the budget tests here."""

from tests.integration_tests.state.conftest import redis_prefix, redis_url

__all__ = ["redis_prefix", "redis_url"]
