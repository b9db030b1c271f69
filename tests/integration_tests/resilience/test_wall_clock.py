"""`timeout` and `deadline` are wall-clock bounds, whatever the reply's pace.

A real HTTP server on 127.0.0.1 that sends a valid reply one byte at a time:
the HTTP client's per-read timeout never trips on it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_openai import ChatOpenAI

from langchain_holysheep import ChatHolySheep, RetryPolicy
from langchain_holysheep.simulator import GatewaySimulator

REPLY = json.dumps(
    {
        "id": "chatcmpl-drip",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4.1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "drip " * 40},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 40, "total_tokens": 45},
    }
).encode()


class DripServer:
    """Answers every request with a valid completion, one byte every `gap` s."""

    def __init__(self, gap: float = 0.05) -> None:
        self.gap = gap
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            head = (
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                f"content-length: {len(REPLY)}\r\n\r\n"
            ).encode()
            try:
                conn.sendall(head)
                for i in range(len(REPLY)):
                    if self._stop.is_set():
                        return
                    conn.sendall(REPLY[i : i + 1])
                    time.sleep(self.gap)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture
def drip() -> Iterator[DripServer]:
    server = DripServer()
    yield server
    server.close()


def _model(drip: DripServer, sim: GatewaySimulator, **kw: Any) -> ChatHolySheep:
    backup = ChatOpenAI(
        model="deepseek-v3.2", base_url=sim.base_url, api_key=sim.api_key
    )
    return ChatHolySheep(
        model="gpt-4.1",
        base_url=drip.base_url,
        api_key=sim.api_key,
        retry=RetryPolicy(max_attempts=2, initial=0.05, jitter=False),
        fallbacks=[backup],
        **kw,
    )


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.parametrize("limits", [{"timeout": 1.0}, {"deadline": 1.5}])
def test_a_trickling_reply_is_cut_at_the_bound(
    drip: DripServer, sim: GatewaySimulator, mode: str, limits: dict[str, float]
) -> None:
    model = _model(drip, sim, **limits)
    started = time.monotonic()
    if "deadline" in limits:
        with pytest.raises(Exception) as info:
            _run(model, mode)
        elapsed = time.monotonic() - started
        assert "deadline" in str(info.value)
        assert elapsed < limits["deadline"] + 0.6
        assert sim.log.count() == 0  # no time was left for the fallback
    else:
        reply = _run(model, mode)
        elapsed = time.monotonic() - started
        meta = reply.response_metadata["holysheep"]
        assert meta["served_model"] == "deepseek-v3.2"
        assert meta["failures"][0]["reason"] == "attempt timeout"
        assert elapsed < limits["timeout"] + 0.8  # not the ~12 s the drip takes
        assert sim.log.count("deepseek-v3.2") == 1
    assert drip.requests == 1  # an attempt timeout falls over, never retried


def _run(model: ChatHolySheep, mode: str) -> Any:
    if mode == "invoke":
        return model.invoke("hi")
    return asyncio.run(model.ainvoke("hi"))


def test_the_bound_does_not_cut_a_reply_that_finishes_in_time(
    sim: GatewaySimulator,
) -> None:
    model = ChatHolySheep(
        model="gpt-4.1", base_url=sim.base_url, api_key=sim.api_key, timeout=5
    )
    for _ in range(20):  # pooled connections stay healthy after bounded calls
        assert model.invoke("hi").content
    assert sim.log.count() == 20
    assert {r.status for r in sim.log.records()} == {200}
