"""Request helpers shared by the simulator's tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2

KEY = "hs-sim-key"
USER = [{"role": "user", "content": "Hello there, simulator!"}]


def chat(http: httpx2.Client, model: str = "gpt-4.1", **body: Any) -> httpx2.Response:
    return http.post(
        "/chat/completions", json={"model": model, "messages": USER, **body}
    )


def sse(lines: Iterator[str]) -> list[str]:
    """The `data:` payloads of an SSE body."""
    return [line[6:] for line in lines if line.startswith("data: ")]


@contextlib.contextmanager
def cli_server(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m langchain_holysheep.simulator --port 0 ARGS`: the process and the
    base URL it printed; killed on the way out if still running."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "langchain_holysheep.simulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        yield proc, proc.stdout.readline().strip()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
