"""Replies that are not usable completions fall over to the fallback model.

`gpt-4.1` answers with a fault, `deepseek-v3.2` (its fallback) answers
normally; every case runs through `invoke`, `ainvoke`, `stream` and `astream`
where it applies, and is checked against the simulator's log (see
`malformed.py`): the requests each model received, the order, billing, the
library's attempt count, the router's reason for each failed attempt, and the
whole answer.

The policy these cases pin down:

- a 200 that is not a completion (an HTML page, JSON without `choices`, `null`
  or `[]` choices) is a malformed response: one attempt, then the fallback
  (never a bare `ValueError` / `TypeError` / `IndexError`, which would stop the
  call). A stream of such chunks ends without a finish reason: incomplete.
- an error object sent with status 200 (or as an event in a stream) is the
  provider's error, as the SDK raises it with the status its `code` / `type`
  stands for: a rate limit or an overloaded server is retried (3 attempts), a
  missing model falls over, a rejected key stops the call; an error the table
  does not know falls over at once ("provider error").
- mid-stream, after content was delivered: an error event or an HTML page in
  the body ends gpt-4.1's stream, which deepseek-v3.2 continues (it supports
  assistant prefill).
- streams that send no content (empty `choices: []` chunks, or a body that
  drips a byte at a time) hit the first-token limit.

Cases that also need a change of the routing core are in
`test_malformed_edges.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_holysheep.errors import GatewayAuthenticationError
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.simulator.faults import FaultKind
from tests.integration_tests.resilience.malformed import (
    AFTER_CHUNKS,
    CONTINUED,
    STREAM,
    STREAMED_INVOKE,
    Case,
    Expect,
    Limits,
    per_kind,
    reference_answers,
    run_case,
)

MALFORMED = ("malformed response",)
INCOMPLETE = ("stream incomplete",)
PROVIDER = ("provider error",)
FIRST_TOKEN = ("first-token timeout",)


def retried(reason: str) -> tuple[str, ...]:
    """The reasons of 3 attempts failing with a retryable error."""
    return (reason, reason, f"{reason}; 3 attempt(s), the maximum")


# An error object whose code and type name no HTTP status.
UNKNOWN = {"code": 500, "code_str": "upstream_exploded", "error_type": "upstream_error"}
SHORT_FIRST_TOKEN = Limits(first_token=1.0)

# `ainvoke` of the error-object cases is in test_malformed_edges.py (the lean
# async request path).
INVOKE_AND_STREAMS = ("invoke", *STREAM)


def same(kinds: tuple[str, ...], expect: Expect) -> dict[str, Expect]:
    """The same expectation for each of `kinds`."""
    return dict.fromkeys(kinds, expect)


RATE_LIMITED_THRICE = "rate limited; 3 attempt(s), the maximum"

CASES: dict[str, Case] = {
    # -- a 200 that is not a completion ---------------------------------------------
    "html-page": Case(
        Fault.bad_reply("html"),
        per_kind(Expect(1, MALFORMED), Expect(1, INCOMPLETE)),
    ),
    "no-choices": Case(
        Fault.bad_reply("no_choices"),
        per_kind(Expect(1, MALFORMED), Expect(1, INCOMPLETE)),
    ),
    "null-choices": Case(
        Fault.bad_reply("null_choices"),
        per_kind(Expect(1, MALFORMED), Expect(1, INCOMPLETE)),
    ),
    "empty-choices": Case(
        Fault.bad_reply("empty_choices"),
        per_kind(Expect(1, MALFORMED), Expect(1, INCOMPLETE)),
    ),
    # -- an error object with status 200 (streams: an error event first) ------------
    "error-200-rate-limit": Case(
        Fault.error_reply(429),
        same(INVOKE_AND_STREAMS, Expect(3, retried("rate limited"))),
    ),
    "error-200-overloaded": Case(
        Fault.error_reply(503),
        same(INVOKE_AND_STREAMS, Expect(3, retried("server error"))),
    ),
    "error-200-model-not-found": Case(
        Fault.error_reply(404, code_str="model_not_found"),
        same(INVOKE_AND_STREAMS, Expect(1, ("model not found",))),
    ),
    "error-200-unknown": Case(
        Fault.error_reply(**UNKNOWN),  # type: ignore[arg-type]
        same(INVOKE_AND_STREAMS, Expect(1, PROVIDER)),
    ),
    "error-200-bad-key": Case(
        Fault.error_reply(401),
        same(INVOKE_AND_STREAMS, Expect(1, None, GatewayAuthenticationError)),
    ),
    # -- broken after content was delivered ---------------------------------------
    "error-event-mid-stream": Case(
        Fault.error_reply(**UNKNOWN, after_chunks=AFTER_CHUNKS),  # type: ignore[arg-type]
        per_kind(stream=Expect(1, PROVIDER, CONTINUED)),
    ),
    "rate-limit-event-mid-stream": Case(
        Fault.error_reply(429, after_chunks=AFTER_CHUNKS),
        {
            **per_kind(stream=Expect(1, ("rate limited",), CONTINUED)),
            # nothing was delivered yet: retried like any 429, then fall over
            **dict.fromkeys(
                STREAMED_INVOKE,
                Expect(3, (*("rate limited",) * 2, RATE_LIMITED_THRICE)),
            ),
        },
    ),
    "html-mid-body": Case(
        Fault.malformed_chunk(AFTER_CHUNKS, payload="html"),
        per_kind(Expect(1, MALFORMED), Expect(1, INCOMPLETE, CONTINUED)),
    ),
    # -- no content at all --------------------------------------------------------
    "empty-chunks-before-content": Case(
        Fault.empty_chunks(after_chunks=0, interval=0.05),
        per_kind(stream=Expect(1, FIRST_TOKEN, held=SHORT_FIRST_TOKEN.first_token)),
        limits=SHORT_FIRST_TOKEN,
    ),
    "slow-drip-stream": Case(
        Fault.slow_drip(0.01),
        per_kind(stream=Expect(1, FIRST_TOKEN, held=SHORT_FIRST_TOKEN.first_token)),
        limits=SHORT_FIRST_TOKEN,
    ),
}

#: Fault kinds exercised here (the fault matrix covers the others).
COVERED_KINDS: frozenset[FaultKind] = frozenset(c.fault.kind for c in CASES.values())


@pytest.fixture(scope="module")
def answers() -> Iterator[dict[str, str]]:
    """Each model's unfaulted answer."""
    yield reference_answers()


@pytest.mark.parametrize(
    ("name", "kind"),
    [(name, kind) for name, case in CASES.items() for kind in case.expect],
)
async def test_malformed_reply_falls_over(
    sim: GatewaySimulator, answers: dict[str, str], name: str, kind: str
) -> None:
    await run_case(sim, answers, CASES[name], kind)


async def test_error_object_keeps_the_providers_message(
    sim: GatewaySimulator, answers: dict[str, str]
) -> None:
    """A rejected key in a 200 stops the call with the gateway's own error type."""
    result = await run_case(sim, answers, CASES["error-200-bad-key"], "invoke")
    assert isinstance(result.error, GatewayAuthenticationError)
    assert result.error.status == 401
    assert "HOLYSHEEP_API_KEY" in str(result.error)
