"""The behavioural suite every state store must pass (memory, SQLite, Redis).

A test module subclasses `StoreBehaviour` and provides two fixtures: `clock`
(a `ManualClock`) and `store` (a store reading that clock).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from langchain_holysheep.state import (
    BreakerSpec,
    RateSpec,
    Refusal,
    Reservation,
    StateStore,
    WindowUsage,
)

D = Decimal
CAP = D("1.00")
RULES = BreakerSpec(
    failure_threshold=3, failure_rate=0.5, minimum_requests=3, window=10, cooldown=5
)


class ManualClock:
    """Wall-clock seconds moved by hand."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def admitted(result: Reservation | Refusal) -> Reservation:
    assert isinstance(result, Reservation), result
    return result


class StoreBehaviour:
    """Budgets, breakers and rate limits: the semantics no store may change."""

    # -- budgets -----------------------------------------------------------------------
    def test_reserve_admits_up_to_the_cap_exactly(self, store: StateStore) -> None:
        assert store.reserve("b", "w", D("0.40"), CAP, 60).admitted
        assert store.reserve("b", "w", D("0.60"), CAP, 60).admitted
        refused = store.reserve("b", "w", D("0.000000001"), CAP, 60)
        assert isinstance(refused, Refusal) and not refused.admitted
        assert (refused.spent, refused.reserved, refused.cap) == (0, CAP, CAP)
        assert refused.amount == D("0.000000001") and refused.available == 0
        assert store.usage("b", "w") == WindowUsage(D(0), CAP)

    def test_reservation_fields(self, store: StateStore, clock: ManualClock) -> None:
        res = admitted(store.reserve("b", "w", D("0.25"), CAP, 30, window_ttl=90))
        assert (res.budget_key, res.window_id, res.amount) == ("b", "w", D("0.25"))
        assert res.expires_at == pytest.approx(clock.now + 30)
        assert res.lease_seconds == 30 and res.window_ttl == 90 and not res.fallback
        other = admitted(store.reserve("b", "w", D("0.25"), CAP, 30))
        assert other.id != res.id

    def test_settle_replaces_the_reservation(self, store: StateStore) -> None:
        res = admitted(store.reserve("b", "w", D("0.50"), CAP, 60))
        done = store.settle(res, D("0.2"))
        assert (done.spent, done.reserved, done.counted) == (D("0.2"), 0, D("0.2"))
        assert not done.late and not done.deferred and done.spent_before == 0
        assert store.spent("b", "w") == D("0.2")
        assert store.reserve("b", "w", D("0.8"), CAP, 60).admitted
        assert not store.reserve("b", "w", D("0.000000001"), CAP, 60).admitted

    def test_spend_above_the_reservation_is_counted(self, store: StateStore) -> None:
        res = admitted(store.reserve("b", "w", D("0.50"), CAP, 60))
        assert store.settle(res, D("0.70")).spent == D("0.70")
        assert store.usage("b", "w") == WindowUsage(D("0.70"), D(0))

    def test_settling_twice_counts_once(self, store: StateStore) -> None:
        res = admitted(store.reserve("b", "w", D("0.50"), CAP, 60))
        store.settle(res, D("0.30"))
        again = store.settle(res, D("0.30"))
        assert again.counted == 0 and again.spent == D("0.30")
        assert store.spent("b", "w") == D("0.30")

    def test_a_finished_reservation_counts_nothing_again_however_late(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        res = admitted(store.reserve("b", "w", D("0.50"), CAP, 10, window_ttl=600))
        longer = store.extend(res, 10)
        assert longer is not None
        store.settle(longer, D("0.30"))  # the copy `extend` returned
        clock.advance(30)  # past the lease
        again = store.settle(res, D("0.30"))
        assert (again.counted, again.late, again.spent) == (0, False, D("0.30"))
        store.release(res)
        assert store.usage("b", "w") == WindowUsage(D("0.30"), D(0))
        released = admitted(store.reserve("b", "w", D("0.20"), CAP, 10))
        store.release(released)
        assert store.settle(released, D("0.10")).counted == 0

    def test_threads_settling_one_reservation_count_it_once(
        self, store: StateStore
    ) -> None:
        for _ in range(5):
            res = admitted(store.reserve("b", "w", D("0.10"), CAP, 60))
            start = threading.Barrier(4)

            def settle(
                res: Reservation = res, start: threading.Barrier = start
            ) -> Decimal:
                start.wait()
                return store.settle(res, D("0.10")).counted

            with ThreadPoolExecutor(4) as pool:
                counted = list(pool.map(lambda _: settle(), range(4)))
            assert sorted(counted) == [0, 0, 0, D("0.10")]
        assert store.usage("b", "w") == WindowUsage(D("0.50"), D(0))

    def test_release_gives_the_reservation_back(self, store: StateStore) -> None:
        res = admitted(store.reserve("b", "w", CAP, CAP, 60))
        store.release(res)
        store.release(res)
        assert store.usage("b", "w") == WindowUsage(D(0), D(0))
        assert store.reserve("b", "w", CAP, CAP, 60).admitted

    def test_zero_amounts(self, store: StateStore) -> None:
        free = admitted(store.reserve("b", "w", D(0), CAP, 60))
        assert store.settle(free, D(0)).counted == 0
        store.release(admitted(store.reserve("b", "w", D(0), CAP, 60)))
        assert store.charge("b", "w", D(0)) == WindowUsage(D(0), D(0))

    def test_settle_with_nothing_billed(self, store: StateStore) -> None:
        res = admitted(store.reserve("b", "w", D("0.5"), CAP, 60))
        assert store.settle(res, None).counted == 0
        assert store.usage("b", "w") == WindowUsage(D(0), D(0))

    def test_an_expired_reservation_stops_counting(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        admitted(store.reserve("b", "w", D("0.90"), CAP, 10))
        clock.advance(9.9)
        assert store.usage("b", "w").reserved == D("0.90")
        clock.advance(0.1)
        assert store.usage("b", "w").reserved == 0
        assert store.reserve("b", "w", CAP, CAP, 10).admitted  # nothing leaked

    def test_a_late_settle_still_counts_the_spend(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        res = admitted(store.reserve("b", "w", D("0.40"), CAP, 10))
        clock.advance(11)
        done = store.settle(res, D("0.30"))
        assert done.late and done.counted == D("0.30")
        assert store.usage("b", "w") == WindowUsage(D("0.30"), D(0))

    def test_extend_renews_the_lease(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        res = admitted(store.reserve("b", "w", D("0.5"), CAP, 10))
        clock.advance(8)
        longer = store.extend(res, 10)
        assert longer is not None and longer.id == res.id
        assert longer.expires_at == pytest.approx(clock.now + 10)
        clock.advance(8)
        assert store.usage("b", "w").reserved == D("0.5")
        clock.advance(2)
        assert store.usage("b", "w").reserved == 0
        assert store.extend(longer, 10) is None
        settled = admitted(store.reserve("b", "w", D("0.1"), CAP, 10))
        store.settle(settled, D("0.1"))
        assert store.extend(settled, 10) is None

    def test_budgets_and_windows_are_independent(self, store: StateStore) -> None:
        assert store.reserve("a", "2026-01-01", CAP, CAP, 60).admitted
        assert store.reserve("a", "2026-01-02", CAP, CAP, 60).admitted
        assert store.reserve("b", "2026-01-01", CAP, CAP, 60).admitted
        assert not store.reserve("a", "2026-01-01", D("0.01"), CAP, 60).admitted

    def test_charge_counts_spend_without_a_reservation(self, store: StateStore) -> None:
        assert store.charge("b", "w", D("0.3")) == WindowUsage(D("0.3"), D(0))
        assert not store.reserve("b", "w", D("0.8"), CAP, 60).admitted
        assert store.reserve("b", "w", D("0.7"), CAP, 60).admitted
        assert store.charge("b", "w", D("0.3")).reserved == D("0.7")

    def test_forget_drops_a_window(self, store: StateStore) -> None:
        res = admitted(store.reserve("b", "run-1", D("0.5"), CAP, 60))
        store.charge("b", "run-1", D("0.2"))
        store.forget("b", "run-1")
        assert store.usage("b", "run-1") == WindowUsage(D(0), D(0))
        assert store.settle(res, D("0.1")).spent == D("0.1")  # counted, never lost

    def test_window_ttl_forgets_an_idle_window(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        store.charge("b", "2026-01-01", D("0.1"), window_ttl=100)
        clock.advance(60)
        store.charge("b", "2026-01-01", D("0.1"), window_ttl=100)
        clock.advance(99)
        assert store.spent("b", "2026-01-01") == D("0.2")
        clock.advance(2)
        assert store.spent("b", "2026-01-01") == 0
        assert store.reserve("b", "2026-01-01", CAP, CAP, 10, window_ttl=100).admitted

    def test_money_is_exact(self, store: StateStore) -> None:
        for _ in range(100):
            store.charge("b", "w", D("0.000000001"))
        store.charge("b", "w", D("0.1"))
        store.charge("b", "w", D("0.2"))
        assert store.spent("b", "w") == D("0.300000100")
        tiny = admitted(store.reserve("t", "w", D("1E-12"), CAP, 60))
        assert tiny.amount == D("0.000000001")  # rounded up: never under-reserved
        assert not store.reserve("c", "w", D("1"), D("0.9999999999"), 60).admitted

    @pytest.mark.parametrize(
        ("amount", "cap", "lease"),
        [
            (D("-0.01"), CAP, 60),
            (D("NaN"), CAP, 60),
            (0.5, CAP, 60),
            (D("0.5"), D("-1"), 60),
            (D("0.5"), CAP, 0),
            (D("0.5"), CAP, float("inf")),
            (D("1E+10"), D("1E+10"), 60),
        ],
    )
    def test_invalid_arguments(
        self, store: StateStore, amount: object, cap: Decimal, lease: float
    ) -> None:
        with pytest.raises(ValueError):
            store.reserve("b", "w", amount, cap, lease)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            store.reserve("", "w", D("0.1"), CAP, 60)

    def test_threads_never_overrun_the_cap(self, store: StateStore) -> None:
        threads, per_thread, amount, cap = 8, 25, D("0.03"), D("3.00")
        start = threading.Barrier(threads)

        def work(_: int) -> tuple[int, int]:
            start.wait()
            ok = no = 0
            for _ in range(per_thread):
                res = store.reserve("b", "w", amount, cap, 60)
                if isinstance(res, Reservation):
                    ok += 1
                    store.settle(res, amount)
                else:
                    no += 1
            return ok, no

        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(work, range(threads)))
        ok = sum(r[0] for r in results)
        assert ok + sum(r[1] for r in results) == threads * per_thread
        assert ok == 100 and store.usage("b", "w") == WindowUsage(cap, D(0))

    async def test_async_twins(self, store: StateStore) -> None:
        results = await asyncio.gather(
            *(store.areserve("b", "w", D("0.05"), CAP, 60) for _ in range(30))
        )
        held = [r for r in results if isinstance(r, Reservation)]
        assert len(held) == 20
        await asyncio.gather(*(store.asettle(r, D("0.04")) for r in held[:10]))
        for r in held[10:15]:
            await store.arelease(r)
        assert await store.aextend(held[15], 30) is not None
        assert (await store.acharge("b", "w", D("0.1"))).spent == D("0.5")
        assert await store.ausage("b", "w") == WindowUsage(D("0.5"), D("0.25"))
        assert await store.aspent("b", "w") == D("0.5")
        await store.aforget("b", "w")
        assert await store.aspent("b", "w") == 0

    # -- breakers ----------------------------------------------------------------------
    def test_breaker_opens_on_count_and_rate(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        for _ in range(3):
            assert store.record_success("k", RULES).state == "closed"
        store.record_failure("k", RULES)
        view = store.record_failure("k", RULES)
        assert view.state == "closed" and not view.changed
        assert (view.failures, view.successes, view.requests) == (2, 3, 5)
        view = store.record_failure("k", RULES, "HTTP 503")
        assert view.state == "open" and view.previous == "closed" and view.changed
        assert view.trips == 1 and view.last_failure == "HTTP 503"
        assert view.opened_at == pytest.approx(clock.now)
        assert view.retry_in == pytest.approx(5)
        assert store.breaker("k", RULES).state == "open"

    def test_a_busy_route_with_few_errors_stays_closed(self, store: StateStore) -> None:
        for _ in range(20):
            store.record_success("k", RULES)
        for _ in range(5):
            view = store.record_failure("k", RULES)
        assert view.state == "closed" and view.failures == 5

    def test_failures_leave_the_rolling_window(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        store.record_failure("k", RULES)
        store.record_failure("k", RULES)
        clock.advance(11)
        view = store.record_failure("k", RULES)
        assert view.state == "closed" and view.failures == 1

    def test_one_probe_after_the_cooldown(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        for _ in range(3):
            store.record_failure("k", RULES)
        assert not store.try_claim_probe("k", 30)
        clock.advance(4.9)
        assert not store.try_claim_probe("k", 30)
        clock.advance(0.1)
        assert store.breaker("k", RULES).retry_in == 0
        assert store.try_claim_probe("k", 30)
        assert not store.try_claim_probe("k", 30)
        view = store.breaker("k", RULES)
        assert view.state == "half_open" and view.probe_in_flight
        view = store.record_success("k", RULES)
        assert view.state == "closed" and view.previous == "half_open"
        assert view.failures == 0 and not view.probe_in_flight
        assert not store.try_claim_probe("k", 30)  # closed: nothing to probe

    def test_a_failed_probe_reopens(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        store.force_open("k", RULES)
        clock.advance(5)
        assert store.try_claim_probe("k", 30)
        view = store.record_failure("k", RULES, "still down")
        assert view.state == "open" and view.previous == "half_open"
        assert view.trips == 2 and view.retry_in == pytest.approx(5)

    def test_a_lost_probe_can_be_claimed_after_its_ttl(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        store.force_open("k", RULES)
        clock.advance(5)
        assert store.try_claim_probe("k", 2)
        clock.advance(1.9)
        assert not store.try_claim_probe("k", 2)
        clock.advance(0.1)
        assert not store.breaker("k", RULES).probe_in_flight
        assert store.try_claim_probe("k", 2)

    def test_a_released_probe_can_be_claimed_again(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        store.force_open("k", RULES)
        clock.advance(5)
        assert store.try_claim_probe("k", 30)
        store.release_probe("k")
        assert store.try_claim_probe("k", 30)

    def test_force_open_and_reset(self, store: StateStore, clock: ManualClock) -> None:
        view = store.force_open("k", RULES, "maintenance")
        assert view.state == "open" and view.previous == "closed"
        assert view.last_failure == "maintenance"
        clock.advance(3)
        view = store.force_open("k", RULES)
        assert view.retry_in == pytest.approx(5) and not view.changed
        assert store.reset_breaker("k") == "open"
        assert store.breaker("k", RULES).state == "closed"
        assert store.reset_breaker("k") is None
        assert store.record_success("k", RULES).successes == 1

    def test_batched_successes_count_only_while_closed(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        view = store.count_successes("k", RULES, 20)
        assert (view.state, view.successes, view.changed) == ("closed", 20, False)
        for _ in range(5):
            view = store.record_failure("k", RULES)
        assert view.state == "closed"  # 5 of 25 calls: the rate rule holds it
        for _ in range(20):
            view = store.record_failure("k", RULES)
        assert view.state == "open"
        assert store.count_successes("k", RULES, 7).state == "open"
        clock.advance(5)
        assert store.try_claim_probe("k", 30)
        before = store.breaker("k", RULES).successes
        view = store.count_successes("k", RULES, 3)  # not the probe's verdict
        assert view.state == "half_open" and view.successes == before
        assert store.count_successes("k", RULES, 0).state == "half_open"

    async def test_batched_successes_async(self, store: StateStore) -> None:
        view = await store.acount_successes("k", RULES, 4)
        assert view.successes == 4 and view.state == "closed"

    def test_an_open_breaker_ignores_late_successes(self, store: StateStore) -> None:
        store.force_open("k", RULES)
        assert store.record_success("k", RULES).state == "open"

    def test_an_unknown_breaker_is_closed(self, store: StateStore) -> None:
        view = store.breaker("never-seen", RULES)
        assert (view.state, view.failures, view.successes, view.trips) == (
            "closed",
            0,
            0,
            0,
        )
        assert view.opened_at is None and view.previous is None

    def test_one_probe_across_threads(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        store.force_open("k", RULES)
        clock.advance(5)
        start = threading.Barrier(12)

        def claim(_: int) -> bool:
            start.wait()
            return store.try_claim_probe("k", 30)

        with ThreadPoolExecutor(12) as pool:
            assert sum(pool.map(claim, range(12))) == 1

    async def test_breaker_async_twins(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        await store.arecord_success("k", RULES)
        for _ in range(3):
            view = await store.arecord_failure("k", RULES)
        assert view.state == "open"
        assert (await store.abreaker("k", RULES)).state == "open"
        await store.aforce_open("k", RULES)
        clock.advance(5)
        assert await store.atry_claim_probe("k", 30)
        await store.arelease_probe("k")
        assert await store.atry_claim_probe("k", 30)
        assert await store.areset_breaker("k") == "half_open"

    # -- rate limits -------------------------------------------------------------------
    def test_rate_burst_then_wait(self, store: StateStore, clock: ManualClock) -> None:
        spec = RateSpec(requests=60, burst_requests=3)  # 1 a second, 3 at once
        for _ in range(3):
            assert store.acquire_rate("r", spec).granted
        refused = store.acquire_rate("r", spec)
        assert not refused.granted and refused.wait == pytest.approx(1.0)
        clock.advance(0.5)
        assert store.acquire_rate("r", spec).wait == pytest.approx(0.5)
        clock.advance(0.5)
        grant = store.acquire_rate("r", spec)
        assert grant.granted and grant.wait == pytest.approx(0, abs=1e-6)

    def test_rate_waits_are_queued_ahead(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        spec = RateSpec(requests=60, burst_requests=1)
        assert store.acquire_rate("r", spec, max_wait=5).wait == 0
        first = store.acquire_rate("r", spec, max_wait=5)
        second = store.acquire_rate("r", spec, max_wait=5)
        assert first.granted and first.wait == pytest.approx(1)
        assert second.granted and second.wait == pytest.approx(2)
        third = store.acquire_rate("r", spec, max_wait=2.5)
        assert not third.granted and third.wait == pytest.approx(3)
        view = store.rate_state("r", spec)
        assert view.requests_available == pytest.approx(-2)

    def test_token_bucket_and_refunds(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        spec = RateSpec(tokens=1200)  # 20 tokens a second, 1200 at once
        assert store.acquire_rate("t", spec, tokens=1000).granted
        refused = store.acquire_rate("t", spec, tokens=300)
        assert not refused.granted and refused.wait == pytest.approx(5)
        store.refund_rate("t", spec, requests=0, tokens=100)  # used fewer tokens
        assert store.acquire_rate("t", spec, tokens=300).granted
        store.refund_rate("t", spec, requests=0, tokens=-100)  # used more
        assert store.rate_state("t", spec).tokens_available == pytest.approx(-100)
        store.refund_rate("t", spec, tokens=10_000)
        assert store.rate_state("t", spec).tokens_available == pytest.approx(1200)
        view = store.rate_state("t", spec)
        assert view.requests_available is None and view.blocked_for == 0

    def test_refund_gives_a_request_back(self, store: StateStore) -> None:
        spec = RateSpec(requests=60, burst_requests=1)
        assert store.acquire_rate("r", spec).granted
        store.refund_rate("r", spec)
        assert store.acquire_rate("r", spec).granted

    def test_penalize_blocks_a_key(self, store: StateStore, clock: ManualClock) -> None:
        spec = RateSpec(requests=60, burst_requests=2)
        assert store.acquire_rate("r", spec).granted
        store.penalize_rate("r", 2.0)
        refused = store.acquire_rate("r", spec)
        assert not refused.granted and refused.wait == pytest.approx(2)
        assert store.rate_state("r", spec).blocked_for == pytest.approx(2)
        clock.advance(2)
        assert store.acquire_rate("r", spec).granted
        assert store.acquire_rate("r", spec).granted  # refill kept through the block
        unlimited = store.acquire_rate("other", RateSpec())
        assert unlimited.granted

    def test_rate_threads_never_exceed_the_burst(self, store: StateStore) -> None:
        spec = RateSpec(requests=1, per=3600, burst_requests=10)
        start = threading.Barrier(8)

        def work(_: int) -> int:
            start.wait()
            return sum(store.acquire_rate("r", spec).granted for _ in range(10))

        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(work, range(8))) == 10

    async def test_rate_async_twins(
        self, store: StateStore, clock: ManualClock
    ) -> None:
        spec = RateSpec(requests=60, burst_requests=2)
        grants = await asyncio.gather(
            *(store.aacquire_rate("r", spec) for _ in range(5))
        )
        assert sum(g.granted for g in grants) == 2
        await store.arefund_rate("r", spec)
        await store.apenalize_rate("r", 1.0)
        assert (await store.arate_state("r", spec)).blocked_for == pytest.approx(1)
        clock.advance(1)
        assert (await store.aacquire_rate("r", spec)).granted
