"""Bad input: each a clean OpenAI-shaped error; the server keeps serving; no key leaks.

Garbage JSON, wrong types, missing messages, a 10 MB body, an unknown model, a
wrong key, a key in the query string, a key without access to a group, a key
over its budget. After all of them, a normal request is answered, and neither
the upstream key nor any virtual key appears in an error, the logs or the
metrics.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import openai
import pytest

from langchain_holysheep.simulator import Fault, GatewaySimulator
from tests.integration_tests.serve._proxy import (
    CAPPED_KEY,
    KEY,
    OTHER_KEY,
    ProxyThread,
)

URL = "/chat/completions"
GOOD = {"model": "smart", "messages": [{"role": "user", "content": "hi"}]}
BIG = (
    b'{"model": "smart", "messages": [{"role": "user", "content": "'
    + (b"x" * (10 * 1024 * 1024))
    + b'"}]}'
)

BAD = "invalid_request"
CASES: dict[str, tuple[dict[str, Any], int, str | None]] = {
    "garbage-json": ({"content": b"{not json"}, 400, "invalid_json"),
    "json-array": ({"json": [1, 2]}, 400, "invalid_json"),
    "no-messages": ({"json": {"model": "smart"}}, 400, BAD),
    "empty-messages": ({"json": {"model": "smart", "messages": []}}, 400, BAD),
    "message-not-object": ({"json": {"model": "smart", "messages": ["hi"]}}, 400, BAD),
    "model-not-string": ({"json": {**GOOD, "model": 7}}, 400, BAD),
    "stream-not-bool": ({"json": {**GOOD, "stream": "yes"}}, 400, BAD),
    "max-tokens-bool": ({"json": {**GOOD, "max_tokens": True}}, 400, BAD),
    "10mb-body": ({"content": BIG}, 413, "request_too_large"),
    "unknown-model": ({"json": {**GOOD, "model": "nope"}}, 404, "model_not_found"),
}  # fmt: skip


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # under the handler's lock
        # the server's loggers (the test's own HTTP client logs the URL it sent)
        if record.name.startswith(("langchain_holysheep", "uvicorn")):
            self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Any:
    capture = _Capture()
    root = logging.getLogger()
    old = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    root.setLevel(old)


def _http(proxy: ProxyThread, key: str | None = KEY) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=proxy.base_url, headers=headers, timeout=30)


def _error(reply: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error  # type: ignore[no-any-return]


def test_bad_requests_get_clean_errors_and_leak_nothing(
    proxy: ProxyThread, sim: GatewaySimulator, logs: _Capture
) -> None:
    bodies = []
    with _http(proxy) as client:
        for name, (kw, status, code) in CASES.items():
            reply = client.post(URL, **kw)
            bodies.append(reply.text)
            _error(reply, status, code)
            assert client.post(URL, json=GOOD).status_code == 200, name
        # keys: missing, wrong (same answer as missing), in the query string
        with _http(proxy, None) as anon:
            missing = anon.post(URL, json=GOOD)
        with _http(proxy, "hsv-wrong") as wrong_client:
            wrong = wrong_client.post(URL, json=GOOD)
        assert _error(missing, 401, "invalid_api_key") == _error(
            wrong, 401, "invalid_api_key"
        )
        query = client.post(URL, json=GOOD, params={"api_key": KEY})
        _error(query, 400, "key_in_query")
        with _http(proxy, OTHER_KEY) as other:
            _error(other.post(URL, json=GOOD), 404, "model_not_found")
        bodies += [missing.text, wrong.text, query.text]
        metrics = client.get("/metrics".join(proxy.base_url.rsplit("/v1", 1)))
    assert metrics.status_code == 200 and "holysheep_proxy_requests" in metrics.text
    assert sim.log.count() == len(CASES)  # only the good requests went upstream
    for text in [*bodies, metrics.text, *logs.lines]:
        for secret in (KEY, OTHER_KEY, CAPPED_KEY, sim.api_key):
            assert secret not in text


def test_over_budget_is_a_429_with_nothing_sent(
    proxy: ProxyThread, sim: GatewaySimulator
) -> None:
    client = openai.OpenAI(base_url=proxy.base_url, api_key=CAPPED_KEY, max_retries=0)
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(**GOOD)  # type: ignore[call-overload]
    body = err.value.body
    assert isinstance(body, dict) and body["code"] == "budget_exceeded"
    assert "budget" in body["message"].lower()
    assert sim.log.count() == 0


def test_exhausted_routes_name_them_and_the_ledger_has_every_attempt(
    proxy: ProxyThread, sim: GatewaySimulator
) -> None:
    sim.script("gpt-4.1", [], then=Fault.status(503))
    sim.script("deepseek-v3.2", [], then=Fault.status(502))
    client = openai.OpenAI(base_url=proxy.base_url, api_key=KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(**GOOD)  # type: ignore[call-overload]
    assert err.value.status_code == 502
    message = str(err.value)
    assert "gpt-4.1" in message and "deepseek-v3.2" in message
    rows = proxy.ledger_rows(6)
    assert len(rows) == sim.log.count() == 6
    assert all(r.outcome == "error" and r.cost == 0 for r in rows)
