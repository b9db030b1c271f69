"""Integration tests talk to the embedded gateway simulator over real HTTP."""

from collections.abc import Iterator

import pytest

from langchain_holysheep.simulator import GatewaySimulator


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[GatewaySimulator]:
    """One simulator for tests that never script faults (read-only use)."""
    with GatewaySimulator() as sim:
        yield sim


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    """A fresh simulator per test, for scripted faults and exact log assertions."""
    with GatewaySimulator() as sim:
        yield sim
