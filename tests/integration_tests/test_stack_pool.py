"""The async connection pool (`StackPool`) keeps httpcore's pool's limits.

At most `max_connections` open (others wait, up to the pool timeout), at most
`max_keepalive_connections` idle, expired connections never reused, a
cancelled request's connection given back; and each request leaves in one
send. Real HTTP against the simulator, connections counted at `connect()`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx2
import pytest

from langchain_holysheep._lean_pool import StackPool
from langchain_holysheep._pool_backend import install
from langchain_holysheep.simulator import Fault, GatewaySimulator

T = TypeVar("T")
BODY = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}


def _client(sim: GatewaySimulator, **limits: Any) -> httpx2.AsyncClient:
    transport = install(httpx2.AsyncHTTPTransport(limits=httpx2.Limits(**limits)))
    assert isinstance(transport._pool, StackPool)
    return httpx2.AsyncClient(
        base_url=sim.base_url,
        transport=transport,
        headers={"Authorization": f"Bearer {sim.api_key}"},
    )


async def _post(client: httpx2.AsyncClient, **kw: Any) -> int:
    response = await client.post("chat/completions", json=BODY, **kw)
    return response.status_code


def _count(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """Record every call of `socket.socket.<name>` from now on (its argument)."""
    calls: list[Any] = []
    real = getattr(socket.socket, name)

    def counted(self: socket.socket, *args: Any) -> Any:
        calls.append(args[0] if name == "connect" else (self.getpeername(), *args))
        return real(self, *args)

    monkeypatch.setattr(socket.socket, name, counted)
    return calls


def _served(
    sim: GatewaySimulator,
    monkeypatch: pytest.MonkeyPatch,
    work: Callable[[httpx2.AsyncClient], Awaitable[T]],
    **limits: Any,
) -> tuple[T, int]:
    """`work` on a fresh client with `limits`: its result, the connections opened."""
    opened = _count(monkeypatch, "connect")

    async def run() -> T:
        async with _client(sim, **limits) as client:
            return await work(client)

    return asyncio.run(run()), len(opened)


def _pooled(client: httpx2.AsyncClient) -> int:
    return len(client._transport._pool.connections)  # type: ignore[attr-defined]


def test_connections_stay_within_the_limit(
    sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.script("gpt-4.1", [Fault.latency(0.05)] * 6)

    async def work(client: httpx2.AsyncClient) -> list[int]:
        return await asyncio.gather(*(_post(client) for _ in range(6)))

    assert _served(sim, monkeypatch, work, max_connections=2) == ([200] * 6, 2)
    assert sim.log.count("gpt-4.1") == 6


def test_a_full_pool_times_out_then_serves_again(
    sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def work(client: httpx2.AsyncClient) -> int:
        request = client.build_request("POST", "chat/completions", json=BODY)
        held = await client.send(request, stream=True)
        with pytest.raises(httpx2.PoolTimeout):
            await _post(client, timeout=httpx2.Timeout(10.0, pool=0.05))
        await held.aread()
        await held.aclose()
        return await _post(client)

    assert _served(sim, monkeypatch, work, max_connections=1) == (200, 1)


def test_idle_connections_beyond_the_keepalive_limit_are_closed(
    sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.script("gpt-4.1", [Fault.latency(0.05)] * 3)

    async def work(client: httpx2.AsyncClient) -> int:
        await asyncio.gather(*(_post(client) for _ in range(3)))
        for _ in range(3):  # one after another: the kept one serves
            await _post(client)
        return _pooled(client)

    assert _served(sim, monkeypatch, work, max_keepalive_connections=1) == (1, 3)


def test_expired_connections_are_not_reused(
    sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def work(client: httpx2.AsyncClient) -> int:
        for _ in range(3):
            await _post(client)
        return _pooled(client)

    pooled, opened = _served(sim, monkeypatch, work, keepalive_expiry=0.0)
    assert (pooled <= 1, opened) == (True, 3)


def test_a_cancelled_request_gives_its_place_back(
    sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.script("gpt-4.1", [Fault.latency(30.0)])

    async def work(client: httpx2.AsyncClient) -> int:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(_post(client), 0.2)
        return await _post(client, timeout=httpx2.Timeout(10.0, pool=1.0))

    # the cancelled request's connection is closed, not reused
    assert _served(sim, monkeypatch, work, max_connections=1) == (200, 2)


def test_a_request_leaves_in_one_send(
    sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> list[Any]:
        async with _client(sim) as client:
            await _post(client)  # connected
            sent = _count(monkeypatch, "send")
            for _ in range(3):
                await _post(client)
            return sent

    port = int(sim.base_url.split(":")[2].split("/")[0])
    requests = [data for peer, data, *_ in asyncio.run(run()) if peer[1] == port]
    assert len(requests) == 3  # the simulator's own sends (its replies) aside
    assert all(data.startswith(b"POST ") for data in requests)
    assert all(data.endswith(b'"content":"hi"}]}') for data in requests)


def test_a_full_pool_makes_room_for_another_origin(
    sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its one connection idle on one server, a request to another server
    closes it and connects (instead of waiting for a connection that never
    comes free)."""
    with GatewaySimulator() as other:

        async def work(client: httpx2.AsyncClient) -> list[int]:
            first = await _post(client)
            second = await client.post(
                f"{other.base_url}/chat/completions",
                json=BODY,
                headers={"Authorization": f"Bearer {other.api_key}"},
                timeout=httpx2.Timeout(10.0, pool=1.0),
            )
            return [first, second.status_code, _pooled(client)]

        assert _served(sim, monkeypatch, work, max_connections=1) == ([200, 200, 1], 2)
