"""Every stream chunk is either refused by `check_chunk` or read without error.

`check_chunk` is the gate in front of everything that reads a chunk: the
answer built from a stream (`Completion`), the proxy's accounting of a relayed
event (`_note`). A chunk it lets through must never raise a bare `TypeError`
or `AttributeError` further on; one it refuses is a `ResponseFormatError`, which
the route loop classifies and fails over.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_holysheep._collect import Completion
from langchain_holysheep._replies import check_chunk
from langchain_holysheep.errors import ResponseFormatError
from langchain_holysheep.serve._relay import WireAttempt, _note

_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.sampled_from(["a", "content"]), st.integers(), max_size=2),
)


def _or_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, strategy, strategy, _junk)


def _maybe(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts holding any subset of `fields`."""
    return st.fixed_dictionaries({}, optional=fields)


_function = _or_junk(
    _maybe(name=_or_junk(st.text(max_size=3)), arguments=_or_junk(st.text(max_size=3)))
)
_tool_delta = _or_junk(
    _maybe(index=_or_junk(st.integers(0, 2)), id=_junk, function=_function)
)
_delta = _or_junk(
    _maybe(
        role=_or_junk(st.just("assistant")),
        content=_or_junk(st.text(max_size=3)),
        refusal=_or_junk(st.text(max_size=3)),
        tool_calls=_or_junk(st.lists(_tool_delta, max_size=2)),
    )
)
_choice = _or_junk(
    _maybe(
        index=_or_junk(st.integers(0, 2)),
        delta=_delta,
        finish_reason=_or_junk(st.sampled_from(["stop", "length", "tool_calls"])),
        logprobs=_or_junk(
            _maybe(content=_or_junk(st.lists(st.integers(), max_size=2)))
        ),
    )
)
_usage = _maybe(prompt_tokens=st.integers(0, 9), completion_tokens=st.integers(0, 9))
CHUNKS = _or_junk(
    _maybe(
        id=_or_junk(st.just("chatcmpl-1")),
        model=_or_junk(st.just("gpt-4.1")),
        choices=_or_junk(st.lists(_choice, max_size=3)),
        usage=_or_junk(_usage),
    )
)


@settings(max_examples=400, deadline=None)
@given(st.lists(CHUNKS, min_size=1, max_size=5))
def test_a_chunk_is_refused_or_read(chunks: list[Any]) -> None:
    answer = Completion()
    attempt = WireAttempt(route=None, started=time.perf_counter())  # type: ignore[arg-type]
    for chunk in chunks:
        try:
            check_chunk(chunk, "gpt-4.1")
        except ResponseFormatError:
            continue
        answer.feed(chunk)
        _note(attempt, chunk)
    result = answer.result()
    assert [c["index"] for c in result["choices"]] == sorted(answer.choices)


@pytest.mark.parametrize(
    ("choice", "problem"),
    [
        ({"index": [1], "delta": {"content": "x"}}, "'index' is not an integer"),
        ({"index": "1", "delta": {"content": "x"}}, "'index' is not an integer"),
        ("x", "no 'delta'"),
        ({"index": 1, "delta": "x"}, "'delta' is not an object"),
        ({"delta": {"role": 5}}, "'role' is not text"),
        ({"delta": {}, "logprobs": {"content": 5}}, "'logprobs' are malformed"),
        ({"delta": {"tool_calls": [{"index": [0]}]}}, "'tool_calls' are malformed"),
        (
            {"delta": {"tool_calls": [{"function": {"name": 5}}]}},
            "'tool_calls' are malformed",
        ),
    ],
)
def test_every_choice_is_checked(choice: Any, problem: str) -> None:
    first = {"index": 0, "delta": {"content": "fine"}}
    with pytest.raises(ResponseFormatError, match=problem):
        check_chunk({"choices": [first, choice]}, "gpt-4.1")
