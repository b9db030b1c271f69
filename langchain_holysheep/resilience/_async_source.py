"""`AsyncSource`: an async chunk iterator, each read bounded by its own timeout.

The limits are `ReadLimit`'s: `asyncio.timeout` semantics around each read,
one timer per source.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from langchain_holysheep._read_limit import ReadLimit, ReadTimeout

__all__ = ["AsyncSource", "ReadTimeout"]


class AsyncSource:
    """Read an async chunk iterator with per-read timeouts."""

    __slots__ = ("_it", "_limit")

    def __init__(self, it: AsyncIterator[Any]) -> None:
        self._it = it
        self._limit = ReadLimit()

    async def next(self, timeout: float | None) -> Any:
        """The next chunk, `None` at the end; raises `ReadTimeout` on timeout."""
        try:
            return await self._limit.read(self._it.__anext__(), timeout)
        except StopAsyncIteration:
            return None

    async def close(self) -> None:
        """Close the underlying generator (closes the HTTP response)."""
        self._limit.close()
        aclose = getattr(self._it, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
