"""`bound_prompt_tokens` of plain dict messages counts as for any mapping."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_holysheep.spend.budgets import bound_prompt_tokens

TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
)
CONTENT = st.one_of(
    st.none(),
    TEXT,
    st.lists(
        st.one_of(
            st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}),
            st.fixed_dictionaries(
                {"type": st.just("image_url"), "image_url": st.just({"url": "x"})}
            ),
            TEXT,
        ),
        max_size=3,
    ),
)
CALL = st.fixed_dictionaries(
    {"id": TEXT, "function": st.fixed_dictionaries({"name": TEXT, "arguments": TEXT})}
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]), "content": CONTENT},
    optional={
        "name": st.one_of(st.none(), TEXT),
        "tool_calls": st.lists(CALL, max_size=2),
        "additional_kwargs": st.fixed_dictionaries(
            {}, optional={"function_call": st.fixed_dictionaries({"name": TEXT})}
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(MESSAGE, max_size=4))
def test_dicts_count_as_other_mappings(messages: list[dict[str, Any]]) -> None:
    proxies = [MappingProxyType(m) for m in messages]  # not a dict: the general path
    assert bound_prompt_tokens(messages) == bound_prompt_tokens(proxies)
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert bound_prompt_tokens(messages, tools=tools) == bound_prompt_tokens(
        proxies, tools=tools
    )
