"""Four `holysheep serve` workers, one Redis state store, one PostgreSQL ledger.

What a user runs (the README's recipe): `HOLYSHEEP_STATE_URL=redis://...
holysheep serve --config holysheep.toml --workers 4` with `ledger =
"postgresql://..."` in the config; the console script in a subprocess,
uvicorn's multiprocess mode, the simulator in this process as the upstream,
billing 60 hidden prompt tokens per request (a gateway's own system prompt:
more than a tokenizer estimates from the request, within the bound a budget
reserves).

- 200 concurrent requests (the `openai` async SDK, half of them streamed) on
  one virtual key whose cap admits only part of them: what the simulator
  billed never exceeds the cap, every request is either served or refused
  with a 429 `budget_exceeded`, nothing refused reached the upstream, and the
  PostgreSQL ledger holds exactly the simulator's billing (rows and cost).
- `kill -9` of the worker serving some of several open streams: those
  clients get an error, never a `[DONE]`; its reservations are still held
  (no process can tell the store it died), then lapse within the key's lease;
  the other workers go on serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
import redis

from langchain_holysheep.serve.config import hash_key
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.spend import Budget
from langchain_holysheep.spend.ledger import PostgresLedger
from langchain_holysheep.spend.records import CallRecord
from langchain_holysheep.state import open_store
from tests._postgres import Schemas
from tests.integration_tests.serve._fleet import Fleet, serve_env
from tests.integration_tests.serve._proxy import open_stream
from tests.integration_tests.spend.test_budget_processes import billed_cost, wait_for
from tests.integration_tests.state.conftest import redis_url  # noqa: F401

WORKERS, REQUESTS = 4, 200
HIDDEN = 60
LIMIT = Decimal("0.15")  # about 90 of the 200 calls' worst cases
LEASE = 4.0
RUN = uuid.uuid4().hex[:8]  # key names of this run: fresh budgets in Redis
CAPPED, LEASED = f"capped-{RUN}", f"leased-{RUN}"
CAPPED_KEY, LEASED_KEY = f"hsv-fleet-capped-{RUN}", f"hsv-fleet-leased-{RUN}"


def fleet_config(ledger_url: str) -> str:
    return f"""
[server]
ledger = "{ledger_url}"
grace_seconds = 5

[groups.sheep]
routes = ["gpt-4.1"]
retry = {{ max_attempts = 1 }}

[keys."{CAPPED}"]
hash = "{hash_key(CAPPED_KEY)}"
groups = ["sheep"]
budget = {{ limit = "{LIMIT}", window = "total" }}
tags = ["team:fleet"]

[keys."{LEASED}"]
hash = "{hash_key(LEASED_KEY)}"
groups = ["sheep"]
budget = {{ limit = "10", window = "total", lease = {LEASE} }}
"""


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(hidden_prompt_tokens=HIDDEN) as sim:
        yield sim


@pytest.fixture(scope="module")
def ledger_url(postgres_url: str) -> Iterator[str]:
    schemas = Schemas(postgres_url)
    yield schemas.new_url()
    schemas.drop_all()


@pytest.fixture(scope="module")
def fleet(
    gateway: GatewaySimulator,
    redis_url: str,  # noqa: F811
    ledger_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    config = tmp_path_factory.mktemp("fleet") / "holysheep.toml"
    config.write_text(fleet_config(ledger_url))
    env = serve_env(
        HOLYSHEEP_API_KEY=gateway.api_key,
        HOLYSHEEP_BASE_URL=gateway.base_url,
        HOLYSHEEP_STATE_URL=redis_url,
    )
    running = Fleet(config, env, WORKERS)
    try:
        running.start()
        assert len(running.workers()) == WORKERS
        yield running
    finally:
        running.stop()
        _forget(redis_url, gateway.base_url)


def _forget(url: str, upstream: str) -> None:
    """Delete this run's keys from Redis: its budgets, its routes' breakers."""
    client = redis.Redis.from_url(url)
    patterns = [f"holysheep:*serve-key/{name}/*" for name in (CAPPED, LEASED)]
    patterns.append(f"holysheep:*{{{upstream}|*")
    try:
        for pattern in patterns:
            keys = list(client.scan_iter(match=pattern))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


def _budget(name: str, limit: Decimal | str, url: str) -> Budget:
    """The key's budget as the workers keep it, read from Redis here."""
    return Budget(limit, window="total", key=f"serve-key/{name}", store=open_store(url))


def _rows(url: str, key: str) -> list[CallRecord]:
    with PostgresLedger(url) as ledger:
        return [r for r in ledger.query() if r.key_name == key]


# -- one cap ------------------------------------------------------------------------
async def _one(client: openai.AsyncOpenAI, i: int) -> str:
    """One call; "ok" (a complete answer) or the refusal's status and code."""
    request: dict[str, Any] = {
        "model": "sheep",
        "messages": [{"role": "user", "content": f"Question {i}: how many sheep?"}],
        "max_tokens": 30,
    }
    try:
        if i % 2:
            stream = await client.chat.completions.create(**request, stream=True)
            finish = [c.choices[0].finish_reason async for c in stream if c.choices]
            assert finish[-1] in ("stop", "length"), finish
        else:
            reply = await client.chat.completions.create(**request)
            assert reply.choices[0].finish_reason in ("stop", "length")
    except openai.APIStatusError as exc:
        return f"{exc.status_code} {exc.code}"
    return "ok"


