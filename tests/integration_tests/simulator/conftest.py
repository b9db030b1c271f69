"""Fixtures for the simulator's own tests: one server per module, reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest
import trustme

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


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A throwaway certificate authority (trusted by nothing but these tests)."""
    return trustme.CA()


@pytest.fixture(scope="session")
def server_pem(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A certificate for 127.0.0.1 and localhost, with its key, in one PEM file."""
    pem = tmp_path_factory.mktemp("tls") / "server.pem"
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    return pem


@pytest.fixture(scope="module")
def tls_sim(server_pem: Path) -> Iterator[GatewaySimulator]:
    """A simulator serving HTTPS with `server_pem`."""
    with GatewaySimulator(api_key=KEY, ssl_certfile=server_pem) as sim:
        yield sim
