"""PostgreSQL for the ledger tests: a real server, a schema per test, dropped after.

`DATABASE_URL` names the server (default `postgresql://postgres@127.0.0.1:5432/test`).
When it cannot be reached the PostgreSQL tests are skipped with the reason,
except under `CI=true`, where an unreachable server fails them: CI must never
pass by skipping the shared-ledger guarantees. The fixtures turn sockets back on
(unit tests run with sockets off): they talk to the local server only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests._services import unavailable

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _reachable(url: str) -> str | None:
    """`None` if a PostgreSQL server answers at `url`, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install '.[postgres]')"
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL server at {url}: {exc}".strip()
    return None


class Schemas:
    """Makes ledger URLs on fresh schemas and drops those schemas at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.names: list[str] = []

    def new_url(self) -> str:
        """A ledger URL on a schema no other test uses."""
        name = f"hs_test_{uuid.uuid4().hex[:12]}"
        self.names.append(name)
        return f"{self.url}{'&' if '?' in self.url else '?'}schema={name}"

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        self.names.clear()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server of the tests (skip, or fail under CI=true, if absent)."""
    from pytest_socket import enable_socket

    enable_socket()
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    problem = _reachable(url)
    if problem is not None:
        unavailable(
            f"PostgreSQL is unreachable: {problem}",
            "set DATABASE_URL, or start PostgreSQL",
        )
    return url


@pytest.fixture
def pg_schemas(postgres_url: str, socket_enabled: None) -> Iterator[Schemas]:
    """Fresh ledger schemas for this test, dropped afterwards."""
    schemas = Schemas(postgres_url)
    yield schemas
    schemas.drop_all()


@pytest.fixture
def pg_ledger_url(pg_schemas: Schemas) -> str:
    """A `postgresql://...?schema=...` ledger URL of this test's own."""
    return pg_schemas.new_url()
