"""The proxy's upstream connections: kept alive, and nothing left behind per call.

The proxy talks to the simulator through a `LatencyRelay` (no added delay), so
the relay's count of accepted connections is the proxy's count of upstream
connections.
"""

from __future__ import annotations

import gc
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import openai

from langchain_holysheep.simulator import GatewaySimulator, LatencyRelay
from tests.integration_tests.serve._proxy import KEY, running_proxy

MESSAGES = [{"role": "user", "content": "Say hello."}]


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)


def test_sequential_calls_reuse_one_upstream_connection(
    sim: GatewaySimulator, tmp_path: Path
) -> None:
    with LatencyRelay(sim.base_url, latency=0.0, handshake=False) as relay:
        upstream = SimpleNamespace(base_url=relay.url, api_key=sim.api_key)
        with running_proxy(tmp_path, upstream) as proxy:
            client = _client(proxy.base_url)
            for _ in range(4):
                stream = client.chat.completions.create(
                    model="solo", messages=MESSAGES, stream=True
                )
                text = "".join(
                    c.choices[0].delta.content or "" for c in stream if c.choices
                )
                assert text
                reply = client.chat.completions.create(model="solo", messages=MESSAGES)
                assert reply.choices[0].message.content
            assert relay.connections == 1


def test_streams_leave_no_upstream_response_behind(
    sim: GatewaySimulator, tmp_path: Path
) -> None:
    with running_proxy(tmp_path, sim) as proxy:
        client = _client(proxy.base_url)
        for _ in range(30):
            stream = client.chat.completions.create(
                model="smart", messages=MESSAGES, stream=True
            )
            assert [c for c in stream if c.choices]
        gc.collect()
        alive = [o for o in gc.get_objects() if isinstance(o, aiohttp.ClientResponse)]
        assert len(alive) <= 1  # at most one, still being let go
