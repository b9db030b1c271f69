"""Malformed-reply cases that also need a change of the routing core.

Same setup and checks as `test_malformed_replies.py` (see `malformed.py`). Each
case says what the core has to do for it:

- `slow-drip` / `keep-alive-whitespace` (invoke, ainvoke): a body that arrives
  one byte (or one space) at a time never trips the per-read timeout, so
  neither `timeout` nor `deadline` ends the attempt: the call hangs. Expected:
  the attempt is abandoned when its `timeout` runs out, then the fallback.
- `empty-chunks-after-content` (stream, astream): `"choices": []` chunks after
  the first content reset the stall clock although nothing progresses, so only
  the deadline ends the stream (`StreamInterruptedError`). Expected: chunks
  without content count as no progress, the stall limit fires, and
  deepseek-v3.2 continues the stream.
- `binary-chunk` (all entry points): a body that is not UTF-8 makes the SDK
  raise a bare `UnicodeDecodeError` (while decoding the JSON body, or an SSE
  line) which `ChatHolySheep._generate` / `_agenerate` / `_stream` /
  `_astream` do not hand to `_gateway.reraise` (it turns it into a
  `ResponseFormatError`), so the router stops. Expected: a malformed
  response, then the fallback.
- `error-200-*` (ainvoke): `_fastpath.apost_chat` rejects any reply without a
  `choices` list itself, so an error object sent with status 200 is a
  "malformed response" there (one attempt, then the fallback) instead of the
  provider's error as on every other path. Expected: the same as `invoke`
  (`_fastpath` calls `_replies.check_completion`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.simulator.faults import FaultKind
from tests.integration_tests.resilience.malformed import (
    AFTER_CHUNKS,
    CONTINUED,
    Case,
    Expect,
    Limits,
    per_kind,
    reference_answers,
    run_case,
)
from tests.integration_tests.resilience.test_malformed_replies import CASES as MAIN

SHORT_TIMEOUT = Limits(timeout=1.0)
SHORT_STALL = Limits(stall=0.5)

CASES: dict[str, Case] = {
    "slow-drip": Case(
        Fault.slow_drip(0.1),
        per_kind(Expect(1, None, held=SHORT_TIMEOUT.timeout)),
        limits=SHORT_TIMEOUT,
    ),
    "keep-alive-whitespace": Case(
        Fault.empty_chunks(interval=0.05),
        per_kind(Expect(1, None, held=SHORT_TIMEOUT.timeout)),
        limits=SHORT_TIMEOUT,
    ),
    "empty-chunks-after-content": Case(
        Fault.empty_chunks(after_chunks=AFTER_CHUNKS, interval=0.05),
        per_kind(stream=Expect(1, None, CONTINUED, held=SHORT_STALL.stall)),
        limits=SHORT_STALL,
    ),
    "binary-chunk": Case(
        Fault.malformed_chunk(AFTER_CHUNKS, payload="binary"),
        per_kind(
            Expect(1, ("malformed response",)),
            Expect(1, ("stream malformed",), CONTINUED),
        ),
    ),
    **{
        name: Case(case.fault, {"ainvoke": case.expect["invoke"]}, case.limits)
        for name, case in MAIN.items()
        if name.startswith("error-200-")
    },
}

#: Fault kinds exercised here.
COVERED_KINDS: frozenset[FaultKind] = frozenset(c.fault.kind for c in CASES.values())


@pytest.fixture(scope="module")
def answers() -> Iterator[dict[str, str]]:
    """Each model's unfaulted answer."""
    yield reference_answers()


@pytest.mark.parametrize(
    ("name", "kind"),
    [(name, kind) for name, case in CASES.items() for kind in case.expect],
)
async def test_pending_edge_falls_over(
    sim: GatewaySimulator, answers: dict[str, str], name: str, kind: str
) -> None:
    await run_case(sim, answers, CASES[name], kind)
