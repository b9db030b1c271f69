"""Process-wide registries start empty for every test (no state leaks between tests)."""

from collections.abc import Iterator

import pytest

from langchain_holysheep.resilience import default_rate_limiters, default_registry
from tests._postgres import pg_ledger_url, pg_schemas, postgres_url

__all__ = ["pg_ledger_url", "pg_schemas", "postgres_url"]  # fixtures for every test


@pytest.fixture(autouse=True)
def _fresh_registries() -> Iterator[None]:
    default_registry().clear()
    default_rate_limiters().clear()
    yield
    default_registry().clear()
    default_rate_limiters().clear()
