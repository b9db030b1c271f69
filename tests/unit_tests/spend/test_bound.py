"""The hard bound budgets reserve by default, and the heuristic opt-in."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._contract import ROUTE_LIMITS_PARAM, ROUTES_PARAM
from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.simulator.tokens import prompt_tokens
from langchain_holysheep.spend import PriceBook
from langchain_holysheep.spend.budgets import (
    Budget,
    BudgetExceededError,
    bound_prompt_tokens,
    call_cost,
    call_shape,
    estimate_prompt_tokens,
)
from langchain_holysheep.spend.budgets._estimate import (
    BOUND_IMAGE_TOKENS,
    BOUND_MESSAGE_OVERHEAD,
    BOUND_REQUEST_OVERHEAD,
)

D = Decimal
BOOK = PriceBook(
    {"gpt-4.1": {"input": "8", "output": "24"}, "cheap": {"input": "1", "output": "2"}},
    use_env=False,
)
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300
)


@settings(max_examples=150, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=5))
def test_bound_is_at_least_the_bytes_and_above_the_heuristic(texts: list[str]) -> None:
    wire = [{"role": "user", "content": t} for t in texts]
    bound = bound_prompt_tokens(wire)
    raw = sum(len(t.encode()) for t in texts)
    assert bound == BOUND_REQUEST_OVERHEAD + len(texts) * BOUND_MESSAGE_OVERHEAD + raw
    assert bound >= prompt_tokens("", wire)[0]
    assert bound >= estimate_prompt_tokens(wire)


def test_bound_counts_tools_schemas_tool_calls_and_images() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    plain = bound_prompt_tokens([HumanMessage("hi")])
    with_tool = bound_prompt_tokens([HumanMessage("hi")], tools=[tool])
    assert with_tool - plain >= len(json.dumps(tool))
    call = AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "1"}])
    assert bound_prompt_tokens([HumanMessage("hi"), call]) > plain
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," * 9}}
    pic = HumanMessage([{"type": "text", "text": "hi"}, image])
    assert bound_prompt_tokens([pic]) == plain + BOUND_IMAGE_TOKENS


def _model(**kw: object) -> ChatHolySheep:
    return ChatHolySheep(  # type: ignore[call-arg]
        model="gpt-4.1", api_key="hs-test", base_url="http://127.0.0.1:9/v1", **kw
    )


def test_chat_model_params_list_every_route_with_its_attempts() -> None:
    model = _model(fallbacks=["deepseek-v3.2"], max_tokens=50)
    params = model._get_invocation_params()
    limits = params[ROUTE_LIMITS_PARAM]
    assert [r["model"] for r in limits] == list(params[ROUTES_PARAM])
    assert sum(r["attempts"] for r in limits) == model.max_upstream_attempts() == 6
    shape = call_shape([[HumanMessage("hi")]], params, "gpt-4.1")
    assert shape.attempts == 6
    assert {r.max_tokens for r in shape.routes} == {50}


def test_bound_reserves_every_attempt_and_the_catalogue_output_limit() -> None:
    params = _model(fallbacks=["deepseek-v3.2"])._get_invocation_params()
    shape = call_shape([[HumanMessage("hi")]], params, "gpt-4.1")
    book = PriceBook(use_env=False)
    costs, combine = call_cost(Budget("100"), shape, book)
    assert combine == "sum"
    prompt = shape.prompt_bound
    one = book.worst_case_cost("gpt-4.1", prompt, book.max_output_tokens("gpt-4.1"))
    assert one is not None and dict(costs)["gpt-4.1"] == 3 * one
    assert book.max_output_tokens("gpt-4.1") == 32768  # unset max_tokens: catalogue
    heuristic, how = call_cost(Budget("100", estimate="heuristic"), shape, book)
    assert how == "max"
    assert dict(heuristic)["gpt-4.1"] < one  # one attempt, a smaller prompt
    extra, _ = call_cost(Budget("100", extra_prompt_tokens=1000), shape, book)
    assert dict(extra)["gpt-4.1"] == 3 * book.worst_case_cost(  # type: ignore[operator]
        "gpt-4.1", prompt + 1000, 32768
    )


def test_plain_models_count_their_sdk_retries() -> None:
    params = {"model": "gpt-4.1", "max_tokens": 10}
    openai = {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {}}
    assert call_shape([[]], params, "gpt-4.1", openai).attempts == 3
    openai["kwargs"] = {"max_retries": 0}
    assert call_shape([[]], params, "gpt-4.1", openai).attempts == 1
    assert call_shape([[]], params, "gpt-4.1", {"id": ["x", "Fake"]}).attempts == 1


def test_sum_downgrade_drops_the_most_expensive_routes() -> None:
    budget = Budget("0.010", on_exceeded="downgrade")
    routes = [("gpt-4.1", D("0.008")), ("cheap", D("0.001")), ("mid", D("0.004"))]
    res = budget.reserve_routes(routes, combine="sum")  # 0.013 does not fit
    assert res.models == ("cheap", "mid") and res.amount == D("0.005")
    res.settle(D("0.004"))  # 0.006 left
    res2 = budget.reserve_routes(routes, combine="sum")
    assert res2.models == ("cheap", "mid")  # 0.005 fits exactly
    res2.settle(D("0.0055"))  # 0.0005 left
    with pytest.raises(BudgetExceededError):
        budget.reserve_routes(routes, combine="sum")
    plain = Budget("0.010")
    with pytest.raises(BudgetExceededError, match="window: total"):
        plain.reserve_routes(routes, combine="sum")


def test_default_window_is_total_and_shown_everywhere() -> None:
    budget = Budget("5")
    assert budget.window == "total"
    assert "window='total'" in repr(budget) and budget.name == "$5.00/total"
    res = budget.reserve(D("1"))
    assert "window='total'" in repr(res)
    res.settle(D("1"))
    budget.reserve(D("1"))  # a second call: the cap is not per call
    with pytest.raises(BudgetExceededError, match=r"window: total.*spent \$1\.00"):
        budget.reserve(D("3.5"))
    named = Budget("1", window="day", name="team")
    with pytest.raises(BudgetExceededError, match="window: day 20"):
        named.reserve(D("2"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"estimate": "safe"}, "estimate must be 'bound'"),
        ({"extra_prompt_tokens": -1}, "extra_prompt_tokens"),
        ({"extra_prompt_tokens": 1.5}, "extra_prompt_tokens"),
        ({"lease": 0}, "lease"),
        ({"lease": "10"}, "lease"),
        ({"store": 42}, "store must be a StateStore or a URL"),
        ({"store": "postgres://x"}, "Unknown state store URL"),
    ],
)
def test_bad_new_settings_say_what_to_pass(kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigurationError, match=match):
        Budget("1", **kwargs)


def test_system_messages_and_names_count() -> None:
    base = bound_prompt_tokens([HumanMessage("hi")])
    more = bound_prompt_tokens([SystemMessage("be brief"), HumanMessage("hi")])
    assert more == base + BOUND_MESSAGE_OVERHEAD + len("be brief")


def test_the_lease_outlasts_the_calls_deadline() -> None:
    params = _model(deadline=600)._get_invocation_params()
    shape = call_shape([[HumanMessage("hi")]], params, "gpt-4.1")
    assert shape.deadline == 600 and shape.lease(300) == 630
    assert call_shape([[]], {}, "gpt-4.1").lease(300) == 300
    budget = Budget("1", lease=5)
    res = budget.reserve_routes([("gpt-4.1", D("0.1"))], lease=shape.lease(5))
    assert res.held is not None and res.held.lease_seconds == 630
    res.extend()
    assert res.held.lease_seconds == 630


def test_a_call_over_its_reservation_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = Budget("1", name="team", estimate="heuristic")
    budget.reserve(D("0.01")).settle(D("0.02"))
    budget.reserve(D("0.01")).settle(D("0.03"))
    warned = [r for r in caplog.records if "more than its reservation" in r.message]
    assert len(warned) == 1
    assert "(window: total)" in warned[0].message
    assert "estimate='heuristic'" in warned[0].message
    assert budget.spent() == D("0.05")  # billed spend is counted in full


def test_a_preferred_model_added_at_call_time_is_reserved_too() -> None:
    model = _model(fallbacks=["deepseek-v3.2"], max_tokens=50)
    params = model._get_invocation_params(preferred_model="sonnet")
    assert params[ROUTES_PARAM] == ("claude-sonnet-4.5", "gpt-4.1", "deepseek-v3.2")
    shape = call_shape([[HumanMessage("hi")]], params, "gpt-4.1")
    assert shape.attempts == 9 and shape.routes[0].max_tokens == 50
    same = model._get_invocation_params(preferred_model="deepseek-v3.2")
    assert same[ROUTES_PARAM] == ("gpt-4.1", "deepseek-v3.2")  # already a route


def test_several_answers_multiply_the_output_bound() -> None:
    one = call_shape([[HumanMessage("hi")]], {"max_tokens": 100}, "gpt-4.1")
    three = call_shape([[HumanMessage("hi")]], {"max_tokens": 100, "n": 3}, "gpt-4.1")
    (single,), _ = call_cost(Budget("1"), one, BOOK)
    (triple,), _ = call_cost(Budget("1"), three, BOOK)
    assert single[1] is not None and triple[1] is not None
    assert triple[1] - single[1] == D(200 * 24) / 1_000_000
