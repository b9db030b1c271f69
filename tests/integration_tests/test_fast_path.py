"""The lean request path answers and fails exactly as the OpenAI SDK's path.

`HolySheepGateway` posts plain calls (sync, async, streamed or not) on its
shared HTTP client and reads plain dicts (`_lean`, `_wire`); a model on the
SDK's path is the reference. Every scripted failure must come out of both as
the same exception with the same message, and every answer with the same
content, usage and metadata, so an upgrade of the SDK or langchain-openai that
changes either is caught here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from langchain_holysheep import HolySheepGateway
from langchain_holysheep.simulator import Fault, GatewaySimulator

FAULTS = {
    "400": Fault.status(400),
    "401": Fault.status(401),
    "403": Fault.status(403),
    "404": Fault.model_not_found(),
    "429": Fault.status(429),
    "500": Fault.status(500),
    "503": Fault.status(503),
    "context": Fault.context_length_exceeded(),
    "content policy": Fault.content_policy(),
    "bad reply": Fault.bad_reply(),
    "error reply": Fault.error_reply(),
}


def _models(sim: GatewaySimulator) -> tuple[HolySheepGateway, HolySheepGateway]:
    lean = HolySheepGateway(
        model="gpt-4.1", base_url=sim.base_url, api_key=sim.api_key, max_retries=0
    )
    sdk = HolySheepGateway(
        model="gpt-4.1", base_url=sim.base_url, api_key=sim.api_key, max_retries=0
    )
    sdk._bounded_sync = sdk._shared_async = False  # the OpenAI SDK's path
    assert lean._bounded_sync and lean._shared_async
    return lean, sdk


def _calls(model: HolySheepGateway) -> dict[str, Callable[[], Any]]:
    async def astream() -> list[Any]:
        return [c async for c in model.astream("hi")]

    return {
        "invoke": lambda: model.invoke("hi"),
        "ainvoke": lambda: asyncio.run(model.ainvoke("hi")),
        "stream": lambda: list(model.stream("hi")),
        "astream": lambda: asyncio.run(astream()),
    }


def _error(fn: Callable[[], Any]) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("the scripted fault did not raise")


@pytest.mark.parametrize("call", ["invoke", "ainvoke", "stream", "astream"])
@pytest.mark.parametrize("name", sorted(FAULTS))
def test_lean_path_errors_match_the_sdk_path(
    sim: GatewaySimulator, name: str, call: str
) -> None:
    lean, sdk = _models(sim)
    sim.script("gpt-4.1", [FAULTS[name], FAULTS[name]])
    lean_error = _error(_calls(lean)[call])
    sdk_error = _error(_calls(sdk)[call])
    assert type(lean_error) is type(sdk_error), (lean_error, sdk_error)
    assert str(lean_error) == str(sdk_error)
    assert sim.log.count("gpt-4.1") == 2


@pytest.mark.parametrize("call", ["invoke", "ainvoke"])
def test_lean_path_answers_like_the_sdk_path(sim: GatewaySimulator, call: str) -> None:
    lean, sdk = _models(sim)
    lean_reply = _calls(lean)[call]()
    sdk_reply = _calls(sdk)[call]()
    assert lean_reply.content == sdk_reply.content
    assert lean_reply.usage_metadata == sdk_reply.usage_metadata
    strip = {"id", "system_fingerprint", "token_usage"}
    lean_meta, sdk_meta = lean_reply.response_metadata, sdk_reply.response_metadata
    assert {k: v for k, v in lean_meta.items() if k not in strip} == {
        k: v for k, v in sdk_meta.items() if k not in strip
    }
    # The SDK's models add the fields it knows as None; the rest is the same.
    assert _set(lean_meta["token_usage"]) == _set(sdk_meta["token_usage"])


def _set(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _set(v) for k, v in value.items() if v is not None}
    return value


@pytest.mark.parametrize("call", ["stream", "astream"])
def test_lean_stream_chunks_match_the_sdk_path(
    sim: GatewaySimulator, call: str
) -> None:
    lean, sdk = _models(sim)
    lean_chunks = _calls(lean)[call]()
    sdk_chunks = _calls(sdk)[call]()
    assert [c.content for c in lean_chunks] == [c.content for c in sdk_chunks]
    assert [c.usage_metadata for c in lean_chunks] == [
        c.usage_metadata for c in sdk_chunks
    ]
    assert [c.response_metadata.get("finish_reason") for c in lean_chunks] == [
        c.response_metadata.get("finish_reason") for c in sdk_chunks
    ]
