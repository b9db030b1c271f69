"""The simulator over real HTTP: models, auth, replies, usage, tools, JSON.

Clients are raw `httpx2` (what the openai SDK runs on) and the `openai` SDK with
its own retries off. Faults are in `test_simulator_faults.py`, scripts, profiles,
the log and the CLI in `test_simulator_control.py`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest

from langchain_holysheep.simulator import (
    GatewaySimulator,
)
from tests.integration_tests.simulator._helpers import KEY, USER, chat, sse

MAGIC = {
    "type": "function",
    "function": {
        "name": "magic_function",
        "description": "Apply a magic function to an input.",
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "integer"}},
            "required": ["input"],
        },
    },
}


def stream_events(
    http: httpx2.Client, model: str = "gpt-4.1", **body: Any
) -> list[str]:
    payload = {"model": model, "messages": USER, "stream": True, **body}
    with http.stream("POST", "/chat/completions", json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse(response.iter_lines())


def content_of(events: list[str]) -> str:
    out = []
    for raw in events:
        if raw == "[DONE]":
            continue
        for choice in json.loads(raw)["choices"]:
            out.append(choice["delta"].get("content") or "")
    return "".join(out)


# -- models and auth ------------------------------------------------------------------
def test_models_list(http: httpx2.Client) -> None:
    body = http.get("/models").json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert "gpt-4.1" in ids
    assert "deepseek-v3.2" in ids
    for entry in body["data"]:
        assert entry["object"] == "model"
        assert isinstance(entry["created"], int)
        assert entry["owned_by"]
    assert http.get("/models/gpt-4.1").json()["id"] == "gpt-4.1"
    assert http.get("/models/nope").status_code == 404


def test_model_list_override_and_accept_any() -> None:
    with GatewaySimulator(models=["m-1", "m-2"]) as sim:
        client = openai.OpenAI(
            base_url=sim.base_url, api_key=sim.api_key, max_retries=0
        )
        assert [m.id for m in client.models.list()] == ["m-1", "m-2"]
        with pytest.raises(openai.NotFoundError) as info:
            client.chat.completions.create(model="gpt-4.1", messages=USER)  # type: ignore[arg-type]
        assert info.value.code == "model_not_found"
        assert sim.log.records()[-1].fault == "unknown_model"
    with GatewaySimulator(models=["m-1"], accept_any_model=True) as sim:
        client = openai.OpenAI(
            base_url=sim.base_url, api_key=sim.api_key, max_retries=0
        )
        reply = client.chat.completions.create(model="anything-at-all", messages=USER)  # type: ignore[arg-type]
        assert reply.model == "anything-at-all"


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", f"Bearer  {KEY}", KEY])
def test_auth_rejected_without_echoing_the_key(
    sim: GatewaySimulator, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    with httpx2.Client(base_url=sim.base_url, headers=headers) as client:
        for response in (
            client.get("/models"),
            client.post(
                "/chat/completions", json={"model": "gpt-4.1", "messages": USER}
            ),
        ):
            assert response.status_code == 401
            error = response.json()["error"]
            assert error["code"] == "invalid_api_key"
            assert set(error) == {"message", "type", "param", "code"}
            assert "wrong-key" not in response.text
            assert KEY not in response.text
    [record] = sim.log.records()
    assert (record.status, record.fault) == (401, "auth")
    assert KEY not in repr(record)


def test_invalid_body_is_400(http: httpx2.Client) -> None:
    assert http.post("/chat/completions", content=b"{not json").status_code == 400
    response = http.post("/chat/completions", json={"model": "gpt-4.1", "messages": []})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


# -- replies --------------------------------------------------------------------------
def test_non_stream_reply_is_deterministic_with_usage(
    sim: GatewaySimulator, oai: openai.OpenAI
) -> None:
    first = oai.chat.completions.create(model="gpt-4.1", messages=USER)  # type: ignore[arg-type]
    second = oai.chat.completions.create(model="gpt-4.1", messages=USER)  # type: ignore[arg-type]
    assert first.model == "gpt-4.1"
    assert first.choices[0].finish_reason == "stop"
    assert first.choices[0].message.content
    assert first.choices[0].message.content == second.choices[0].message.content
    usage = first.usage
    assert usage is not None
    assert usage.model_dump(exclude_none=True) == second.usage.model_dump(
        exclude_none=True
    )  # type: ignore[union-attr]
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    assert usage.prompt_tokens_details.cached_tokens == 0  # type: ignore[union-attr]
    assert usage.completion_tokens_details.reasoning_tokens == 0  # type: ignore[union-attr]
    billed = sim.log.billed("gpt-4.1")
    assert billed.requests == 2
    assert billed.prompt_tokens == 2 * usage.prompt_tokens
    assert billed.completion_tokens == 2 * usage.completion_tokens


def test_stream_with_usage_matches_non_stream(
    sim: GatewaySimulator, http: httpx2.Client
) -> None:
    whole = chat(http).json()
    events = stream_events(http, stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["model"] == "gpt-4.1" for c in chunks)
    assert len(chunks) > 10
    assert content_of(events) == whole["choices"][0]["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == whole["usage"]
    # Without include_usage: no usage chunk, and nothing the client could bill.
    events = stream_events(http)
    assert events[-1] == "[DONE]"
    assert all(json.loads(e)["choices"] for e in events[:-1])
    records = sim.log.records()
    assert [r.billed for r in records] == [True, True, False]
    assert sim.log.billed().requests == 2


def test_prompt_cache_and_reasoning_tokens(http: httpx2.Client) -> None:
    history = [
        {"role": "system", "content": "You are terse. " * 20},
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": "First answer."},
    ]
    one = http.post(
        "/chat/completions",
        json={
            "model": "gpt-4.1",
            "messages": [*history, {"role": "user", "content": "A?"}],
        },
    ).json()["usage"]
    two = http.post(
        "/chat/completions",
        json={
            "model": "gpt-4.1",
            "messages": [*history, {"role": "user", "content": "B?"}],
        },
    ).json()["usage"]
    assert one["prompt_tokens_details"]["cached_tokens"] == 0
    cached = two["prompt_tokens_details"]["cached_tokens"]
    assert 0 < cached < two["prompt_tokens"]
    other = http.post(
        "/chat/completions",
        json={
            "model": "gpt-4o",
            "messages": [*history, {"role": "user", "content": "B?"}],
        },
    ).json()["usage"]
    assert other["prompt_tokens_details"]["cached_tokens"] == 0  # cache is per model

    reasoner = chat(http, "deepseek-reasoner").json()["usage"]
    effort = chat(http, reasoning_effort="high").json()["usage"]
    plain = chat(http).json()["usage"]
    for usage in (reasoner, effort):
        reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
        assert 0 < reasoning < usage["completion_tokens"]
    assert plain["completion_tokens_details"]["reasoning_tokens"] == 0


def test_stop_and_max_tokens(http: httpx2.Client) -> None:
    full = chat(http).json()["choices"][0]["message"]["content"]
    stopped = chat(http, stop=["simulated"]).json()["choices"][0]
    assert stopped["message"]["content"] == full[: full.index("simulated")]
    capped = chat(http, max_tokens=5).json()
    assert capped["choices"][0]["finish_reason"] == "length"
    assert capped["usage"]["completion_tokens"] == 5
    assert full.startswith(capped["choices"][0]["message"]["content"])


# -- tool calls and JSON --------------------------------------------------------------
def test_tool_call_arguments_from_the_prompt(oai: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "What is 3 ^ 3? Use magic_function."}]
    reply = oai.chat.completions.create(
        model="gpt-4.1",
        messages=messages,  # type: ignore[arg-type]
        tools=[MAGIC],  # type: ignore[list-item]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "magic_function"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"input": 3}  # type: ignore[union-attr]
    assert call.id.startswith("call_")

    # The tool's result comes back: the model answers in text, using it.
    answer = oai.chat.completions.create(
        model="gpt-4.1",
        messages=[  # type: ignore[list-item]
            *messages,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "29"},
        ],
        tools=[MAGIC],  # type: ignore[list-item]
    )
    assert answer.choices[0].message.tool_calls is None
    assert "29" in (answer.choices[0].message.content or "")


def test_tool_choice_forms(http: httpx2.Client) -> None:
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "array", "items": {"type": "integer"}},
                },
            },
        },
    }
    no_args = {"type": "function", "function": {"name": "ping_server"}}
    unicode_tool = {
        "type": "function",
        "function": {
            "name": "tạo_khách_hàng",
            "parameters": {"type": "object", "properties": {"tên": {"type": "string"}}},
        },
    }
    tools = [MAGIC, weather, no_args, unicode_tool]

    def call(prompt: str, choice: Any = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"tools": tools}
        if choice is not None:
            body["tool_choice"] = choice
        message = http.post(
            "/chat/completions",
            json={
                "model": "gpt-4.1",
                "messages": [{"role": "user", "content": prompt}],
                **body,
            },
        ).json()["choices"][0]["message"]
        return message.get("tool_calls") or []

    [auto] = call("What is the weather in San Francisco, CA for 3 days?")
    assert auto["function"]["name"] == "get_weather"
    assert json.loads(auto["function"]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
        "days": [3],
    }
    assert call("Tell me a story.") == []  # auto, nothing asked for
    assert call("Tell me a story.", "none") == []
    [required] = call("Tell me a story.", "required")
    assert required["function"]["name"] == "magic_function"
    named = {"type": "function", "function": {"name": "ping_server"}}
    [forced] = call("Tell me a story.", named)
    assert (forced["function"]["name"], forced["function"]["arguments"]) == (
        "ping_server",
        "{}",
    )
    unicode_named = {"type": "function", "function": {"name": "tạo_khách_hàng"}}
    [uni] = call("Tạo khách hàng tên '你好啊集团'", unicode_named)
    assert uni["function"]["name"] == "tạo_khách_hàng"
    assert json.loads(uni["function"]["arguments"]) == {"tên": "你好啊集团"}


def test_streamed_tool_call_in_fragments(http: httpx2.Client) -> None:
    events = stream_events(
        http,
        messages=[{"role": "user", "content": "What is 3 ^ 3?"}],
        tools=[MAGIC],
        tool_choice="required",
    )
    deltas = [
        json.loads(e)["choices"][0]["delta"]
        for e in events[:-1]
        if json.loads(e)["choices"]
    ]
    calls = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
    assert len(calls) >= 3  # header plus several argument fragments
    head = calls[0]
    assert head["index"] == 0
    assert head["id"].startswith("call_")
    assert head["function"]["name"] == "magic_function"
    assert all("id" not in c and c["index"] == 0 for c in calls[1:])
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == {"input": 3}
    finish = [json.loads(e)["choices"] for e in events[:-1]]
    assert finish[-1][0]["finish_reason"] == "tool_calls"


def test_json_schema_and_json_object(http: httpx2.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "setup": {"type": "string"},
            "punchline": {"type": "string"},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
        },
        "required": ["setup", "punchline", "rating", "tags"],
        "$defs": {"Tag": {"type": "string", "enum": ["pun", "dad"]}},
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "Joke", "schema": schema},
    }
    reply = http.post(
        "/chat/completions",
        json={
            "model": "gpt-4.1",
            "messages": [{"role": "user", "content": "Tell me a joke about cats."}],
            "response_format": response_format,
        },
    ).json()
    joke = json.loads(reply["choices"][0]["message"]["content"])
    assert set(joke) == {"setup", "punchline", "rating", "tags"}
    assert "cats" in joke["setup"]
    assert isinstance(joke["punchline"], str)
    assert joke["punchline"]
    assert 1 <= joke["rating"] <= 5
    assert joke["tags"] == ["pun"]

    prompt = "Return JSON with 'setup' and 'punchline' keys."
    reply = http.post(
        "/chat/completions",
        json={
            "model": "gpt-4.1",
            "messages": [{"role": "user", "content": prompt}],
            "response_format": {"type": "json_object"},
        },
    ).json()
    assert set(json.loads(reply["choices"][0]["message"]["content"])) == {
        "setup",
        "punchline",
    }
