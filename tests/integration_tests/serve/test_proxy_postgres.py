"""One proxy process writing to a PostgreSQL ledger, read by `holysheep report`.

The config's `ledger = "postgresql://...?schema=..."` is opened by the
proxy's runtime as `holysheep serve` opens it. Two virtual keys call two
groups (one call retried after an upstream 503); `holysheep report --ledger
postgresql://... --by key` and `--by group` then show each key's and each
group's attempts and cost, equal to what the clients were billed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
from typer.testing import CliRunner

from langchain_holysheep.cli import app
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.spend import PriceBook, TokenUsage
from langchain_holysheep.spend.ledger import PostgresLedger
from tests.integration_tests.serve._proxy import KEY, OTHER_KEY, running_proxy

BOOK = PriceBook(use_env=False)
CALLS = [(KEY, "smart"), (KEY, "smart"), (KEY, "solo"), (OTHER_KEY, "solo")]


def _cost(usage: Any) -> Decimal:
    tokens = TokenUsage(input=usage.prompt_tokens, output=usage.completion_tokens)
    cost = BOOK.cost("gpt-4.1", tokens, warn=False)
    assert cost is not None
    return cost


def _report(url: str, by: str) -> dict[str, dict[str, Any]]:
    done = CliRunner().invoke(
        app, ["report", "--ledger", url, "--by", by, "-f", "json"], env={}
    )
    assert done.exit_code == 0, done.output
    return {row[by]: row for row in json.loads(done.stdout)["rows"]}


def test_the_proxy_writes_postgres_and_report_reads_it_by_key_and_group(
    sim: GatewaySimulator, tmp_path: Path, pg_ledger_url: str
) -> None:
    sim.script("gpt-4.1", [Fault.status(503)])  # the first call is retried
    billed: dict[tuple[str, str], Decimal] = {}
    with running_proxy(tmp_path, sim, ledger_url=pg_ledger_url) as proxy:
        assert isinstance(proxy.runtime.ledger, PostgresLedger)
        for key, group in CALLS:
            client = openai.OpenAI(base_url=proxy.base_url, api_key=key, max_retries=0)
            reply = client.chat.completions.create(
                model=group, messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.usage is not None and reply.model == "gpt-4.1"
            name = "research" if key == KEY else "other"
            billed[(name, group)] = billed.get((name, group), 0) + _cost(reply.usage)
        proxy.recorded.wait(len(CALLS) + 1)
        proxy.runtime.ledger.flush()
    assert sim.log.count() == len(CALLS) + 1
    by_key = _report(pg_ledger_url, "key")
    by_group = _report(pg_ledger_url, "group")
    assert set(by_key) == {"research", "other"}
    assert set(by_group) == {"smart", "solo"}
    assert by_key["research"]["requests"] == 4  # the 503 attempt is a row too
    assert by_key["other"]["requests"] == 1
    assert by_group["smart"]["requests"] == 3 and by_group["solo"]["requests"] == 2
    for name in ("research", "other"):
        want = sum(v for (k, _), v in billed.items() if k == name)
        assert Decimal(by_key[name]["cost"]) == want
    for group in ("smart", "solo"):
        want = sum(v for (_, g), v in billed.items() if g == group)
        assert Decimal(by_group[group]["cost"]) == want
    total = sum(billed.values(), Decimal(0))
    assert sum(Decimal(r["cost"]) for r in by_key.values()) == total
    assert "hsv-" not in json.dumps([by_key, by_group])  # names, never keys
