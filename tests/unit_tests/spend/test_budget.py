from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.exceptions import ModelError

from langchain_holysheep.errors import ConfigurationError, HolySheepError
from langchain_holysheep.spend.budgets._budget import Budget
from langchain_holysheep.spend.budgets._errors import (
    BudgetCheckError,
    BudgetError,
    BudgetExceededError,
    ThresholdEvent,
    UnpricedCallError,
)
from langchain_holysheep.spend.budgets._windows import next_boundary, window_id

D = Decimal


class Clock:
    def __init__(self, when: str = "2026-11-03T10:59:00") -> None:
        self.t = datetime.fromisoformat(when).replace(tzinfo=timezone.utc).timestamp()

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    "limit", [0, -1, "0", "-0.01", "NaN", "inf", "abc", float("nan"), True, None, [1]]
)
def test_bad_limits_rejected_at_construction(limit: object) -> None:
    with pytest.raises(ConfigurationError, match="Budget limit"):
        Budget(limit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": "week"}, "window"),
        ({"scope": ""}, "scope"),
        ({"thresholds": (0.5, 1.5)}, "thresholds"),
        ({"thresholds": (0,)}, "thresholds"),
        ({"on_exceeded": "ignore"}, "on_exceeded"),
    ],
)
def test_bad_settings_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Budget("1", **kwargs)


def test_limit_types() -> None:
    assert Budget(5).limit == D(5)
    assert Budget("0.10").limit == D("0.10")
    assert Budget(D("2.5")).limit == D("2.5")
    assert Budget(0.1).limit == D("0.1")  # floats go through str, no binary noise


def test_reserve_settle_release() -> None:
    b = Budget("1.00", window="total")
    r1 = b.reserve(D("0.60"))
    assert b.reserved() == D("0.60") and b.remaining() == D("0.40")
    r1.settle(D("0.25"))
    r1.settle(D("0.99"))  # idempotent
    r1.release()
    assert (b.spent(), b.reserved()) == (D("0.25"), 0)
    r2 = b.reserve(D("0.75"))  # exactly up to the limit is allowed
    with pytest.raises(BudgetExceededError):
        b.reserve(D("0.000001"))
    r2.release()
    assert b.remaining() == D("0.75")
    with b.reserve(D("0.5")) as r3:
        assert not r3.done
    assert r3.done and b.reserved() == 0


def test_exceeded_error_is_clean_and_informative() -> None:
    b = Budget("0.10", window="day", clock=Clock(), name="daily")
    b.reserve(D("0.02")).settle(D("0.05"))
    held = b.reserve(D("0.03"))
    with pytest.raises(BudgetExceededError) as info:
        b.reserve(D("0.04"), model="gpt-4.1")
    err = info.value
    assert isinstance(err, HolySheepError)
    assert err.holysheep_action == "stop"
    assert BudgetExceededError.holysheep_action == "stop"
    assert (err.limit, err.spent, err.reserved, err.requested) == (
        D("0.10"),
        D("0.05"),
        D("0.03"),
        D("0.04"),
    )
    text = str(err)
    for part in (
        "daily",
        "$0.1000",
        "spent $0.0500",
        "reserved by calls in flight $0.0300",
        "needs up to $0.0400",
        "gpt-4.1",
        "No request was sent",
        "max_tokens",
        "2026-11-04T00:00:00+00:00",
        "(window: day 2026-11-03)",
    ):
        assert part in text, part
    held.release()


_REFUSED = (
    "Budget {name!r} exceeded (window: {window}): limit $0.1000, spent $0.0000, "
    "reserved by calls in flight $0.0000, left $0.1000; this call for gpt-4.1 "
    "needs up to $0.2000 (worst case: prompt x input price + max_tokens x output "
    "price, for every attempt the call can make). No request was sent. Set a lower "
    "max_tokens or fewer retries, use a cheaper model, raise the limit, or {when}."
)


@pytest.mark.parametrize(
    ("window", "label", "when"),
    [
        ("run", "this run", "start a new run"),
        ("total", "total", "reset the budget"),
        (
            "hour",
            "hour 2026-11-03T10:00",
            "wait for the hour window to roll over at 2026-11-03T11:00:00+00:00",
        ),
        (
            "day",
            "day 2026-11-03",
            "wait for the day window to roll over at 2026-11-04T00:00:00+00:00",
        ),
        (
            "month",
            "month 2026-11",
            "wait for the month window to roll over at 2026-12-01T00:00:00+00:00",
        ),
    ],
)
def test_exceeded_message_names_the_window_once(
    window: str, label: str, when: str
) -> None:
    b = Budget("0.10", window=window, clock=Clock())  # type: ignore[arg-type]
    with pytest.raises(BudgetExceededError) as info:
        b.reserve(
            D("0.2"), run_key="0f6a2c3e-8d1b-4f7a-9c2e-5b4d3a2f1e0d", model="gpt-4.1"
        )
    assert str(info.value) == _REFUSED.format(name=b.name, window=label, when=when)


