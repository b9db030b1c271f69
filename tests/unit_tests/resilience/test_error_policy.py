"""The classification table, on the exceptions the stack really raises."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from langchain_core.exceptions import ModelAPIError, ModelError

from langchain_holysheep.errors import (
    GatewayAuthenticationError,
    ModelNotServedError,
    ResponseFormatError,
)
from langchain_holysheep.resilience import (
    Action,
    CircuitOpenError,
    ErrorPolicy,
    FirstTokenTimeoutError,
    RateLimitTimeoutError,
    RetriesExhaustedError,
    StreamFailureError,
    StreamStallError,
    default_policy,
)
from langchain_holysheep.resilience._policy import parse_retry_after
from tests.unit_tests.resilience.fakes import (
    langchain_wrapped,
    status_error,
    transport_error,
)

R, F, S = Action.RETRY, Action.FALLBACK, Action.STOP


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (429, R),
        (408, R),
        (409, R),
        (500, R),
        (502, R),
        (503, R),
        (504, R),
        (404, F),
        (401, S),
        (403, S),
        (400, S),
        (422, S),
    ],
)
@pytest.mark.parametrize("wrap", [False, True], ids=["sdk", "langchain"])
def test_status_codes(status: int, action: Action, wrap: bool) -> None:
    exc: BaseException = status_error(status)
    if wrap:
        exc = langchain_wrapped(exc)  # type: ignore[arg-type]
    decision = default_policy().classify(exc)
    assert decision.action is action
    assert decision.status == status


def test_langchain_does_not_wrap_408_409_but_we_still_retry() -> None:
    for status in (408, 409):
        exc = langchain_wrapped(status_error(status))
        assert not isinstance(exc, ModelError)
        assert default_policy().classify(exc).action is R


def test_retry_after_headers_seconds_and_ms() -> None:
    exc = langchain_wrapped(status_error(429, headers={"retry-after": "2"}))
    assert default_policy().classify(exc).retry_after_s == 2.0
    exc = langchain_wrapped(
        status_error(503, headers={"retry-after-ms": "1500", "retry-after": "9"})
    )
    assert default_policy().classify(exc).retry_after_s == 1.5


def test_retry_after_http_date() -> None:
    headers = {"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}
    now = 1445412480.0  # 07:28:00 that day
    assert parse_retry_after(headers, now=now) == pytest.approx(10.0)
    assert parse_retry_after({"retry-after": "garbage"}) is None
    assert parse_retry_after({"retry-after": "-3"}) == 0.0
    assert parse_retry_after(None) is None


def test_rate_limit_does_not_count_against_breaker() -> None:
    d = default_policy().classify(langchain_wrapped(status_error(429)))
    assert not d.breaker_failure
    assert default_policy().classify(status_error(503)).breaker_failure


def test_context_length_exceeded_falls_over_preferring_larger_context() -> None:
    exc = langchain_wrapped(
        status_error(
            400,
            "This model's maximum context length is 8192 tokens.",
            code="context_length_exceeded",
        )
    )
    d = default_policy().classify(exc)
    assert d.action is F
    assert d.prefer_larger_context
    assert not d.breaker_failure


def test_content_policy_stops_with_provider_reason() -> None:
    reason = "Your request was rejected as a result of our safety system. Flagged."
    exc = langchain_wrapped(status_error(400, reason, code="content_policy_violation"))
    d = default_policy().classify(exc)
    assert d.action is S
    assert d.reason == "content policy"
    assert "Flagged." in d.message


def test_gateway_auth_stops_but_other_provider_auth_falls_over() -> None:
    inner = status_error(401)
    try:
        raise GatewayAuthenticationError(401) from inner
    except GatewayAuthenticationError as exc:
        assert default_policy().classify(exc).action is S
        assert default_policy().classify(exc, gateway=False).action is F


def test_model_not_served_falls_over() -> None:
    try:
        raise ModelNotServedError("gpt-9") from status_error(404)
    except ModelNotServedError as exc:
        d = default_policy().classify(exc)
    assert d.action is F
    assert d.status == 404


def test_silent_read_timeout_falls_over_never_retries() -> None:
    exc = transport_error(httpx2.ReadTimeout, openai.APITimeoutError)
    d = default_policy().classify(exc)
    assert d.action is F
    assert d.silent
    # a bare timeout (e.g. our own asyncio timeout) is silent too
    assert default_policy().classify(TimeoutError()).silent


def test_connect_timeout_retries_as_connection_level() -> None:
    exc = transport_error(httpx2.ConnectTimeout, openai.APITimeoutError)
    d = default_policy().classify(exc)
    assert d.action is R
    assert d.connection_level


@pytest.mark.parametrize(
    ("kind", "unreachable"),
    [
        (httpx2.ConnectError, True),
        (httpx2.RemoteProtocolError, False),
        (httpx2.ReadError, False),
    ],
)
def test_connection_errors_retry(kind: type[Exception], unreachable: bool) -> None:
    d = default_policy().classify(transport_error(kind, openai.APIConnectionError))
    assert d.action is R
    # only "cannot connect at all" counts towards a gateway-wide outage
    assert d.connection_level is unreachable
    assert default_policy().classify(ConnectionResetError()).action is R
    assert default_policy().classify(ConnectionRefusedError()).connection_level


def test_write_and_pool_timeouts_retry() -> None:
    for kind in (httpx2.WriteTimeout, httpx2.PoolTimeout):
        d = default_policy().classify(transport_error(kind, openai.APITimeoutError))
        assert (d.action, d.silent, d.connection_level) == (R, False, False)


def test_malformed_responses_fall_over() -> None:
    try:
        json.loads("{not json")
    except json.JSONDecodeError as exc:
        assert default_policy().classify(exc).action is F
    assert default_policy().classify(ResponseFormatError("bad")).action is F


def test_own_errors_carry_their_action() -> None:
    p = default_policy()
    d = p.classify(CircuitOpenError(("u", "m"), 3.0))
    assert (d.action, d.reason) == (F, "circuit open")
    assert p.classify(RateLimitTimeoutError("k", 5, 1)).action is F
    d = p.classify(FirstTokenTimeoutError("m", 2.0))
    assert (d.action, d.silent, d.reason) == (F, True, "first-token timeout")
    d = p.classify(StreamStallError("m", 2.0, chunks=3))
    assert (d.action, d.silent, d.reason) == (F, False, "stream stall")
    assert p.classify(StreamFailureError("cut", "m")).reason == "stream cut"


def test_retries_exhausted_keeps_the_last_status() -> None:
    last = status_error(503)
    try:
        raise RetriesExhaustedError(last, 3, "3 attempts") from last
    except RetriesExhaustedError as exc:
        d = default_policy().classify(exc)
    assert d.action is F
    assert d.status == 503
    assert d.reason.startswith("retries exhausted")


def test_budget_exceeded_stops_via_attribute() -> None:
    class BudgetExceededError(Exception):
        holysheep_action = "stop"

    d = default_policy().classify(BudgetExceededError("over budget"))
    assert d.action is S
    assert not d.breaker_failure


def test_unknown_exceptions_stop() -> None:
    assert default_policy().classify(KeyError("x")).action is S
    assert default_policy().classify(ValueError("x")).action is S


def test_generic_model_errors_follow_is_retryable() -> None:
    assert default_policy().classify(ModelAPIError("x")).action is R
    assert default_policy().classify(ModelError("x")).action is S


def test_mid_stream_error_event_without_status_falls_over() -> None:
    exc = openai.APIError(
        "overloaded",
        request=httpx2.Request("POST", "http://x"),
        body={"message": "overloaded"},
    )
    assert default_policy().classify(exc).action is F


def test_overrides_take_precedence() -> None:
    class Flaky(Exception):
        pass

    policy = ErrorPolicy(
        overrides={
            429: "fallback",
            "model_overloaded": Action.RETRY,
            Flaky: Action.RETRY,
            (lambda e: "magic" in str(e)): "fallback",
        }
    )
    assert policy.classify(status_error(429)).action is F
    assert policy.classify(status_error(400, code="model_overloaded")).action is R
    assert policy.classify(Flaky()).action is R
    assert policy.classify(ValueError("magic")).action is F
    assert policy.classify(ValueError("plain")).action is S
    # type overrides match anywhere in the cause chain
    policy2 = ErrorPolicy(overrides=[(openai.AuthenticationError, "fallback")])
    try:
        raise GatewayAuthenticationError(401) from status_error(401)
    except GatewayAuthenticationError as exc:
        assert policy2.classify(exc).action is F
    # with_overrides stacks newer overrides first
    policy3 = policy.with_overrides({429: "stop"})
    assert policy3.classify(status_error(429)).action is S


def test_bad_override_rejected() -> None:
    with pytest.raises(TypeError):
        ErrorPolicy(overrides={1.5: "retry"})
    with pytest.raises(ValueError):
        ErrorPolicy(overrides={429: "sometimes"})


def test_describe_rows_for_the_readme() -> None:
    rows = ErrorPolicy(overrides={418: "retry"}).describe()
    assert rows[0] == ("[override] HTTP 418", "RETRY")
    text = "\n".join(f"{c} -> {a}" for c, a in rows)
    for needle in ("429", "5xx", "404", "context length", "401/403", "silent"):
        assert needle in text
    assert all(a.split()[0] in {"RETRY", "FALLBACK", "STOP"} for _, a in rows)
