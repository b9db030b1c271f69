"""Circuit breaker: unit tests and a hypothesis state machine on a fake clock."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from langchain_holysheep.resilience import (
    BreakerConfig,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
    SharedCircuitBreaker,
    Transition,
    default_registry,
    gateway_key,
)
from langchain_holysheep.resilience._breaker import LEGAL_TRANSITIONS
from langchain_holysheep.state import MemoryStore, SQLiteStore, StateStore
from tests.unit_tests.resilience.fakes import FakeClock

State = StateStore | str

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
KEY = ("http://gw/v1", "gpt-4.1")


def make(clock: FakeClock, state: State, **kw: object) -> CircuitBreaker:
    """A breaker on `state`: in-process, or a `SharedCircuitBreaker` on a store."""
    cfg: dict[str, object] = {
        "failure_threshold": 3,
        "minimum_requests": 3,
        "cooldown": 60.0,
    }
    cfg.update(kw)
    config = BreakerConfig(**cfg)  # type: ignore[arg-type]
    breaker = BreakerRegistry(clock=clock, state=state).configure(KEY, config)
    assert isinstance(breaker, SharedCircuitBreaker) == (state != "memory://")
    return breaker


def test_opens_after_threshold_and_skips_until_cooldown(
    clock: FakeClock, state: State
) -> None:
    b = make(clock, state)
    for _ in range(2):
        assert b.allow()
        b.record_failure("503")
    assert b.state is CLOSED
    b.record_failure("503")
    assert b.state is OPEN
    assert not b.allow()
    clock.advance(59.9)
    assert not b.allow()
    assert b.retry_in() == pytest.approx(0.1)
    clock.advance(0.1)
    assert b.allow()  # the probe
    assert b.state is HALF
    assert not b.allow()  # exactly one probe
    b.record_success()
    assert b.state is CLOSED
    assert b.snapshot().failures == 0


def test_failed_probe_reopens_with_fresh_cooldown(
    clock: FakeClock, state: State
) -> None:
    b = make(clock, state)
    b.force_open("test")
    clock.advance(60)
    assert b.allow()
    b.record_failure("still down")
    assert b.state is OPEN
    clock.advance(59)
    assert not b.allow()
    clock.advance(1)
    assert b.allow()
    assert b.snapshot().trips == 2


def test_minimum_requests_and_rate_threshold(clock: FakeClock, state: State) -> None:
    b = make(clock, state, failure_threshold=None, failure_rate=0.5, minimum_requests=4)
    b.record_failure()
    b.record_failure()
    b.record_failure()
    assert b.state is CLOSED  # only 3 requests
    b.record_success()
    assert b.state is CLOSED
    b.record_failure()  # 4 of 5 failed
    assert b.state is OPEN


def test_rolling_window_forgets_old_failures(clock: FakeClock, state: State) -> None:
    b = make(clock, state, window=60.0, buckets=6)
    b.record_failure()
    b.record_failure()
    clock.advance(61)
    b.record_failure()
    assert b.state is CLOSED
    assert b.snapshot().failures == 1


def test_a_busy_model_with_a_few_errors_stays_closed(
    clock: FakeClock, state: State
) -> None:
    b = make(
        clock, state
    )  # 3 failures AND half of the window's calls (the default rate)
    for _ in range(10):
        b.record_success()
    for _ in range(5):
        b.record_failure()
    assert b.state is CLOSED  # 5 failures, but only a third of the calls
    for _ in range(5):
        b.record_failure()
    assert b.state is OPEN  # now half of the calls fail


def test_count_only_mode_ignores_successes(clock: FakeClock, state: State) -> None:
    b = make(clock, state, failure_rate=None)
    for _ in range(10):
        b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state is CLOSED
    b.record_failure()
    assert b.state is OPEN  # 3 failures in window >= threshold


def test_lost_probe_is_replaced_after_probe_timeout(
    clock: FakeClock, state: State
) -> None:
    b = make(clock, state, probe_timeout=10.0)
    b.force_open()
    clock.advance(60)
    assert b.allow()
    clock.advance(9)
    assert not b.allow()
    clock.advance(1)
    assert b.allow()


def test_release_returns_the_probe(clock: FakeClock, state: State) -> None:
    b = make(clock, state)
    b.force_open()
    clock.advance(60)
    assert b.allow()
    b.release()
    assert b.state is HALF
    assert b.allow()


def test_listeners_and_reset(clock: FakeClock, state: State) -> None:
    b = make(clock, state)
    seen: list[Transition] = []
    remove = b.on_transition(seen.append)
    b.on_transition(lambda t: 1 / 0)  # a broken listener does not break calls
    b.force_open("boom")
    clock.advance(60)
    b.allow()
    b.record_success()
    b.force_open("again")
    b.reset()
    assert [(t.old, t.new) for t in seen] == [
        (CLOSED, OPEN),
        (OPEN, HALF),
        (HALF, CLOSED),
        (CLOSED, OPEN),
        (OPEN, CLOSED),
    ]
    assert seen[0].reason == "boom" and seen[0].key == KEY
    remove()
    b.force_open()
    assert len(seen) == 5
    snap = b.snapshot()
    assert snap.state is OPEN and snap.retry_in_s == pytest.approx(60)


def test_thread_safety_single_probe(clock: FakeClock, state: State) -> None:
    b = make(clock, state)
    b.force_open()
    clock.advance(60)
    granted: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        granted.append(b.allow())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert granted.count(True) == 1


# -- registry and gateway-wide outage -------------------------------------------
def test_registry_creates_once_and_resets(clock: FakeClock, state: State) -> None:
    reg = BreakerRegistry(
        BreakerConfig(failure_threshold=1, minimum_requests=1),
        clock=clock,
        state=state,
    )
    a = reg.get(KEY)
    assert reg.get(KEY) is a
    reg.record_failure(KEY, "503")
    assert a.state is OPEN
    assert reg.snapshot()[KEY].state is OPEN
    reg.reset_all()
    assert a.state is CLOSED
    assert default_registry() is default_registry()


def test_connection_errors_trip_the_gateway_breaker(
    clock: FakeClock, state: State
) -> None:
    reg = BreakerRegistry(clock=clock, state=state)
    gw = reg.gateway("http://gw/v1")
    for model in ("gpt-4.1", "gemini-2.5-flash", "deepseek-v3.2"):
        reg.record_failure(("http://gw/v1", model), "refused", connection_level=True)
    assert gw.state is OPEN
    assert gw.key == gateway_key("http://gw/v1")
    # per-model breakers did not trip (one failure each)
    assert reg.get(("http://gw/v1", "gpt-4.1")).state is CLOSED


def test_http_answers_never_trip_the_gateway_breaker(
    clock: FakeClock, state: State
) -> None:
    """A 503 is an answer from the gateway: evidence about a model, not an outage."""
    reg = BreakerRegistry(clock=clock, state=state)
    gw = reg.gateway("http://gw/v1")
    for model in ("gpt-4.1", "gemini-2.5-flash"):
        for _ in range(5):
            reg.record_failure(("http://gw/v1", model), "503")
        assert reg.get(("http://gw/v1", model)).state is OPEN
    assert gw.state is CLOSED
    assert gw.snapshot().failures == 0
    # the third model of the gateway has never failed: nothing skips it
    assert reg.get(("http://gw/v1", "deepseek-v3.2")).state is CLOSED


def test_success_counts_for_the_gateway_breaker(clock: FakeClock, state: State) -> None:
    reg = BreakerRegistry(clock=clock, state=state)
    gw = reg.gateway("http://gw/v1")
    reg.record_failure(("http://gw/v1", "a"), "refused", connection_level=True)
    assert gw.snapshot().failures == 1
    reg.record_success(("http://gw/v1", "b"))
    assert gw.snapshot().successes >= 1


def test_non_gateway_failures_do_not_touch_gateway(
    clock: FakeClock, state: State
) -> None:
    reg = BreakerRegistry(clock=clock, state=state)
    for _ in range(5):
        reg.record_failure(
            ("http://local/v1", "m"), "x", gateway=False, connection_level=True
        )
    assert gateway_key("http://local/v1") not in reg


# -- state machine --------------------------------------------------------------------
COOLDOWN = 30.0
PROBE_TIMEOUT = 100.0


class BreakerMachine(RuleBasedStateMachine):
    """Random sequences of calls, outcomes, time and control on one breaker."""

    calls = Bundle("calls")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        config = BreakerConfig(
            failure_threshold=3,
            minimum_requests=3,
            window=60.0,
            buckets=6,
            cooldown=COOLDOWN,
            probe_timeout=PROBE_TIMEOUT,
        )
        self.breaker = self.new_breaker(config)
        self.transitions: list[Transition] = []
        self.breaker.on_transition(self.transitions.append)
        self.opened_at: float | None = None
        self.probes: list[tuple[int, float]] = []  # (call id, start) this half-open
        self.next_id = 0

    def new_breaker(self, config: BreakerConfig) -> CircuitBreaker:
        return CircuitBreaker(KEY, config, clock=self.clock)

    def _sync_period(self) -> None:
        last = self.transitions[-1] if self.transitions else None
        if last is not None and last.new is OPEN:
            self.opened_at = last.at
        if self.breaker.state is not HALF:
            self.probes.clear()

    @rule(target=calls)
    def allow(self) -> tuple[int, BreakerState]:
        before = self.breaker.state
        before_now = self.clock()
        ok = self.breaker.allow()
        cooling = self.opened_at is not None and before_now < self.opened_at + COOLDOWN
        if before is OPEN and cooling:
            assert not ok, "open breaker allowed a call before its cooldown"
        self._sync_period()
        if not ok:
            return (-1, before)
        self.next_id += 1
        if self.breaker.state is HALF:
            self.probes.append((self.next_id, self.clock()))
        return (self.next_id, self.breaker.state)

    def _report(self, call: tuple[int, BreakerState], success: bool) -> None:
        call_id, _ = call
        if call_id < 0:
            return
        was_half = self.breaker.state is HALF
        if success:
            self.breaker.record_success()
            if was_half:
                assert self.breaker.state is CLOSED, "success in half-open must close"
        else:
            self.breaker.record_failure("x")
            if was_half:
                assert self.breaker.state is OPEN, "failure in half-open must re-open"
        self.probes = [p for p in self.probes if p[0] != call_id]
        self._sync_period()

    @rule(call=consumes(calls))
    def succeed(self, call: tuple[int, BreakerState]) -> None:
        self._report(call, True)

    @rule(call=consumes(calls))
    def fail(self, call: tuple[int, BreakerState]) -> None:
        self._report(call, False)

    @rule(call=consumes(calls))
    def release(self, call: tuple[int, BreakerState]) -> None:
        """A call ends with no verdict: only the probe's holder gives it back."""
        if any(p[0] == call[0] for p in self.probes):
            self.breaker.release()
            self.probes = [p for p in self.probes if p[0] != call[0]]

    @rule(seconds=st.sampled_from([0.5, 5.0, 15.0, 29.9, 30.0, 61.0, 120.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def unsolicited_failure(self) -> None:
        self.breaker.record_failure("stale")
        self._sync_period()

    @precondition(lambda self: len(self.transitions) < 200)
    @rule()
    def force_open(self) -> None:
        self.breaker.force_open("forced")
        self._sync_period()

    @rule()
    def reset(self) -> None:
        self.breaker.reset()
        self._sync_period()

    @invariant()
    def transitions_are_legal(self) -> None:
        for t in self.transitions:
            assert (t.old, t.new) in LEGAL_TRANSITIONS, t

    @invariant()
    def at_most_one_live_probe(self) -> None:
        now = self.clock()
        live = [p for p in self.probes if now - p[1] < PROBE_TIMEOUT]
        assert len(live) <= 1, f"{len(live)} concurrent half-open probes"

    @invariant()
    def memory_is_bounded(self) -> None:
        b = self.breaker
        assert len(b._ids) == len(b._ok) == len(b._fail) == 6
        snap = b.snapshot()
        assert snap.failures >= 0 and snap.successes >= 0
        assert snap.requests <= 10_000

    @invariant()
    def snapshot_matches_state(self) -> None:
        snap = self.breaker.snapshot()
        assert snap.state is self.breaker.state
        if snap.state is not OPEN:
            assert snap.retry_in_s == 0.0
        else:
            assert 0.0 <= snap.retry_in_s <= COOLDOWN


BreakerMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestBreakerMachine = BreakerMachine.TestCase


class SharedBreakerMachine(BreakerMachine):
    """The same random sequences on a breaker whose state is in a store."""

    def new_breaker(self, config: BreakerConfig) -> CircuitBreaker:
        store = MemoryStore(clock=self.clock)
        return SharedCircuitBreaker(KEY, config, store=store, clock=self.clock)


SharedBreakerMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
TestSharedBreakerMachine = SharedBreakerMachine.TestCase


class SQLiteBreakerMachine(BreakerMachine):
    """The same random sequences with the state in a SQLite file."""

    def new_breaker(self, config: BreakerConfig) -> CircuitBreaker:
        self.folder = tempfile.TemporaryDirectory()
        self.store = SQLiteStore(Path(self.folder.name) / "state.db", clock=self.clock)
        return SharedCircuitBreaker(KEY, config, store=self.store, clock=self.clock)

    def teardown(self) -> None:
        self.store.close()
        self.folder.cleanup()


SQLiteBreakerMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None
)
TestSQLiteBreakerMachine = SQLiteBreakerMachine.TestCase


@pytest.mark.parametrize("where", ["local", "memory-store"])
def test_independent_low_error_rates_never_open_anything(
    clock: FakeClock, where: str
) -> None:
    """Document 004's error rates at volume: no model breaker, no gateway breaker.

    60,000 outcomes: run on the in-process and memory-store breakers (the
    stores' semantics are the same; the other tests run on every store).
    """
    import random

    state: State = "memory://" if where == "local" else MemoryStore(clock=clock)
    rates = {"gpt-4.1": 0.058, "gemini-2.0-flash": 0.013, "deepseek-v3.2": 0.009}
    reg = BreakerRegistry(clock=clock, state=state)
    rng = random.Random(4)
    for _ in range(20_000):
        clock.advance(0.003)  # ~330 calls/s
        for model, rate in rates.items():
            key = ("http://gw/v1", model)
            if rng.random() < rate:
                reg.record_failure(key, "503")
            else:
                reg.record_success(key)
    states = {key: snap.state for key, snap in reg.snapshot().items()}
    assert set(states.values()) == {CLOSED}, states
