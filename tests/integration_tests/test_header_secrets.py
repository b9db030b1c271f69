"""No header value (the API key above all) reaches an error, over real HTTP."""

import asyncio
import logging
import time
from typing import Any

import pytest
from pydantic import SecretStr

from langchain_holysheep import ChatHolySheep, ConfigurationError, RetryPolicy
from langchain_holysheep.errors import InvalidAPIKeyError, InvalidHeaderError
from langchain_holysheep.simulator import GatewaySimulator
from tests._secret_scan import assert_secret_absent

SECRET = "s3cr3t-header-value"
SLOW_RETRY = RetryPolicy(max_attempts=3, initial=5.0, jitter=False)


def _call(model: ChatHolySheep, mode: str, **kwargs: Any) -> object:
    if mode == "invoke":
        return model.invoke("hi", **kwargs)
    if mode == "stream":
        return list(model.stream("hi", **kwargs))
    if mode == "ainvoke":
        return asyncio.run(model.ainvoke("hi", **kwargs))

    async def consume() -> list[Any]:
        return [chunk async for chunk in model.astream("hi", **kwargs)]

    return asyncio.run(consume())


@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
def test_unsendable_header_is_reported_without_its_value_and_not_retried(
    sim: GatewaySimulator, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the HTTP client's trace quotes the header
    model = ChatHolySheep(
        base_url=sim.base_url,
        api_key=SecretStr(sim.api_key),
        retry=SLOW_RETRY,
        fallbacks=["gemini-2.5-flash"],
    )
    started = time.monotonic()
    with pytest.raises(InvalidHeaderError) as info:
        _call(model, mode, extra_headers={"X-Trace": f"Bearer {SECRET}\nX-Evil: 1"})
    assert time.monotonic() - started < 2.5  # a retry would wait 5 s
    assert "extra_headers" in str(info.value)
    assert_secret_absent(info.value, SECRET)
    assert "Illegal header" in caplog.text and SECRET not in caplog.text
    assert sim.log.count() == 0  # the request never left the client
    assert _call(model, mode)  # the same model still works: nothing tripped


def test_key_with_line_break_is_refused_before_any_request(
    sim: GatewaySimulator,
) -> None:
    key = "hs-abc\ndef-" + SECRET
    with pytest.raises(InvalidAPIKeyError) as built:
        ChatHolySheep(base_url=sim.base_url, api_key=SecretStr(key))
    with pytest.raises(InvalidAPIKeyError) as listed:
        ChatHolySheep.list_models(api_key=key, base_url=sim.base_url)
    with pytest.raises(InvalidAPIKeyError) as alisted:
        asyncio.run(ChatHolySheep.alist_models(api_key=key, base_url=sim.base_url))
    for info in (built, listed, alisted):
        assert "HOLYSHEEP_API_KEY" in str(info.value)
        assert_secret_absent(info.value, SECRET, "abc")
    assert sim.log.count() == 0


def test_key_smuggled_into_default_headers_is_refused_unseen(
    sim: GatewaySimulator,
) -> None:
    with pytest.raises(ConfigurationError) as info:
        ChatHolySheep(
            base_url=sim.base_url,
            api_key=SecretStr(sim.api_key),
            default_headers={"Authorization": f"Bearer {SECRET}\n"},
        )
    assert "default_headers['Authorization']" in str(info.value)
    assert_secret_absent(info.value, SECRET)
    assert sim.log.count() == 0


@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
def test_non_ascii_header_value_is_reported_without_its_value(
    sim: GatewaySimulator, mode: str
) -> None:
    model = ChatHolySheep(
        base_url=sim.base_url, api_key=SecretStr(sim.api_key), retry=SLOW_RETRY
    )
    value = f"Bearer {SECRET}-é"
    started = time.monotonic()
    with pytest.raises((InvalidHeaderError, ConfigurationError)) as info:
        _call(model, mode, extra_headers={"X-Trace": value})
    assert time.monotonic() - started < 2.5  # never retried
    assert_secret_absent(info.value, SECRET)
    assert sim.log.count() == 0
