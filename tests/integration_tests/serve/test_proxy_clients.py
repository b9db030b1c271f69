"""Real clients through the proxy: the openai SDK, LangChain's ChatOpenAI, curl.

Each answer is the simulator's, relayed: the served model, tool calls and
structured output as the upstream sent them, usage on streams when asked for,
and one ledger row per attempt with the key's name and tags (never the key).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import openai
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_holysheep.simulator import GatewaySimulator
from tests._services import unavailable
from tests.integration_tests.serve._proxy import KEY, ProxyThread

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


class Joke(BaseModel):
    setup: str
    punchline: str


def _client(proxy: ProxyThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key=KEY, max_retries=0)


def test_invoke_records_the_attempt_with_key_name_and_tags(
    proxy: ProxyThread, sim: GatewaySimulator
) -> None:
    reply = _client(proxy).chat.completions.create(
        model="smart", messages=[{"role": "user", "content": "hello there"}]
    )
    assert reply.model == "gpt-4.1"
    assert "hello there" in (reply.choices[0].message.content or "")
    assert reply.usage is not None
    (row,) = proxy.ledger_rows(1)
    assert row.served_model == "gpt-4.1" and row.requested_model == "smart"
    assert row.outcome == "ok" and row.cost is not None and row.cost > 0
    assert row.usage.output == reply.usage.completion_tokens
    assert row.usage.output == sim.log.billed().completion_tokens
    assert row.tags == ("team:research",)
    assert dict(row.metadata) == {"key": "research", "group": "smart"}
    assert (row.key_name, row.model_group) == ("research", "smart")  # --by key
    assert KEY not in repr(row)


def test_stream_with_and_without_usage(proxy: ProxyThread) -> None:
    client = _client(proxy)
    messages = [{"role": "user", "content": "hello there"}]
    chunks = list(
        client.chat.completions.create(
            model="smart",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    plain = list(
        client.chat.completions.create(model="smart", messages=messages, stream=True)
    )
    assert all(c.usage is None and c.choices for c in plain)
    text = "".join(c.choices[0].delta.content or "" for c in plain)
    assert "hello there" in text
    rows = proxy.ledger_rows(2)
    assert len(rows) == 2 and all(r.usage.output > 0 for r in rows)  # both priced


def test_tools_and_structured_output(proxy: ProxyThread) -> None:
    client = _client(proxy)
    reply = client.chat.completions.create(
        model="smart",
        messages=[{"role": "user", "content": "use the tool: weather in Hanoi"}],
        tools=[WEATHER],
    )
    calls = reply.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    json.loads(calls[0].function.arguments)
    parsed = client.chat.completions.parse(
        model="smart",
        messages=[{"role": "user", "content": "tell me a joke"}],
        response_format=Joke,
    )
    joke = parsed.choices[0].message.parsed
    assert isinstance(joke, Joke) and joke.setup


def test_streamed_tool_call(proxy: ProxyThread) -> None:
    stream = _client(proxy).chat.completions.create(
        model="smart",
        messages=[{"role": "user", "content": "use the tool: weather in Hanoi"}],
        tools=[WEATHER],
        stream=True,
    )
    names = [
        tc.function.name
        for chunk in stream
        if chunk.choices
        for tc in chunk.choices[0].delta.tool_calls or ()
        if tc.function and tc.function.name
    ]
    assert names == ["get_weather"]


async def test_async_client_and_models(proxy: ProxyThread) -> None:
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key=KEY, max_retries=0)
    models = await client.models.list()
    assert {m.id for m in models.data} == {"smart", "solo"}
    reply = await client.chat.completions.create(
        model="solo", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.model == "gpt-4.1"


def test_langchain_chat_openai(proxy: ProxyThread) -> None:
    llm = ChatOpenAI(base_url=proxy.base_url, api_key=KEY, model="smart")
    msg = llm.invoke("hello there")
    assert msg.response_metadata["model_name"] == "gpt-4.1"
    assert "hello there" in str(msg.content)
    text = "".join(str(c.content) for c in llm.stream("hello there"))
    assert "hello there" in text
    joke = llm.with_structured_output(Joke).invoke("tell me a joke")
    assert isinstance(joke, Joke)
    tool_msg = llm.bind_tools([WEATHER]).invoke("use the tool: weather in Hanoi")
    assert tool_msg.tool_calls[0]["name"] == "get_weather"


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("curl")
    if exe is None:
        unavailable("curl is not installed", "apt-get install curl")
    return subprocess.run(
        [exe, "-sS", "--max-time", "20", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


def test_curl_invoke_and_stream(proxy: ProxyThread) -> None:
    url = f"{proxy.base_url}/chat/completions"
    body = {"model": "smart", "messages": [{"role": "user", "content": "hello there"}]}
    auth = f"Authorization: Bearer {KEY}"
    out = _curl(url, "-H", auth, "-H", "Content-Type: application/json",
                "-d", json.dumps(body))  # fmt: skip
    assert json.loads(out.stdout)["model"] == "gpt-4.1"
    streamed = _curl("-N", url, "-H", auth, "-d", json.dumps({**body, "stream": True}))
    events = [
        line[6:] for line in streamed.stdout.splitlines() if line.startswith("data: ")
    ]
    assert events[-1] == "[DONE]"
    text = "".join(
        json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1]
    )
    assert "hello there" in text
    head = _curl("-i", url, "-H", auth, "-d", json.dumps(body)).stdout.lower()
    assert "x-holysheep-route: gpt-4.1" in head and "x-holysheep-attempts: 1" in head
