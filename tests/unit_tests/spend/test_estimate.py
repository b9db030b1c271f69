from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_holysheep.simulator.tokens import count_tokens, prompt_tokens
from langchain_holysheep.spend.budgets._estimate import (
    estimate_prompt_tokens,
    estimate_text_tokens,
)

TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400
)


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_text_estimate_bounds_the_simulator_tokenizer(text: str) -> None:
    assert estimate_text_tokens(text) >= count_tokens(text)
    assert estimate_text_tokens(text, safe=True) == len(text.encode("utf-8"))


@settings(max_examples=100, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=6))
def test_prompt_estimate_bounds_the_simulators_prompt_count(texts: list[str]) -> None:
    wire = [{"role": "user", "content": t} for t in texts]
    assert estimate_prompt_tokens(wire) >= prompt_tokens("", wire)[0]
    lc = [HumanMessage(t) for t in texts]
    assert estimate_prompt_tokens(lc) == estimate_prompt_tokens(wire)


def test_typical_text_is_overestimated_moderately() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20
    est = estimate_text_tokens(text)
    assert 200 <= est <= 3 * 200  # ~200 real tokens
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("Xin chào, tôi là trợ lý") >= count_tokens(
        "Xin chào, tôi là trợ lý"
    )
    assert estimate_text_tokens("你好世界") == 4


def test_messages_tools_and_parts() -> None:
    base = estimate_prompt_tokens([HumanMessage("hi")])
    assert base == 3 + 4 + 1
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    ]
    assert estimate_prompt_tokens([HumanMessage("hi")], tools=tools) > base
    call = AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "1"}])
    assert estimate_prompt_tokens([call]) > 3 + 4
    multi = HumanMessage(
        content=[
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "u"}},
        ]
    )
    assert estimate_prompt_tokens([multi]) >= 1500
    named = SystemMessage("x", name="sys")
    assert estimate_prompt_tokens([named]) == 3 + 4 + 1 + 1
    wire_call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "1",
                "type": "function",
                "function": {"name": "f", "arguments": "{}"},
            }
        ],
    }
    assert estimate_prompt_tokens([wire_call]) == 3 + 4 + 1 + 2
    assert estimate_prompt_tokens([HumanMessage("hi")], safe=True) == 3 + 4 + 2
    assert estimate_prompt_tokens(["plain string"]) > 3