async def _all(base_url: str) -> list[str]:
    async with openai.AsyncOpenAI(
        base_url=base_url, api_key=CAPPED_KEY, max_retries=0, timeout=120
    ) as client:
        return await asyncio.gather(*(_one(client, i) for i in range(REQUESTS)))


def test_four_workers_keep_one_cap_and_one_ledger(
    fleet: Fleet,
    gateway: GatewaySimulator,
    redis_url: str,  # noqa: F811
    ledger_url: str,
) -> None:
    gateway.reset()
    outcomes = asyncio.run(_all(fleet.base_url))
    admitted = outcomes.count("ok")
    refused = [o for o in outcomes if o != "ok"]
    assert set(refused) == {"429 budget_exceeded"}, set(refused)
    assert admitted + len(refused) == REQUESTS
    assert 0 < admitted < REQUESTS
    # nothing refused was sent upstream; everything admitted was billed
    assert gateway.log.count() == admitted
    assert all(r.billed for r in gateway.log.records())
    truth = billed_cost(gateway)
    assert truth <= LIMIT, f"billed {truth} over the cap {LIMIT}"
    assert truth > LIMIT / 2  # the cap is what stopped the callers
    budget = _budget(CAPPED, LIMIT, redis_url)
    # a worker settles right after its response went out
    wait_for(lambda: budget.reserved() == 0, 10)
    assert budget.spent() == truth  # every worker settled in the shared store
    # the workers' ledger writers commit in the background: wait for the rows
    wait_for(lambda: len(_rows(ledger_url, CAPPED)) >= admitted, 30)
    rows = _rows(ledger_url, CAPPED)
    assert len(rows) == admitted
    assert sum((r.cost or Decimal(0) for r in rows), Decimal(0)) == truth
    assert all(r.cost is not None and r.outcome == "ok" for r in rows)
    assert {(r.model_group, r.served_model, r.tags) for r in rows} == {
        ("sheep", "gpt-4.1", ("team:fleet",))
    }
    billed = gateway.log.billed("gpt-4.1")
    assert sum(r.usage.input for r in rows) == billed.prompt_tokens
    assert sum(r.usage.output for r in rows) == billed.completion_tokens


# -- kill -9 --------------------------------------------------------------------------
STREAMS = 8
STREAM = {
    "model": "sheep",
    "messages": [{"role": "user", "content": "hello there"}],
    "stream": True,
    "max_tokens": 30,
}


def _rest(lines: Iterator[str]) -> tuple[list[str], BaseException | None]:
    seen: list[str] = []
    try:
        seen.extend(lines)
    except httpx.HTTPError as exc:
        return seen, exc
    return seen, None


def _complete(client: httpx.Client, stream: bool) -> None:
    body = {**STREAM, "stream": stream}
    if not stream:
        assert client.post("/chat/completions", json=body).status_code == 200
        return
    with client.stream("POST", "/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert list(r.iter_lines())[-2:] == ["data: [DONE]", ""]


def test_kill_9_of_a_worker_mid_stream(
    fleet: Fleet,
    gateway: GatewaySimulator,
    redis_url: str,  # noqa: F811
    ledger_url: str,
) -> None:
    gateway.reset()
    # two content chunks, then keep-alives until the client leaves
    keep_alive = Fault.empty_chunks(after_chunks=2, interval=0.2)
    gateway.script("gpt-4.1", [keep_alive] * STREAMS)
    budget = _budget(LEASED, "10", redis_url)
    with contextlib.ExitStack() as stack:
        open_streams = []
        for _ in range(STREAMS):
            r, lines = stack.enter_context(
                open_stream(fleet.base_url, LEASED_KEY, STREAM)
            )
            port = r.extensions["network_stream"].get_extra_info("client_addr")[1]
            open_streams.append((r, lines, fleet.owner(port).pid))
        held = budget.reserved()
        amount = held / STREAMS
        assert held > 0 and amount * STREAMS == held
        victim = open_streams[0][2]
        killed = [s for s in open_streams if s[2] == victim]
        survivors = [s for s in open_streams if s[2] != victim]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        assert budget.reserved() == held  # the store cannot know it died
        for _, lines, _ in killed:
            seen, error = _rest(lines)
            assert isinstance(error, httpx.RemoteProtocolError), (seen, error)
            assert "data: [DONE]" not in seen  # never complete-looking
        for r, _, _ in survivors:
            assert not r.is_closed  # still streaming on the other workers
            r.close()  # the client leaves: that worker settles
    # the survivors' calls were settled and recorded by their workers ...
    wait_for(lambda: len(_rows(ledger_url, LEASED)) >= len(survivors), 30)
    assert {r.outcome for r in _rows(ledger_url, LEASED)} <= {"cancelled"}
    assert budget.reserved() <= amount * len(killed)
    # ... and the dead worker's reservations lapse within the lease
    wait_for(lambda: budget.reserved() == 0, LEASE + 2)
    assert time.monotonic() - killed_at <= LEASE + 1
    # the other workers keep serving, streams and replies (a new connection each)
    fresh = httpx.Limits(max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {LEASED_KEY}"}
    with httpx.Client(
        base_url=fleet.base_url, headers=headers, timeout=30, limits=fresh
    ) as client:
        for i in range(2 * WORKERS):
            _complete(client, stream=bool(i % 2))
