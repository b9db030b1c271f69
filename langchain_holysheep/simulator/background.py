"""`Background`: `with` and `async with` for a server that runs in a thread."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TypeVar

__all__ = ["Background"]

_S = TypeVar("_S", bound="Background")


class Background:
    """Mixin for a server with `start()` / `stop()`: used as a context manager.

    `async with` starts and stops it in a worker thread, so a running event loop
    is never blocked while the server binds or joins its thread.
    """

    def start(self: _S, timeout: float = 10.0) -> _S:
        """Start serving and return `self` (subclasses implement it)."""
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (subclasses implement it)."""
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self: _S) -> _S:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
