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
    wire,
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


# -- replies that are not completions -------------------------------------------------
MESSAGES: Any = USER  # the SDK's typed message parameter


def _stream_body(http: httpx2.Client, **body: Any) -> httpx2.Response:
    payload = {"model": "gpt-4.1", "messages": USER, "stream": True, **body}
    return http.post("/chat/completions", json=payload)


def test_bad_reply_html_page(
    sim: GatewaySimulator, http: httpx2.Client, oai: openai.OpenAI
) -> None:
    sim.script("gpt-4.1", [Fault.bad_reply("html")] * 3)
    for response in (chat(http), _stream_body(http)):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert response.text.startswith("<!DOCTYPE html>")
        assert "Sign in" in response.text
    # The SDK hands a non-JSON 200 through as text.
    reply: Any = oai.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert isinstance(reply, str)
    assert reply.startswith("<!DOCTYPE html>")
    records = sim.log.records()
    assert [(r.fault, r.status, r.billed) for r in records] == [
        ("bad_reply", 200, False)
    ] * 3
    assert [r.stream for r in records] == [False, True, False]
    assert all(r.prompt_tokens > 0 for r in records)  # counted, never billed


@pytest.mark.parametrize(
    ("shape", "choices"),
    [("no_choices", "absent"), ("null_choices", None), ("empty_choices", [])],
)
def test_bad_reply_json_shapes(
    sim: GatewaySimulator, http: httpx2.Client, shape: str, choices: Any
) -> None:
    sim.script("gpt-4.1", [Fault.bad_reply(shape), Fault.bad_reply(shape)])  # type: ignore[arg-type]
    response = chat(http)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body.get("choices", "absent") == choices
    assert "usage" not in body

    events = sse(
        _stream_body(http, stream_options={"include_usage": True}).iter_lines()
    )
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk.get("choices", "absent") == choices
        assert chunk["usage"] is None
    assert [(r.status, r.billed) for r in sim.log.records()] == [(200, False)] * 2


def test_error_reply_non_stream(
    sim: GatewaySimulator, http: httpx2.Client, oai: openai.OpenAI
) -> None:
    sim.script(
        "gpt-4.1",
        [
            Fault.error_reply(429),
            Fault.error_reply(
                500,
                message="Upstream exploded.",
                code_str="boom",
                error_type="upstream",
            ),
            Fault.status(429),
        ],
    )
    as_200 = chat(http)
    assert as_200.status_code == 200
    assert as_200.headers["content-type"] == "application/json"
    custom = chat(http)
    as_429 = chat(http)
    assert as_429.status_code == 429
    assert as_200.json() == as_429.json()  # the object `Fault.status` sends
    assert custom.status_code == 200
    assert custom.json() == {
        "error": {
            "message": "Upstream exploded.",
            "type": "upstream",
            "param": None,
            "code": "boom",
        }
    }
    sim.script("gpt-4.1", [Fault.error_reply(503)])
    reply: Any = oai.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert not getattr(reply, "choices", None)  # the SDK does not raise on a 200
    assert reply.model_dump()["error"]["type"] == "server_error"
    statuses = [(r.fault, r.status, r.billed) for r in sim.log.records()]
    assert statuses == [
        ("error_reply", 200, False),
        ("error_reply", 200, False),
        ("status", 429, False),
        ("error_reply", 200, False),
    ]


def test_error_reply_mid_stream(
    sim: GatewaySimulator, http: httpx2.Client, oai: openai.OpenAI
) -> None:
    sim.script(
        "gpt-4.1",
        [
            Fault.error_reply(429, after_chunks=2),
            Fault.error_reply(502, after_chunks=0),
        ],
    )
    events, error = _partial_stream(http, stream_options={"include_usage": True})
    assert error is None
    assert _content_chunks(events[:-1]) == 2
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.APIError) as raised:  # the SDK raises error events
        for chunk in oai.chat.completions.create(
            model="gpt-4.1", messages=MESSAGES, stream=True
        ):
            assert not chunk.choices[0].delta.content
    assert not isinstance(raised.value, openai.APIStatusError)
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["type"] == "server_error"
    assert [(r.status, r.billed) for r in sim.log.records()] == [(200, False)] * 2


def test_malformed_chunk_payloads(
    sim: GatewaySimulator, http: httpx2.Client, oai: openai.OpenAI
) -> None:
    sim.script(
        "gpt-4.1",
        [
            Fault.malformed_chunk(after_chunks=2, payload="html"),
            Fault.malformed_chunk(after_chunks=2, payload="html"),
            Fault.malformed_chunk(after_chunks=1, payload="binary"),
            Fault.malformed_chunk(payload="html"),
            Fault.malformed_chunk(payload="binary"),
        ],
    )
    payload = {"model": "gpt-4.1", "messages": USER, "stream": True}
    with http.stream("POST", "/chat/completions", json=payload) as response:
        raw = response.read()
    head, _, page = raw.partition(b"<!DOCTYPE html>")
    assert page.endswith(b"</html>\r\n")  # the page as is, then the body ends
    assert _content_chunks(sse(iter(head.decode().splitlines()))) == 2
    # SSE readers skip the page's lines: the SDK's stream just ends early.
    chunks = list(
        oai.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    )
    assert [c.choices[0].finish_reason for c in chunks] == [None] * 3
    with pytest.raises(UnicodeDecodeError):  # not UTF-8: the SDK's decoder fails
        for _ in oai.chat.completions.create(
            model="gpt-4.1", messages=MESSAGES, stream=True
        ):
            pass
    html = chat(http)  # non-stream: half of the body, then the page
    assert html.status_code == 200
    assert html.content.endswith(wire.HTML_PAGE)
    with pytest.raises(json.JSONDecodeError):
        json.loads(html.content)
    binary = chat(http)
    assert binary.content.endswith(wire.MALFORMED_BINARY)
    with pytest.raises(UnicodeDecodeError):
        binary.content.decode()
    assert [(r.status, r.billed) for r in sim.log.records()] == [(200, False)] * 5


