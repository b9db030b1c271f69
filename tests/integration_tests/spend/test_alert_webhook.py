"""The webhook hook posts to a real local HTTP endpoint."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.spend import (
    AlertMonitor,
    AlertRule,
    WebhookHook,
    get_holysheep_callback,
)

from .conftest import chat


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def test_error_rate_alert_reaches_the_webhook(
    sim: GatewaySimulator, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, got = receiver
    sim.script("gpt-4.1", [Fault.status(503)] * 3)
    llm = chat(sim, "gpt-4.1", max_tokens=20)
    sent: list[threading.Thread] = []
    hook = WebhookHook(url, timeout=2)
    with get_holysheep_callback() as cb:
        monitor = AlertMonitor(
            cb.tracker,
            [AlertRule("errors", "error_rate", ">", 0.01, min_calls=10)],
            hooks=[lambda a: sent.append(hook(a))],
        )
        for i in range(12):
            with contextlib.suppress(Exception):
                llm.invoke(f"q{i}")
        alerts = monitor.evaluate()
    for t in sent:
        t.join(5)
    assert [a.rule.name for a in alerts] == ["errors"]
    assert len(got) == 1 and got[0]["alert"] == "errors"
    assert got[0]["value"] == pytest.approx(0.25)
