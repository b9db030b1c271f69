"""Fixtures for the simulator's own tests: one server per module, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest

from langchain_holysheep.simulator import GatewaySimulator
from tests.integration_tests.simulator._helpers import KEY


@pytest.fixture(scope="module")
def _server() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(api_key=KEY) as sim:
        yield sim


@pytest.fixture
def sim(_server: GatewaySimulator) -> GatewaySimulator:
    _server.reset()
    return _server


@pytest.fixture
def http(sim: GatewaySimulator) -> Iterator[httpx2.Client]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx2.Client(base_url=sim.base_url, headers=headers, timeout=5) as client:
        yield client


@pytest.fixture
def oai(sim: GatewaySimulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=sim.base_url, api_key=KEY, max_retries=0) as client:
        yield client
