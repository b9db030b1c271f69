"""The proxy's watch on its client: a disconnect cancels the call, nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from langchain_holysheep.serve._relay_call import _Client


def _receiver(messages: list[dict[str, Any]]) -> tuple[Any, asyncio.Queue]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)

    async def receive() -> dict[str, Any]:
        return await queue.get()

    return receive, queue


async def test_a_disconnect_cancels_the_call() -> None:
    receive, queue = _receiver([])

    async def call() -> None:
        client = _Client(receive)
        try:
            await asyncio.sleep(10)
        finally:
            client.stop()
            assert client.left

    task = asyncio.ensure_future(call())
    await asyncio.sleep(0.01)
    queue.put_nowait({"type": "http.disconnect"})
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_other_messages_keep_watching() -> None:
    # an extra body message is not a disconnect: the watch goes on, and a
    # disconnect after it still cancels
    receive, queue = _receiver([{"type": "http.request", "body": b""}])
    seen: list[bool] = []

    async def call() -> None:
        client = _Client(receive)
        try:
            await asyncio.sleep(0.02)
            seen.append(client.left)
            await asyncio.sleep(10)
        finally:
            client.stop()

    task = asyncio.ensure_future(call())
    await asyncio.sleep(0.05)
    assert seen == [False] and not task.done()
    queue.put_nowait({"type": "http.disconnect"})
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_call_that_ended_is_not_cancelled_by_a_late_disconnect() -> None:
    receive, queue = _receiver([])
    client = _Client(receive)
    await asyncio.sleep(0)
    client.stop()
    queue.put_nowait({"type": "http.disconnect"})
    await asyncio.sleep(0.01)
    assert not client.left
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
