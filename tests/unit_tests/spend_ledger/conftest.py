"""Fixtures for the ledger, report and Prometheus tests.

`ledger` is an SQLite ledger on tmp_path; `any_ledger` / `make_ledger` run a
test once per store: SQLite, and PostgreSQL on a schema of the test's own (the
local server of `DATABASE_URL`; those runs need the network, the others stay
offline).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pytest_socket import disable_socket, enable_socket

from langchain_holysheep.spend.ledger import SQLiteLedger, open_ledger
from langchain_holysheep.spend.ledger.queued import QueuedLedger
from langchain_holysheep.spend.records import CallRecord, TokenUsage

T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z
MODELS = ("gpt-4.1", "claude-sonnet-4.5", "deepseek-v3.2", "mystery-model")
_ids = itertools.count()


def make_record(**kw: Any) -> CallRecord:
    """A plausible record; any field can be overridden."""
    n = next(_ids)
    base: dict[str, Any] = {
        "timestamp": T0 + n,
        "run_id": f"run-{n}",
        "requested_model": "gpt-4.1",
        "served_model": "gpt-4.1",
        "outcome": "ok",
        "usage": TokenUsage(input=1200, output=300, cached=200, reasoning=50),
        "cost": Decimal("0.0168"),
        "latency_ms": 812.5,
    }
    base.update(kw)
    return CallRecord(**base)


def random_records(n: int, seed: int = 7, days: int = 3) -> list[CallRecord]:
    """Varied records over `days` days: models, outcomes, tags, users, costs."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        model = rnd.choice(MODELS)
        fallback = rnd.random() < 0.2
        unpriced = model == "mystery-model"
        cost = None
        if not unpriced:
            # mostly exact at 1e-12, sometimes finer (exercises the exact fallback)
            cost = Decimal(rnd.randint(0, 10**9)).scaleb(-rnd.choice((6, 9, 12, 15)))
        out.append(
            CallRecord(
                timestamp=T0 + rnd.uniform(0, days * 86_400),
                run_id=f"r{i}",
                requested_model="gpt-4.1" if fallback else model,
                served_model=model,
                outcome=rnd.choice(("ok", "ok", "ok", "error", "cancelled")),
                usage=TokenUsage(
                    input=rnd.randint(0, 5000),
                    output=rnd.randint(0, 2000),
                    cached=rnd.randint(0, 100),
                    reasoning=rnd.randint(0, 100),
                ),
                cost=cost,
                currency=rnd.choice(("USD", "USD", "CNY")),
                latency_ms=None if rnd.random() < 0.1 else rnd.uniform(5, 3000),
                ttft_ms=rnd.choice((None, rnd.uniform(1, 500))),
                attempt=rnd.randint(1, 3),
                is_retry=rnd.random() < 0.2,
                is_fallback=fallback,
                error=rnd.choice((None, "RateLimitError(429)")),
                tags=tuple(
                    rnd.sample(("team:search", "team:chat", "batch"), rnd.randint(0, 2))
                ),
                metadata=(("user", rnd.choice(("alice", "bob", "chi"))),)
                if rnd.random() < 0.8
                else (),
                key_name=rnd.choice((None, "key-a", "key-b")),
                model_group=rnd.choice((None, "fast", "smart")),
                estimated=rnd.random() < 0.05,
            )
        )
    return out


@pytest.fixture
def record_factory() -> Callable[..., CallRecord]:
    return make_record


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


@pytest.fixture
def ledger(ledger_path: Path) -> Iterator[SQLiteLedger]:
    led = SQLiteLedger(ledger_path, flush_interval=0.01)
    yield led
    led.close()


STORES = ("sqlite", "postgres")


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest) -> Iterator[None]:
    """Offline, except a test's PostgreSQL runs (they talk to the local server)."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    if "postgres" in params.values():
        yield
        return
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_target(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[], str]:
    """Makes new, empty ledger locations of the store: a path or a URL."""
    if store == "postgres":
        schemas = request.getfixturevalue("pg_schemas")
        return schemas.new_url  # type: ignore[no-any-return]
    names = itertools.count()
    return lambda: str(tmp_path / f"ledger-{next(names)}.sqlite3")


@pytest.fixture
def ledger_target(new_target: Callable[[], str]) -> str:
    """The location of this test's ledger (path or URL)."""
    return new_target()


@pytest.fixture
def make_ledger(ledger_target: str) -> Iterator[Callable[..., QueuedLedger]]:
    """Opens ledgers at `ledger_target` (closed after the test)."""
    opened: list[QueuedLedger] = []

    def make(**options: Any) -> QueuedLedger:
        led = open_ledger(ledger_target, **options)
        assert isinstance(led, QueuedLedger)
        opened.append(led)
        return led

    yield make
    for led in opened:
        led.close()


@pytest.fixture
def any_ledger(make_ledger: Callable[..., QueuedLedger]) -> QueuedLedger:
    """A ledger of each store (the test runs once per store)."""
    return make_ledger(flush_interval=0.01)
