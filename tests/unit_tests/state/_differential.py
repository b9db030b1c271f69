"""Differential testing: random operation sequences, one reference store.

Hypothesis draws a sequence of budget, breaker and rate-limit operations (and
clock moves); the sequence runs on the memory store (the reference) and on the
store under test, and every result must agree. The clock moves in steps that
are exact in binary, so time bucketing cannot differ by rounding.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from langchain_holysheep.state import (
    BreakerSpec,
    BreakerView,
    RateGrant,
    RateSpec,
    RateView,
    Refusal,
    Reservation,
    Settlement,
    StateStore,
    WindowUsage,
)
from tests.unit_tests.state._suite import ManualClock

RULES = BreakerSpec(
    failure_threshold=2, failure_rate=0.5, minimum_requests=2, window=10, cooldown=3
)
LIMIT = RateSpec(requests=60, tokens=600, burst_requests=3, burst_tokens=300)
AMOUNTS = [Decimal(x) for x in ("0", "0.000000001", "0.25", "0.5", "0.75", "1")]

_amount = st.sampled_from(AMOUNTS)
_res = st.integers(0, 7)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), _amount, st.sampled_from([2.0, 5.0, 30.0])),
        st.tuples(st.just("reserve"), _amount, st.sampled_from([2.0, 5.0, 30.0])),
        st.tuples(st.just("settle"), _res, _amount),
        st.tuples(st.just("release"), _res),
        st.tuples(st.just("extend"), _res, st.sampled_from([1.0, 4.0])),
        st.tuples(st.just("charge"), _amount),
        st.tuples(st.just("usage")),
        st.tuples(st.just("advance"), st.sampled_from([0.5, 1.0, 2.5, 7.0, 11.0])),
        st.tuples(st.just("success")),
        st.tuples(st.just("failure")),
        st.tuples(st.just("claim"), st.sampled_from([1.0, 10.0])),
        st.tuples(st.just("release_probe")),
        st.tuples(st.just("force_open")),
        st.tuples(st.just("reset")),
        st.tuples(
            st.just("acquire"),
            st.sampled_from([0.0, 50.0, 400.0]),
            st.sampled_from([0.0, 1.0, 10.0]),
        ),
        st.tuples(st.just("refund"), st.sampled_from([-100.0, 0.0, 120.0])),
        st.tuples(st.just("penalize"), st.sampled_from([0.5, 2.0])),
        st.tuples(st.just("rate_state")),
    ),
    max_size=40,
)

_run_ids = itertools.count()


def _norm(result: Any, clock: ManualClock) -> Any:
    """A store-independent form of a result (times relative, floats rounded)."""
    if isinstance(result, Reservation):
        return ("reserved", result.amount, round(result.expires_at - clock.now, 4))
    if isinstance(result, Refusal):
        return ("refused", result.amount, result.cap, result.spent, result.reserved)
    if isinstance(result, (WindowUsage, Settlement)):
        return result
    if isinstance(result, BreakerView):
        return (
            result.state,
            result.failures,
            result.successes,
            None
            if result.opened_at is None
            else round(result.opened_at - clock.now, 4),
            round(result.retry_in, 4),
            result.probe_in_flight,
            result.trips,
            result.last_failure,
            result.previous,
        )
    if isinstance(result, RateGrant):
        return (result.granted, round(result.wait, 4))
    if isinstance(result, RateView):
        return tuple(
            None if x is None else round(x, 4)
            for x in (
                result.requests_available,
                result.tokens_available,
                result.blocked_for,
            )
        )
    return result


def run(
    store: StateStore, clock: ManualClock, ops: list[tuple[Any, ...]], tag: str
) -> list[Any]:
    """Apply `ops` to `store` on fresh keys; returns the normalised results."""
    budget, breaker, rate = f"b{tag}", f"k{tag}", f"r{tag}"
    held: list[Reservation] = []
    out: list[Any] = []
    for op in ops:
        name = op[0]
        result: Any = None
        if name == "reserve":
            result = store.reserve(
                budget, "w", op[1], Decimal("1"), op[2], window_ttl=60
            )
            if isinstance(result, Reservation):
                held.append(result)
        elif name in ("settle", "release", "extend"):
            if not held:
                continue
            res = held[op[1] % len(held)]
            if name == "settle":
                result = store.settle(res, op[2])
            elif name == "release":
                result = store.release(res)
            else:
                result = store.extend(res, op[2])
                result = (
                    None if result is None else round(result.expires_at - clock.now, 4)
                )
        elif name == "charge":
            result = store.charge(budget, "w", op[1], window_ttl=60)
        elif name == "usage":
            result = store.usage(budget, "w")
        elif name == "advance":
            clock.advance(op[1])
        elif name == "success":
            result = store.record_success(breaker, RULES)
        elif name == "failure":
            result = store.record_failure(breaker, RULES, "boom")
        elif name == "claim":
            result = store.try_claim_probe(breaker, op[1])
        elif name == "release_probe":
            store.release_probe(breaker)
            result = store.breaker(breaker, RULES)
        elif name == "force_open":
            result = store.force_open(breaker, RULES, "forced")
        elif name == "reset":
            result = store.reset_breaker(breaker)
        elif name == "acquire":
            result = store.acquire_rate(rate, LIMIT, tokens=op[1], max_wait=op[2])
        elif name == "refund":
            store.refund_rate(rate, LIMIT, requests=1.0, tokens=op[1])
            result = store.rate_state(rate, LIMIT)
        elif name == "penalize":
            store.penalize_rate(rate, op[1])
            result = store.rate_state(rate, LIMIT)
        elif name == "rate_state":
            result = store.rate_state(rate, LIMIT)
        out.append((name, _norm(result, clock)))
    out.append(
        ("final", store.usage(budget, "w"), _norm(store.breaker(breaker, RULES), clock))
    )
    return out


def next_tag() -> str:
    return f"-{next(_run_ids)}"
