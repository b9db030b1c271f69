"""The simulator's faults over real HTTP: errors, timing, resets, broken streams.

Timing checks only use lower bounds or client timeouts; waits on the server's log
are event-based (`sim.log.wait_for`).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx2
import openai
import pytest

from langchain_holysheep.simulator import (
    Fault,
    GatewaySimulator,
)
from tests.integration_tests.simulator._helpers import KEY, USER, chat, sse


# -- error faults ---------------------------------------------------------------------
@pytest.mark.parametrize("code", [401, 403, 408, 429, 500, 502, 503, 504])
def test_status_faults(sim: GatewaySimulator, http: httpx2.Client, code: int) -> None:
    sim.script("gpt-4.1", [Fault.status(code)])
    response = chat(http)
    assert response.status_code == code
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert "retry-after" not in response.headers
    assert chat(http).status_code == 200  # the script is exhausted
    assert [r.status for r in sim.log.records()] == [code, 200]
    assert sim.log.billed().requests == 1


def test_retry_after_headers_and_overrides(
    sim: GatewaySimulator, http: httpx2.Client
) -> None:
    sim.script(
        "gpt-4.1",
        [
            Fault.status(429, retry_after=2, retry_after_ms=1500),
            Fault.status(
                503, retry_after=0.5, message="Upstream busy.", code_str="overloaded"
            ),
        ],
    )
    first = chat(http)
    assert first.status_code == 429
    assert first.headers["retry-after"] == "2"
    assert first.headers["retry-after-ms"] == "1500"
    assert first.json()["error"]["code"] == "rate_limit_exceeded"
    second = chat(http)
    assert second.headers["retry-after"] == "0.5"
    assert second.json()["error"]["message"] == "Upstream busy."
    assert second.json()["error"]["code"] == "overloaded"


def test_request_error_faults(sim: GatewaySimulator, oai: openai.OpenAI) -> None:
    sim.script(
        "gpt-4.1",
        [
            Fault.context_length_exceeded(),
            Fault.content_policy(reason="Flagged: violence."),
            Fault.model_not_found(),
        ],
    )
    with pytest.raises(openai.BadRequestError) as too_long:
        oai.chat.completions.create(model="gpt-4.1", messages=USER)  # type: ignore[arg-type]
    assert too_long.value.code == "context_length_exceeded"
    assert str(too_long.value.message).count(
        "This model's maximum context length is 1047576"
    )
    assert "However, your messages resulted in" in too_long.value.message
    with pytest.raises(openai.BadRequestError) as policy:
        oai.chat.completions.create(model="gpt-4.1", messages=USER)  # type: ignore[arg-type]
    assert policy.value.code == "content_policy_violation"
    assert "Flagged: violence." in policy.value.message
    with pytest.raises(openai.NotFoundError) as missing:
        oai.chat.completions.create(model="gpt-4.1", messages=USER)  # type: ignore[arg-type]
    assert missing.value.code == "model_not_found"
    assert "gpt-4.1" in missing.value.message


def test_real_context_window_is_enforced(http: httpx2.Client) -> None:
    long_text = "word " * 9_000
    response = http.post(
        "/chat/completions",
        json={
            "model": "moonshot-v1-8k",
            "messages": [{"role": "user", "content": long_text}],
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 8" in response.json()["error"]["message"]


# -- timing faults --------------------------------------------------------------------
def test_latency_delays_the_headers(sim: GatewaySimulator, http: httpx2.Client) -> None:
    sim.set_default(Fault.latency(0.2))
    start = time.monotonic()
    assert chat(http, "gpt-4o").status_code == 200
    assert time.monotonic() - start >= 0.2
    [record] = sim.log.records()
    assert record.fault == "latency"
    assert record.duration is not None
    assert record.duration >= 0.2


def test_slow_first_token(sim: GatewaySimulator, http: httpx2.Client) -> None:
    sim.script("gpt-4.1", [Fault.slow_first_token(0.4), Fault.slow_first_token(0.2)])
    payload = {"model": "gpt-4.1", "messages": USER, "stream": True}
    start = time.monotonic()
    with http.stream("POST", "/chat/completions", json=payload) as response:
        lines = response.iter_lines()
        role = next(line for line in lines if line.startswith("data: "))
        got_role = time.monotonic()
        content = next(line for line in lines if line.startswith("data: "))
        got_content = time.monotonic()
        rest = sse(lines)
    assert json.loads(role[6:])["choices"][0]["delta"]["role"] == "assistant"
    assert json.loads(content[6:])["choices"][0]["delta"]["content"]
    assert got_content - start >= 0.4
    assert got_content - got_role > 0.2  # the role chunk was not held back
    assert rest[-1] == "[DONE]"
    start = time.monotonic()
    assert chat(http).status_code == 200  # non-stream: plain latency
    assert time.monotonic() - start >= 0.2


def test_silent_never_answers(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.silent()])
    headers = {"Authorization": f"Bearer {KEY}"}
    with (
        httpx2.Client(base_url=sim.base_url, headers=headers, timeout=0.3) as client,
        pytest.raises(httpx2.ReadTimeout),
    ):
        chat(client)
    [record] = sim.log.wait_for(1, timeout=5, finished=True)
    assert record.status == "silent"
    assert not record.billed


def test_reset_is_a_tcp_reset(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.reset(), Fault.reset()])
    body = json.dumps({"model": "gpt-4.1", "messages": USER}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\n"
        + f"Authorization: Bearer {KEY}\r\n".encode()
        + b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as raw:
        raw.sendall(request)
        with pytest.raises(ConnectionResetError):
            data = raw.recv(65536)
            # An orderly close would return b"" here instead of raising.
            pytest.fail(f"expected a TCP reset, got {data!r}")
    with (
        openai.OpenAI(base_url=sim.base_url, api_key=KEY, max_retries=0) as client,
        pytest.raises(openai.APIConnectionError),
    ):
        client.chat.completions.create(model="gpt-4.1", messages=USER)  # type: ignore[arg-type]
    assert [r.status for r in sim.log.records()] == ["reset", "reset"]


# -- stream faults --------------------------------------------------------------------
def _partial_stream(
    http: httpx2.Client, **body: Any
) -> tuple[list[str], Exception | None]:
    payload = {"model": "gpt-4.1", "messages": USER, "stream": True, **body}
    events: list[str] = []
    try:
        with http.stream("POST", "/chat/completions", json=payload) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:])
    except (httpx2.RemoteProtocolError, httpx2.ReadTimeout, httpx2.ReadError) as exc:
        return events, exc
    return events, None


def _content_chunks(events: list[str]) -> int:
    return sum(
        1
        for e in events
        if e.startswith("{")
        and json.loads(e)["choices"]
        and json.loads(e)["choices"][0]["delta"].get("content")
    )


def test_stream_cut(sim: GatewaySimulator, http: httpx2.Client) -> None:
    sim.script(
        "gpt-4.1", [Fault.stream_cut(after_chunks=3), Fault.stream_cut(after_chunks=1)]
    )
    events, error = _partial_stream(http, stream_options={"include_usage": True})
    assert isinstance(error, httpx2.RemoteProtocolError)
    assert _content_chunks(events) == 3
    assert "[DONE]" not in events
    with pytest.raises(httpx2.RemoteProtocolError):  # non-stream: truncated body
        chat(http)
    records = sim.log.records()
    assert [r.status for r in records] == ["cut", "cut"]
    assert sim.log.billed().requests == 0


def test_stream_stall(sim: GatewaySimulator) -> None:
    sim.script(
        "gpt-4.1",
        [
            Fault.stream_stall(after_chunks=2),
            Fault.stream_stall(after_chunks=2, seconds=0.3),
        ],
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx2.Client(base_url=sim.base_url, headers=headers, timeout=0.25) as client:
        events, error = _partial_stream(client)
    assert isinstance(error, httpx2.ReadTimeout)
    assert _content_chunks(events) == 2
    [stalled] = sim.log.wait_for(1, timeout=5, finished=True)
    assert stalled.status == "stall"

    with httpx2.Client(base_url=sim.base_url, headers=headers, timeout=2) as client:
        start = time.monotonic()
        events, error = _partial_stream(client, stream_options={"include_usage": True})
    assert error is None
    assert time.monotonic() - start >= 0.3
    assert events[-1] == "[DONE]"
    assert sim.log.records()[-1].billed


def test_malformed_chunk(
    sim: GatewaySimulator, http: httpx2.Client, oai: openai.OpenAI
) -> None:
    sim.script(
        "gpt-4.1",
        [
            Fault.malformed_chunk(after_chunks=2),
            Fault.malformed_chunk(),
            Fault.malformed_chunk(),
        ],
    )
    events, error = _partial_stream(http)
    assert error is None
    assert _content_chunks(events[:-1]) == 2
    assert events[-1].startswith("{not json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[-1])
    with pytest.raises(json.JSONDecodeError):  # the SDK parses each event
        for _ in oai.chat.completions.create(
            model="gpt-4.1", messages=USER, stream=True
        ):  # type: ignore[arg-type]
            pass
    response = chat(http)  # non-stream: an invalid JSON body
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert sim.log.billed().requests == 0


def test_no_done(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.no_done(), Fault.no_done(hang=True)])
    headers = {"Authorization": f"Bearer {KEY}"}
    usage = {"stream_options": {"include_usage": True}}
    with httpx2.Client(base_url=sim.base_url, headers=headers, timeout=0.3) as client:
        events, error = _partial_stream(client, **usage)
        assert error is None
        assert "[DONE]" not in events
        assert json.loads(events[-1])["usage"]["total_tokens"] > 0
        events, error = _partial_stream(client, **usage)
        assert isinstance(error, httpx2.ReadTimeout)  # the body never ends
        assert json.loads(events[-1])["usage"]["total_tokens"] > 0
    assert [r.billed for r in sim.log.records()] == [True, True]
