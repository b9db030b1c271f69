"""The lean async request path raises exactly what the SDK path raises.

`HolySheepGateway._agenerate` posts plain calls through the OpenAI client's
`post(..., cast_to=dict)` and maps errors with langchain-openai's own (private)
error handlers; the sync path goes through `chat.completions.create`. Every
scripted failure must come out of both as the same exception class, so an
upgrade of langchain-openai that changes those handlers is caught here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from langchain_holysheep import HolySheepGateway, _fastpath
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
}


def _error(fn: Any) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("the scripted fault did not raise")


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fast_path_errors_match_the_sdk_path(sim: GatewaySimulator, name: str) -> None:
    model = HolySheepGateway(
        model="gpt-4.1", base_url=sim.base_url, api_key=sim.api_key, max_retries=0
    )
    sim.script("gpt-4.1", [FAULTS[name], FAULTS[name]])
    sync_error = _error(lambda: model.invoke("hi"))
    async_error = _error(lambda: asyncio.run(model.ainvoke("hi")))
    assert type(async_error) is type(sync_error), (sync_error, async_error)
    assert str(async_error) == str(sync_error)
    assert sim.log.count("gpt-4.1") == 2


def test_fast_path_answers_like_the_sdk_path(sim: GatewaySimulator) -> None:
    model = HolySheepGateway(
        model="gpt-4.1", base_url=sim.base_url, api_key=sim.api_key, temperature=0
    )
    payload = model._get_request_payload([HumanMessage("hi")])
    assert _fastpath.eligible(payload, model)  # ainvoke below takes the lean path
    sync_reply = model.invoke("hi")
    async_reply = asyncio.run(model.ainvoke("hi"))
    assert async_reply.usage_metadata == sync_reply.usage_metadata
    keys = set(sync_reply.response_metadata) - {"id", "system_fingerprint"}
    assert keys <= set(async_reply.response_metadata)
