"""One direction of an emulated network link: delays, bandwidth, byte counts.

`LinkSchedule` decides when each chunk arrives; `copy_delayed` copies a stream with
those arrival times (a chunk sent at `t` arrives at `t + latency`, in order;
waiting for an absolute time means delays of chunks in flight never add up).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass

__all__ = ["Counters", "LinkSchedule", "close_writer", "copy_delayed"]

_CHUNK = 64 * 1024
_QUEUE_CHUNKS = 64  # at most 4 MiB in flight per direction, then TCP backpressure


@dataclass
class LinkSchedule:
    """When each chunk sent into one direction of a link arrives.

    A chunk leaves once the link is free and not before `opens_at` (the end of
    the emulated TCP handshake); it takes `size / bandwidth` seconds to
    serialise, then `latency` seconds to arrive. Chunks never overtake.

    Args:
        latency: one-way delay in seconds.
        bandwidth: bytes per second, or `None` for no cap.
        opens_at: the earliest departure time (same clock as `arrival`'s `now`).
    """

    latency: float
    bandwidth: float | None = None
    opens_at: float = 0.0

    def arrival(self, now: float, size: int) -> float:
        """The arrival time of `size` bytes sent at `now`."""
        depart = max(now, self.opens_at)
        if self.bandwidth is not None:
            depart += size / self.bandwidth
        self.opens_at = depart  # the link is busy until the chunk has left
        return depart + self.latency


class Counters:
    """Thread-safe connection and byte counts, with a wait for "no open ones"."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.accepted = 0
        self.open = 0
        self.to_target = 0
        self.to_client = 0

    def opened(self) -> None:
        """Count an accepted connection."""
        with self.changed:
            self.accepted += 1
            self.open += 1

    def closed(self) -> None:
        """Count a connection's end; wakes `wait_for` callers."""
        with self.changed:
            self.open -= 1
            self.changed.notify_all()

    def moved(self, size: int, *, upstream: bool) -> None:
        """Count `size` bytes delivered towards the target or the client."""
        with self.changed:
            if upstream:
                self.to_target += size
            else:
                self.to_client += size


async def copy_delayed(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    link: LinkSchedule,
    count: Counters,
    upstream: bool,
) -> None:
    """Copy one direction with the link's delays; EOF is delivered late too.

    A reset or other socket error on either end raises, so the caller aborts
    both connections, as a peer's reset would.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE_CHUNKS)

    async def deliver() -> None:
        while True:
            at, data = await queue.get()
            wait = at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
            count.moved(len(data), upstream=upstream)

    async def read() -> None:
        while True:
            data = await reader.read(_CHUNK)
            await queue.put((link.arrival(loop.time(), len(data)), data))
            if not data:
                return

    tasks = {asyncio.create_task(read()), asyncio.create_task(deliver())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        errors = [t.exception() for t in tasks if t.done() and not t.cancelled()]
        for error in errors:
            if error is not None:
                raise error  # a side's socket error
    finally:
        for task in tasks:
            task.cancel()


async def close_writer(writer: asyncio.StreamWriter, *, abort: bool) -> None:
    """Close (or, as a reset would, abort) a connection and wait until it is."""
    if abort:
        writer.transport.abort()
    else:
        writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()