def test_exceeded_message_shows_small_amounts_apart() -> None:
    # At four places this would read "left $0.0001; ... needs up to $0.0001".
    b = Budget("0.0001", window="total")
    held = b.reserve(D("0.00004"))
    with pytest.raises(BudgetExceededError) as info:
        b.reserve(D("0.00007"), model="deepseek-v3.2")
    assert str(info.value) == (
        "Budget '$0.0001/total' exceeded (window: total): limit $0.00010, spent "
        "$0.00000, reserved by calls in flight $0.00004, left $0.00006; this call "
        "for deepseek-v3.2 needs up to $0.00007 (worst case: prompt x input price + "
        "max_tokens x output price, for every attempt the call can make). No request "
        "was sent. Set a lower max_tokens or fewer retries, use a cheaper model, "
        "raise the limit, or reset the budget."
    )
    held.release()


@pytest.mark.parametrize(
    "error",
    [
        UnpricedCallError("b", ["m"]),
        BudgetCheckError("b", "m", RuntimeError("down")),
        BudgetExceededError(
            budget="b",
            limit=D(1),
            spent=D(1),
            reserved=D(0),
            requested=D(1),
            window="total",
            window_id="total",
            scope="global",
            scope_key="global",
        ),
    ],
)
def test_refusals_are_non_retryable_model_errors(error: BudgetError) -> None:
    # LangChain's retry middleware reads this taxonomy (ModelError.is_retryable).
    assert isinstance(error, ModelError) and isinstance(error, HolySheepError)
    assert error.is_retryable is False
    assert error.holysheep_action == "stop"


def test_unpriced_calls() -> None:
    lax = Budget("1")
    res = lax.reserve(None, model="mystery")
    assert res.amount == 0
    res.settle(None)
    assert lax.spent() == 0
    strict = Budget("1", strict=True)
    with pytest.raises(UnpricedCallError, match="mystery") as info:
        strict.reserve(None, model="mystery")
    assert info.value.holysheep_action == "stop"
    with pytest.raises(UnpricedCallError):
        strict.reserve_routes([("gpt-4.1", D("0.1")), ("mystery", None)])


def test_routes_reserve_the_max_or_downgrade() -> None:
    routes = [("gpt-4.1", D("0.8")), ("deepseek-v3.2", D("0.05")), ("x", None)]
    b = Budget("1")
    assert b.reserve_routes(routes).amount == D("0.8")
    with pytest.raises(BudgetExceededError):
        b.reserve_routes(routes)  # 0.2 left: raise policy
    d = Budget("1", on_exceeded="downgrade")
    first = d.reserve_routes(routes)
    assert first.models == ("gpt-4.1", "deepseek-v3.2", "x")
    cheap = d.reserve_routes(routes)
    assert (cheap.amount, cheap.models) == (D("0.05"), ("deepseek-v3.2",))
    for _ in range(3):
        d.reserve_routes(routes)
    with pytest.raises(BudgetExceededError):
        d.reserve_routes(routes)  # even the cheapest no longer fits
    with pytest.raises(ValueError):
        d.reserve_routes([])


def test_scope_keys_from_metadata_and_tags() -> None:
    b = Budget("1", scope="user")
    assert b.scope_key(["x"], {"user": "alice"}) == "alice"
    assert b.scope_key(["user:bob"], {}) == "bob"
    assert b.scope_key(["user=carol"], None) == "carol"
    assert b.scope_key([], {}) == ""
    assert Budget("1").scope_key(["user:bob"], {"user": "a"}) == "global"
    b.reserve(D("1"), "alice")
    b.reserve(D("1"), "bob")  # each user has their own cap
    with pytest.raises(BudgetExceededError, match="user='alice'"):
        b.reserve(D("0.01"), "alice")


def test_thresholds_fire_once_per_window_and_roll_over() -> None:
    clock = Clock("2026-11-03T10:59:00")
    events: list[ThresholdEvent] = []
    b = Budget(
        "10",
        window="hour",
        thresholds=(0.8, 0.5),
        on_threshold=events.append,
        clock=clock,
    )
    assert b.thresholds == (0.5, 0.8)
    b.reserve(D(4)).settle(D(4))
    assert events == []
    b.reserve(D(2)).settle(D(2))  # 60 %
    assert [e.threshold for e in events] == [0.5]
    b.reserve(D(1)).settle(D(1))  # 70 %: nothing new
    b.reserve(D(3)).settle(D(3))  # 100 %
    assert [e.threshold for e in events] == [0.5, 0.8]
    assert events[1].window_id == "2026-11-03T10" and events[1].spent == D(10)
    with pytest.raises(BudgetExceededError):
        b.reserve(D("0.01"))
    clock.t += 60  # 11:00: a new window
    assert b.spent() == 0 and b.remaining() == D(10)
    b.reserve(D(6)).settle(D(6))
    assert [e.window_id for e in events] == ["2026-11-03T10"] * 2 + ["2026-11-03T11"]


