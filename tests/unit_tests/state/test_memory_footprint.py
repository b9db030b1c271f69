"""`MemoryStore` keeps nothing of a finished reservation: memory stays flat."""

from __future__ import annotations

import gc
import tracemalloc
from decimal import Decimal

from langchain_holysheep.state import MemoryStore, Reservation

CAP = Decimal("1000000")


def _cycle(store: MemoryStore, calls: int, *, extend: bool = False) -> None:
    for i in range(calls):
        res = store.reserve("team", "day", Decimal("0.02"), CAP, 300, window_ttl=900)
        assert isinstance(res, Reservation)
        if extend:
            res = store.extend(res, 300) or res
        if i % 3:
            store.settle(res, Decimal("0.013"))
        else:
            store.release(res)


def _growth(store: MemoryStore, calls: int, **kw: bool) -> int:
    """Bytes of live Python memory `calls` more reserve/finish cycles leave."""
    _cycle(store, 2_000, **kw)  # warm: the window, the caches
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _cycle(store, calls, **kw)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_finished_reservations_leave_nothing_behind() -> None:
    # Each lease and its id took ~300 bytes until the lease ended (300 s here):
    # 20,000 calls would have kept ~6 MB.
    store = MemoryStore()
    assert _growth(store, 20_000) < 50_000
    assert _growth(store, 5_000, extend=True) < 50_000
    usage = store.usage("team", "day")
    assert usage.reserved == 0 and usage.spent > 0


def test_leases_still_end_on_their_own() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    short = [store.reserve("k", "w", Decimal("0.1"), CAP, 5) for _ in range(3)]
    long = store.reserve("k", "w", Decimal("0.2"), CAP, 50)
    assert store.extend(short[0], 20) is not None  # now ends at 1020
    now[0] += 6
    assert store.usage("k", "w").reserved == Decimal("0.3")  # short[0] + long
    now[0] += 15
    assert store.usage("k", "w").reserved == Decimal("0.2")
    assert isinstance(long, Reservation)
    assert store.settle(long, Decimal("0.1")).counted == Decimal("0.1")
    done = store.settle(short[1], Decimal("0.1"))
    assert done.late and store.usage("k", "w").reserved == 0
