"""Requests sent straight to the shared async client's pool act as the client's.

The package's own async client sends plain requests without httpx2's client
layers (`_direct`). What those layers do must still happen: the same request
on the wire, a compressed reply decoded, a cookie kept and sent back, a
redirect followed, and a client changed after it was built (here: an event
hook) taking the client's own path.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx2
import openai
import pytest

from langchain_holysheep import _direct, _wire
from langchain_holysheep._http import shared_async_client
from tests.integration_tests._scripted_http import ScriptedHTTP, reply

CHAT = "/v1/chat/completions"
ANSWER = {"id": "c1", "object": "chat.completion", "choices": []}
JSON = ("Content-Type", "application/json")
HEADERS = {"Authorization": "Bearer sk-test", "X-Trace": "t1"}


def _json(value: Any = ANSWER) -> bytes:
    return json.dumps(value).encode()


async def _post(client: httpx2.AsyncClient, times: int = 1) -> list[Any]:
    out = []
    for _ in range(times):
        got = await _wire.apost(client, "chat/completions", {"n": 1}, headers=HEADERS)
        out.append(got.body)
    return out


def test_only_an_unchanged_shared_client_sends_straight() -> None:
    """The httpx2 installed here has what the straight path needs; a client
    given an event hook (or auth, cookies, ...) goes through its own layers."""
    client = shared_async_client("http://127.0.0.1:9/v1", 29.5)

    async def straight() -> bool:
        return _direct.pool_of(client) is not None

    assert asyncio.run(straight())
    client.event_hooks = {"request": [], "response": [print]}
    assert not asyncio.run(straight())
    assert _direct.pool_of(httpx2.AsyncClient()) is None


def test_the_request_on_the_wire_is_the_clients_own() -> None:
    """Same method, path, headers (names, values) and body as through httpx2."""
    with ScriptedHTTP({CHAT: [reply(200, _json(), [JSON])]}) as server:
        client = shared_async_client(server.base_url, 31.5)

        async def hook(request: httpx2.Request) -> None:  # forces the client path
            pass

        async def both() -> None:
            await _post(client)
            client.event_hooks = {"request": [hook], "response": []}
            await _post(client)

        asyncio.run(both())
    direct, through_client = server.received
    assert direct == through_client
    assert direct.headers["authorization"] == "Bearer sk-test"
    assert direct.headers["content-length"] == str(len(direct.body))


def test_a_compressed_reply_is_decoded() -> None:
    events = b'data: {"a": 1}\n\ndata: [DONE]\n\n'
    script = {
        CHAT: [
            reply(200, gzip.compress(_json()), [JSON, ("Content-Encoding", "gzip")]),
            reply(200, gzip.compress(events), [("Content-Encoding", "gzip")]),
        ]
    }
    with ScriptedHTTP(script) as server:
        client = shared_async_client(server.base_url, None)

        async def run() -> tuple[list[Any], list[Any]]:
            posted = await _post(client)
            stream = await _wire.aopen_stream(client, "chat/completions", {"n": 1})
            return posted, [event.json() async for event in stream]

        posted, streamed = asyncio.run(run())
    assert posted == [ANSWER]
    assert streamed == [{"a": 1}]
    assert "gzip" in server.received[0].headers["accept-encoding"]


def test_a_cookie_is_kept_and_sent_back() -> None:
    script = {
        CHAT: [
            reply(200, _json(), [JSON, ("Set-Cookie", "route=a1; Path=/")]),
            reply(200, _json(), [JSON]),
        ]
    }
    with ScriptedHTTP(script) as server:
        client = shared_async_client(server.base_url, None)
        assert asyncio.run(_post(client, times=2)) == [ANSWER, ANSWER]
    first, second = server.received
    assert "cookie" not in first.headers
    assert second.headers["cookie"] == "route=a1"


def test_a_redirect_is_followed_as_the_client_follows_it() -> None:
    script = {
        CHAT: [reply(307, headers=[("Location", "/v1/elsewhere")])],
        "/v1/elsewhere": [reply(200, _json(), [JSON])],
    }
    with ScriptedHTTP(script) as server:
        client = shared_async_client(server.base_url, None)
        assert asyncio.run(_post(client)) == [ANSWER]
    asked, redirected = server.received
    assert (asked.method, asked.path) == ("POST", CHAT)
    assert (redirected.method, redirected.path) == ("POST", "/v1/elsewhere")
    assert redirected.body == asked.body


async def _no_op(response: httpx2.Response) -> None:
    return None


@pytest.mark.parametrize("straight", [True, False])
def test_redirects_are_counted_as_the_client_counts_them(straight: bool) -> None:
    """`max_redirects` holds with the first hop taken by the straight path."""
    script = {
        CHAT: [reply(307, headers=[("Location", "/v1/a")])],
        "/v1/a": [reply(307, headers=[("Location", "/v1/b")])],
        "/v1/b": [reply(200, _json(), [JSON])],
    }
    with ScriptedHTTP(script) as server:
        client = shared_async_client(server.base_url, None)
        client.max_redirects = 1
        if not straight:  # the client's own path, for reference
            client.event_hooks = {"request": [], "response": [_no_op]}
        with pytest.raises(httpx2.TooManyRedirects):
            asyncio.run(_post(client))
    assert [r.path for r in server.received] == [CHAT, "/v1/a"]


def test_an_error_reply_is_the_sdk_error_with_its_headers() -> None:
    body = _json({"error": {"message": "slow down", "type": "rate_limit"}})
    script = {CHAT: [reply(429, body, [JSON, ("Retry-After", "7")])]}
    with ScriptedHTTP(script) as server:
        client = shared_async_client(server.base_url, None)
        with pytest.raises(openai.RateLimitError) as caught:
            asyncio.run(_post(client))
    assert str(caught.value) == "Error code: 429 - slow down"
    assert caught.value.response.headers["retry-after"] == "7"


def test_a_refused_connection_is_the_sdk_connection_error() -> None:
    with ScriptedHTTP({}) as server:
        url = server.base_url
    client = shared_async_client(url, None)  # nothing listens there any more
    with pytest.raises(openai.APIConnectionError) as caught:
        asyncio.run(_post(client))
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert str(caught.value.request.url) == url + "/chat/completions"
