"""Retry waits on tenacity: backoff, jitter, Retry-After, deadline, give-up."""

from __future__ import annotations

import random
from typing import Any

import pytest
from tenacity import RetryCallState

from langchain_holysheep.resilience import (
    Deadline,
    RetriesExhaustedError,
    RetryPolicy,
)
from tests.unit_tests.resilience.fakes import FakeClock, langchain_wrapped, status_error


def failing(*errors: BaseException, result: str = "ok") -> Any:
    calls = {"n": 0}

    def fn() -> str:
        i = calls["n"]
        calls["n"] += 1
        if i < len(errors):
            raise errors[i]
        return result

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


def test_backoff_is_exponential_capped_and_never_zero() -> None:
    p = RetryPolicy(initial=0.5, max_backoff=4.0, jitter=False)
    assert [p.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert RetryPolicy(initial=0.0, jitter=False).backoff(1) == pytest.approx(0.05)
    jittered = RetryPolicy(initial=1.0, max_backoff=8.0)
    rng = random.Random(1)
    for n in range(1, 6):
        b = min(2.0 ** (n - 1), 8.0)
        assert b / 2 <= jittered.backoff(n, rng) <= b


def test_retries_then_succeeds_with_backoff_waits(clock: FakeClock) -> None:
    fn = failing(status_error(503), status_error(500))
    p = RetryPolicy(max_attempts=3, initial=0.5, jitter=False)
    seen: list[int] = []
    r = p.retrying(
        sleep=clock.sleep, before_sleep=lambda rs: seen.append(rs.attempt_number)
    )
    assert r(fn) == "ok"
    assert clock.sleeps == [0.5, 1.0]
    assert seen == [1, 2]


def test_gives_up_after_max_attempts(clock: FakeClock) -> None:
    errors = [status_error(503) for _ in range(5)]
    fn = failing(*errors)
    r = RetryPolicy(max_attempts=3, jitter=False).retrying(sleep=clock.sleep)
    with pytest.raises(RetriesExhaustedError) as info:
        r(fn)
    assert fn.calls["n"] == 3  # type: ignore[attr-defined]
    assert info.value.attempts == 3
    assert info.value.__cause__ is errors[2]
    assert len(clock.sleeps) == 2


def test_non_retryable_errors_propagate_immediately(clock: FakeClock) -> None:
    err = status_error(400)
    fn = failing(err)
    with pytest.raises(type(err)):
        RetryPolicy().retrying(sleep=clock.sleep)(fn)
    assert fn.calls["n"] == 1  # type: ignore[attr-defined]
    assert clock.sleeps == []


def test_silent_timeout_is_not_retried(clock: FakeClock) -> None:
    fn = failing(TimeoutError("read timed out"))
    with pytest.raises(TimeoutError):
        RetryPolicy().retrying(sleep=clock.sleep)(fn)
    assert fn.calls["n"] == 1  # type: ignore[attr-defined]


def test_retry_after_is_honoured(clock: FakeClock) -> None:
    fn = failing(
        langchain_wrapped(status_error(429, headers={"retry-after": "3"})),
        langchain_wrapped(status_error(503, headers={"retry-after-ms": "250"})),
    )
    r = RetryPolicy(max_attempts=3, jitter=False).retrying(sleep=clock.sleep)
    assert r(fn) == "ok"
    assert clock.sleeps == [3.0, 0.25]


def test_retry_after_zero_still_waits_min_wait(clock: FakeClock) -> None:
    fn = failing(status_error(429, headers={"retry-after": "0"}))
    RetryPolicy(min_wait=0.05).retrying(sleep=clock.sleep)(fn)
    assert clock.sleeps == [0.05]


def test_retry_after_beyond_cap_gives_up_on_route(clock: FakeClock) -> None:
    fn = failing(status_error(429, headers={"retry-after": "120"}))
    r = RetryPolicy(max_retry_after=30).retrying(sleep=clock.sleep)
    with pytest.raises(RetriesExhaustedError) as info:
        r(fn)
    assert "exceeds max_retry_after" in info.value.reason
    assert clock.sleeps == []


def test_retry_after_that_does_not_fit_deadline_gives_up(clock: FakeClock) -> None:
    deadline = Deadline(5.0, clock=clock)
    fn = failing(status_error(503, headers={"retry-after": "10"}))
    r = RetryPolicy().retrying(deadline=deadline, sleep=clock.sleep)
    with pytest.raises(RetriesExhaustedError) as info:
        r(fn)
    assert "does not fit the remaining deadline" in info.value.reason
    assert clock.sleeps == []


def test_backoff_that_does_not_fit_deadline_gives_up(clock: FakeClock) -> None:
    deadline = Deadline(1.2, clock=clock)
    fn = failing(status_error(503), status_error(503), status_error(503))
    r = RetryPolicy(max_attempts=5, initial=0.5, jitter=False).retrying(
        deadline=deadline, sleep=clock.sleep
    )
    with pytest.raises(RetriesExhaustedError):
        r(fn)
    # slept 0.5, then 1.0 would end past 1.2 s: gave up instead
    assert clock.sleeps == [0.5]


def test_retry_state_is_a_tenacity_state(clock: FakeClock) -> None:
    seen: list[tuple[object, bool]] = []

    def before_sleep(rs: RetryCallState) -> None:
        seen.append((rs, rs.outcome is not None and rs.outcome.failed))

    fn = failing(status_error(502))
    RetryPolicy(jitter=False).retrying(sleep=clock.sleep, before_sleep=before_sleep)(fn)
    assert isinstance(seen[0][0], RetryCallState)
    assert seen[0][1]


async def test_async_retrying(clock: FakeClock) -> None:
    errors = [status_error(503), status_error(503)]
    calls = {"n": 0}
    reported: list[int] = []

    async def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= len(errors):
            raise errors[calls["n"] - 1]
        return "ok"

    async def before_sleep(rs: RetryCallState) -> None:
        reported.append(rs.attempt_number)

    r = RetryPolicy(jitter=False, initial=0.25).aretrying(
        sleep=clock.asleep, before_sleep=before_sleep
    )
    assert await r(fn) == "ok"
    assert clock.sleeps == [0.25, 0.5]
    assert reported == [1, 2]


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(min_wait=0)
    assert RetryPolicy.none().max_retries == 0
