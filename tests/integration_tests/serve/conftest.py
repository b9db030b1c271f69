"""Fixtures of the proxy tests: the proxy in front of a fresh simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_holysheep.simulator import GatewaySimulator
from tests.integration_tests.serve._proxy import ProxyThread, running_proxy


@pytest.fixture
def proxy(sim: GatewaySimulator, tmp_path: Path) -> Iterator[ProxyThread]:
    """The proxy (groups `smart` and `solo`) in front of `sim`."""
    with running_proxy(tmp_path, sim) as running:
        yield running
