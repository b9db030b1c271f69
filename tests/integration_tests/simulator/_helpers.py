"""Request helpers shared by the simulator's tests."""

from __future__ import annotations

from collections.abc import Iterator
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
