"""The proxy in this process: uvicorn in a background thread, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from langchain_holysheep.serve._runtime import Runtime
from langchain_holysheep.serve.app import ServeApp
from langchain_holysheep.serve.config import hash_key, parse_config
from langchain_holysheep.spend.ledger import SQLiteLedger

KEY = "hsv-test-key-research-0123456789"
OTHER_KEY = "hsv-test-key-other-9876543210"
CAPPED_KEY = "hsv-test-key-capped-5555555555"


def config_text(ledger: Path | str, extra: str = "", group: str = "") -> str:
    """A config with the `smart` group (gpt-4.1 then deepseek-v3.2) and keys."""
    return f"""
[server]
ledger = "{ledger}"
max_body_bytes = 1048576
grace_seconds = 5

[groups.smart]
routes = ["gpt-4.1", "deepseek-v3.2"]
retry = {{ max_attempts = 3, initial = 0.01, max_backoff = 0.05 }}

[groups.solo]
routes = ["gpt-4.1"]
{group}
[keys.research]
hash = "{hash_key(KEY)}"
groups = ["*"]
tags = ["team:research"]

[keys.other]
hash = "{hash_key(OTHER_KEY)}"
groups = ["solo"]

[keys.capped]
hash = "{hash_key(CAPPED_KEY)}"
groups = ["*"]
budget = {{ limit = "0.001", window = "total" }}
{extra}
"""


def first_content(lines: Iterator[str]) -> list[str]:
    """Read SSE lines until the first one with content; returns what was read."""
    seen = []
    for line in lines:
        seen.append(line)
        compact = line.replace(" ", "")
        if '"content":"' in compact and '"content":""' not in compact:
            return seen
    raise AssertionError(f"no content in {seen}")


@contextmanager
def open_stream(
    base_url: str, key: str, body: Mapping[str, Any]
) -> Iterator[tuple[httpx.Response, Iterator[str]]]:
    """A streamed call read up to its first content; the client leaves on exit.

    Yields the response and its line iterator (kept: dropping it would close
    the response).
    """
    headers = {"Authorization": f"Bearer {key}"}
    with (
        httpx.Client(base_url=base_url, timeout=30) as client,
        client.stream("POST", "/chat/completions", json=body, headers=headers) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()
        first_content(lines)
        yield r, lines


class _Recorded:
    """A sink that counts the records the proxy wrote (tests wait on it)."""

    def __init__(self) -> None:
        self.count = 0
        self.cond = threading.Condition()

    def record_many(self, recs: list[Any]) -> None:
        with self.cond:
            self.count += len(recs)
            self.cond.notify_all()

    def wait(self, n: int, timeout: float = 10.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.count >= n, timeout):
                raise TimeoutError(f"{self.count} record(s) written, waited for {n}")


class ProxyThread:
    """`ServeApp` on uvicorn in a daemon thread (port 0: a free port)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.recorded = _Recorded()
        runtime.spend.sinks.append(self.recorded)  # after the ledger
        self.app = ServeApp(runtime)
        self._sock = socket.socket(
            socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
        )
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        self._sock.setblocking(False)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self._sock]))

    def start(self) -> ProxyThread:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the proxy did not start")
            threading.Event().wait(0.01)
        return self

    def ledger_rows(self, n: int) -> list[Any]:
        """The ledger's rows once `n` records were written (calls settle after
        their response went out, so a client may read its answer first)."""
        self.recorded.wait(n)
        self.runtime.ledger.flush()
        return list(self.runtime.ledger.query())

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self._sock.close()


@contextmanager
def running_proxy(
    tmp_path: Path,
    sim: Any,
    extra: str = "",
    group: str = "",
    ledger_url: str | None = None,
) -> Iterator[ProxyThread]:
    """The proxy in front of `sim`, with a fresh SQLite ledger.

    With `ledger_url` (`postgresql://...`) the config names that ledger and
    the runtime opens it, as `holysheep serve` does.
    """
    ledger_path = tmp_path / "ledger.sqlite3"
    text = config_text(ledger_url or ledger_path, extra, group)
    config = parse_config(text, "holysheep.toml")
    import os

    env = {"HOLYSHEEP_API_KEY": sim.api_key, "HOLYSHEEP_BASE_URL": sim.base_url}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        ledger = None if ledger_url else SQLiteLedger(ledger_path, flush_interval=0)
        runtime = Runtime(config, ledger=ledger)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    proxy = ProxyThread(runtime).start()
    try:
        yield proxy
    finally:
        proxy.stop()
