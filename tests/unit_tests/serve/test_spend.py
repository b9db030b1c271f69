"""The proxy's budgets: what a request reserves, and its records."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from langchain_holysheep.serve._groups import build_groups
from langchain_holysheep.serve._spend import Spend
from langchain_holysheep.serve.config import hash_key, parse_config
from langchain_holysheep.spend import PriceBook
from langchain_holysheep.spend.budgets import BudgetExceededError, call_cost
from langchain_holysheep.state import MemoryStore

CONFIG = f"""
[groups.smart]
routes = ["gpt-4.1", "deepseek-v3.2", "not-a-priced-model"]
deadline = 400

[[groups.capped.routes]]
model = "gpt-4.1"
max_tokens = 100

[[groups.capped.routes]]
model = "deepseek-v3.2"

[keys.team]
hash = "{hash_key("hsv-team")}"
groups = ["smart", "capped"]
budget = {{ limit = "1000", window = "day" }}

[keys.tight]
hash = "{hash_key("hsv-tight")}"
groups = ["smart"]
budget = {{ limit = "0.01", window = "total" }}
"""

REQUESTS: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "hi"}]},
    {"messages": [{"role": "user", "content": "héllo wörld ✓"}], "max_tokens": 50},
    {
        "messages": [
            {"role": "system", "content": "be brief", "name": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "look"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"function": {"name": "f", "arguments": '{"x": 1}'}, "id": "1"}
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "response_format": {"type": "json_object"},
        "max_completion_tokens": 700,
        "n": 3,
    },
    {"messages": [], "max_tokens": True, "n": 0},
    {"messages": [{"role": "user", "content": "x" * 5000}], "max_tokens": 2.5},
]


@pytest.fixture
def spend(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Spend, Any]]:
    monkeypatch.setenv("HOLYSHEEP_API_KEY", "sk-test")
    config = parse_config(CONFIG)
    groups = build_groups(config, "memory://")
    yield Spend(config.keys, PriceBook(use_env=False), [], store=MemoryStore()), groups


@pytest.mark.parametrize("body", REQUESTS)
@pytest.mark.parametrize("group", ["smart", "capped"])
def test_a_request_reserves_call_costs_bound_of_its_shape(
    spend: tuple[Spend, Any], body: dict[str, Any], group: str
) -> None:
    s, groups = spend
    budget = s.budgets["team"]
    for _ in range(2):  # the second time from what the group fixes, kept
        shape = s.shape(groups[group], body)
        costs, combine = call_cost(budget, shape, s.pricebook)
        expected = sum(sorted(c for _, c in costs if c is not None), Decimal(0))
        res = s.reserve("team", groups[group], body)
        assert res is not None
        assert res.amount == expected and str(res.amount) == str(expected)
        assert res.models == tuple(m for m, _ in costs) and combine == "sum"
        assert res.held is not None
        assert (
            res.held.lease_seconds
            == shape.lease(budget.lease)
            == (430.0 if group == "smart" else 300.0)
        )
        res.release()
    assert budget.reserved() == 0


def test_a_request_that_does_not_fit_reserves_nothing(
    spend: tuple[Spend, Any],
) -> None:
    s, groups = spend
    with pytest.raises(BudgetExceededError):
        s.reserve("tight", groups["smart"], REQUESTS[0])
    assert s.budgets["tight"].reserved() == 0
    assert s.reserve("nobody", groups["smart"], REQUESTS[0]) is None


def test_every_attempt_is_one_record_and_the_call_settles_to_their_sum(
    spend: tuple[Spend, Any],
) -> None:
    from langchain_holysheep.serve._relay import WireAttempt
    from langchain_holysheep.serve._spend import CallSpend
    from langchain_holysheep.spend.records import TokenUsage

    s, groups = spend
    first, second, _ = groups["smart"].router.routes
    body = REQUESTS[0]
    call = CallSpend("team", ("team:a",), "smart", body)
    call.events += [
        {"action": "retry", "error": "RateLimitError: slow down", "status": 429},
        {"action": "fallback", "error": "APITimeoutError"},
        {"action": "success"},
    ]
    attempts = [
        WireAttempt(first, 10.0, 10.5),
        WireAttempt(first, 11.0, 11.25, 11.125, delivered=["Hello", " there"]),
        WireAttempt(
            second,
            12.0,
            13.0,
            12.5,
            {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
        ),
    ]
    held = s.reserve("team", groups["smart"], body)
    total = s.finish(call, attempts, held)
    recs = s.records(call, attempts)
    assert [r.served_model for r in recs] == ["gpt-4.1", "gpt-4.1", "deepseek-v3.2"]
    assert [r.outcome for r in recs] == ["error", "error", "ok"]
    assert [r.error for r in recs] == ["RateLimitError (429)", "APITimeoutError", None]
    assert [(r.attempt, r.is_retry, r.is_fallback) for r in recs] == [
        (1, False, False),
        (2, True, False),
        (3, False, True),
    ]
    assert [r.latency_ms for r in recs] == [500.0, 250.0, 1000.0]
    assert [r.ttft_ms for r in recs] == [None, 125.0, 500.0]
    assert recs[0].usage == TokenUsage() and recs[0].cost == 0
    assert recs[1].estimated and recs[1].usage.output > 0 and recs[1].usage.input > 0
    assert recs[2].usage == TokenUsage(input=9, output=4) and not recs[2].estimated
    assert recs[2].cost == s.pricebook.cost("deepseek-v3.2", recs[2].usage)
    assert len({r.run_id for r in recs}) == 1 and recs[0].run_id.endswith(":team")
    for rec in recs:
        assert rec.currency == "USD" and rec.tags == ("team:a",)
        assert rec.metadata == (("key", "team"), ("group", "smart"))
        assert (rec.key_name, rec.model_group, rec.requested_model) == (
            "team",
            "smart",
            "smart",
        )
    assert total == sum(r.cost for r in recs if r.cost is not None)
    assert held is not None and held.done
    assert s.budgets["team"].spent() == total and s.budgets["team"].reserved() == 0
