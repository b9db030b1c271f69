"""Malformed replies at the edges: time, progress, bytes and the lean path.

Same setup and checks as `test_malformed_replies.py` (see `malformed.py`):

- `slow-drip` / `keep-alive-whitespace` (invoke, ainvoke): a body that arrives
  one byte (or one space) at a time never trips the HTTP client's per-read
  timeout; the attempt's wall-clock `timeout` ends it, then the fallback.
- `empty-chunks-after-content` (stream, astream): `"choices": []` chunks after
  the first content are no progress: the stall limit fires and deepseek-v3.2
  continues the stream.
- `binary-chunk` (all entry points): a body that is not UTF-8 is a malformed
  response (not a bare `UnicodeDecodeError`), then the fallback.
- `error-200-*` (ainvoke): the lean async path reads an error object sent with
  status 200 as the provider's error, as every other path does.
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
async def test_edge_falls_over(
    sim: GatewaySimulator, answers: dict[str, str], name: str, kind: str
) -> None:
    await run_case(sim, answers, CASES[name], kind)