def test_slow_drip(sim: GatewaySimulator, http: httpx2.Client) -> None:
    interval = 0.004
    sim.script("gpt-4.1", [Fault.slow_drip(interval)])
    headers = {"Authorization": f"Bearer {KEY}"}
    # Each byte comes well within a 1 s read timeout; the whole body takes longer.
    with httpx2.Client(base_url=sim.base_url, headers=headers, timeout=1.0) as client:
        start = time.monotonic()
        response = chat(client)
        elapsed = time.monotonic() - start
    size = len(response.content)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == size
    assert elapsed >= (size - 1) * interval > 1.0
    assert response.json()["choices"] == chat(http).json()["choices"]
    dripped, _ = sim.log.records()
    assert (dripped.fault, dripped.status, dripped.billed) == ("slow_drip", 200, True)
    assert dripped.duration is not None
    assert dripped.duration >= (size - 1) * interval


def test_slow_drip_stream_and_departure(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.slow_drip(0.001), Fault.slow_drip(0.05)])
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx2.Client(base_url=sim.base_url, headers=headers, timeout=5) as client:
        events, error = _partial_stream(  # short: a stream drips ~1 ms a byte
            client, stream_options={"include_usage": True}, max_tokens=1
        )
        assert error is None
        assert events[-1] == "[DONE]"
        assert _content_chunks(events[:-1]) == 1
        assert json.loads(events[-2])["usage"]["total_tokens"] > 0
        payload = {"model": "gpt-4.1", "messages": USER}
        with client.stream("POST", "/chat/completions", json=payload) as response:
            first = next(response.iter_raw())
    assert first[:1] == b"{"
    streamed, left = sim.log.wait_for(2, finished=True)
    assert (streamed.status, streamed.billed) == (200, True)
    assert (left.status, left.billed) == ("disconnected", False)


def test_empty_chunks_stream(sim: GatewaySimulator, http: httpx2.Client) -> None:
    sim.script(
        "gpt-4.1", [Fault.empty_chunks(after_chunks=1, seconds=0.3, interval=0.05)]
    )
    events, error = _partial_stream(http, stream_options={"include_usage": True})
    assert error is None
    chunks = [json.loads(e) for e in events[:-1]]
    empty = [i for i, c in enumerate(chunks) if c["choices"] == [] and not c["usage"]]
    # role, one content chunk, then only empty chunks for 0.3 s, then the rest
    assert empty == list(range(2, 2 + len(empty)))
    assert len(empty) >= 3
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
    )
    assert text == chat(http).json()["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"]["total_tokens"] > 0
    assert events[-1] == "[DONE]"
    first = sim.log.records()[0]
    assert (first.fault, first.status, first.billed) == ("empty_chunks", 200, True)


def test_empty_chunks_until_the_client_leaves(sim: GatewaySimulator) -> None:
    sim.script(
        "gpt-4.1",
        [
            Fault.empty_chunks(after_chunks=0, interval=0.02),
            Fault.empty_chunks(interval=0.02),
        ],
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    payload = {"model": "gpt-4.1", "messages": USER, "stream": True}
    with httpx2.Client(base_url=sim.base_url, headers=headers, timeout=5) as client:
        with client.stream("POST", "/chat/completions", json=payload) as response:
            lines = (
                line for line in response.iter_lines() if line.startswith("data: ")
            )
            role = json.loads(next(lines)[6:])
            assert role["choices"][0]["delta"]["role"] == "assistant"
            for _ in range(5):  # no content before the client gives up
                assert json.loads(next(lines)[6:])["choices"] == []
        # Non-stream: JSON whitespace, kept alive until the client leaves.
        del payload["stream"]
        with client.stream("POST", "/chat/completions", json=payload) as response:
            assert "content-length" not in response.headers
            received = b""
            for part in response.iter_raw():
                received += part
                if len(received) >= 3:
                    break
    assert received.strip() == b""
    records = sim.log.wait_for(2, finished=True)
    assert [(r.status, r.billed) for r in records] == [("stall", False)] * 2


def test_empty_chunks_non_stream_then_body(
    sim: GatewaySimulator, http: httpx2.Client
) -> None:
    sim.script("gpt-4.1", [Fault.empty_chunks(seconds=0.2, interval=0.05)])
    response = chat(http)
    assert response.status_code == 200
    assert response.content.startswith(b"   ")  # keep-alive whitespace first
    assert response.json()["choices"] == chat(http).json()["choices"]
    assert sim.log.records()[0].billed