def test_reservation_across_rollover_settles_in_its_own_window() -> None:
    clock = Clock("2026-11-03T23:59:59")
    b = Budget("1", window="day", clock=clock)
    res = b.reserve(D("0.9"))
    clock.t += 2
    assert b.reserve(D("1")).window_id == "2026-11-04"  # the new day is empty
    res.settle(D("0.5"))
    assert b.spent() == 0  # the old day's spend stays in the old day
    assert b.spent() + b.reserved() == D("1")  # the new day holds only its own


def test_threshold_hook_errors_are_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    def boom(event: ThresholdEvent) -> None:
        raise RuntimeError("hook broke")

    b = Budget("1", on_threshold=boom)
    b.reserve(D(1)).settle(D(1))
    assert "on_threshold hook failed" in caplog.text
    quiet = Budget("1", thresholds=(0.5,))
    quiet.reserve(D(1)).settle(D(1))
    assert "50% of $1.0000 reached" in caplog.text


def test_run_windows_end_with_the_run() -> None:
    b = Budget("1", window="run")
    b.reserve(D("0.6"), run_key="r1").settle(D("0.6"))
    held = b.reserve(D("0.4"), run_key="r1")
    b.reserve(D("1"), run_key="r2").release()
    assert b.remaining(run_key="r1") == 0 and b.remaining(run_key="r2") == 1
    b.end_run("r1")
    held.settle(D("0.1"))  # settled after its run ended: counted, then forgotten
    b.end_run("r2")
    assert b.spent(run_key="r1") == 0 and b.reserved(run_key="r1") == 0
    assert b.store._windows == {}  # type: ignore[attr-defined]
    b.reset()


@pytest.mark.parametrize(
    ("window", "when", "wid", "boundary"),
    [
        ("hour", "2026-12-31T23:30:00", "2026-12-31T23", "2027-01-01T00:00:00"),
        ("day", "2026-12-31T23:30:00", "2026-12-31", "2027-01-01T00:00:00"),
        ("month", "2026-12-31T23:30:00", "2026-12", "2027-01-01T00:00:00"),
        ("month", "2026-02-10T00:00:00", "2026-02", "2026-03-01T00:00:00"),
        ("total", "2026-02-10T00:00:00", "total", None),
    ],
)
def test_windows(window: str, when: str, wid: str, boundary: str | None) -> None:
    t = Clock(when)()
    assert window_id(window, t) == wid
    nb = next_boundary(window, t)
    assert (nb.replace(tzinfo=None).isoformat() if nb else None) == boundary


def _race_threads(budget: Budget, n: int, cost: D) -> tuple[int, int]:
    barrier = threading.Barrier(n)
    ok, refused = [], []

    def call() -> None:
        barrier.wait()
        try:
            res = budget.reserve(cost)
        except BudgetExceededError:
            refused.append(1)
            return
        assert budget.spent() + budget.reserved() <= budget.limit
        res.settle(cost * D(random.random()))
        ok.append(1)

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(ok), len(refused)


def test_200_threads_never_overrun() -> None:
    b = Budget("1.00", window="total")
    ok, refused = _race_threads(b, 200, D("0.03"))
    assert ok + refused == 200
    assert refused > 0
    assert b.spent() <= b.limit and b.reserved() == 0


async def test_200_tasks_never_overrun() -> None:
    b = Budget("1.00", window="total")
    peak = D(0)

    async def call(i: int) -> bool:
        nonlocal peak
        await asyncio.sleep(0)
        try:
            res = b.reserve(D("0.03"))
        except BudgetExceededError:
            return False
        peak = max(peak, b.spent() + b.reserved())
        await asyncio.sleep(random.random() / 1000)
        res.settle(D("0.03") if i % 2 else D("0.01"))
        return True

    results = await asyncio.gather(*(call(i) for i in range(200)))
    assert peak <= b.limit
    assert b.spent() <= b.limit and b.reserved() == 0
    assert sum(results) < 200


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.decimals(0, 1, places=4), st.floats(0, 1), st.booleans()),
        max_size=60,
    )
)
def test_settled_spend_never_passes_the_limit(ops: list) -> None:
    b = Budget("1", window="total")
    open_ = []
    for amount, fraction, settle_now in ops:
        with contextlib.suppress(BudgetExceededError):
            open_.append((b.reserve(amount), fraction))
        if settle_now and open_:
            res, f = open_.pop(0)
            res.settle(res.amount * D(str(f)))
        assert b.spent() + b.reserved() <= b.limit
    for res, f in open_:
        res.settle(res.amount * D(str(f)))
    assert b.spent() <= b.limit
