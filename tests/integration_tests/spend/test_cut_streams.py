"""Billed attempts without a usage block (cut or abandoned streams) are never free."""

from __future__ import annotations

from decimal import Decimal

import pytest

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.errors import HolySheepError
from langchain_holysheep.simulator import Fault, GatewaySimulator
from langchain_holysheep.spend import Budget, CallRecord, get_holysheep_callback

from .conftest import BOOK, chat

PROMPT = "Tell me a long story about sheep on a green hill"


class Records:
    def __init__(self) -> None:
        self.rows: list[CallRecord] = []

    def record(self, record: CallRecord) -> None:
        self.rows.append(record)

    def close(self) -> None:
        pass


def _check(rows: list[CallRecord], sim: GatewaySimulator, budget: Budget) -> None:
    (cut,) = [r for r in rows if r.estimated]
    truth = sim.log.records()[0]
    assert truth.status == "cut" and not truth.billed  # no usage block was sent
    assert cut.usage.input >= truth.prompt_tokens  # the prompt estimate is high
    assert 0 < cut.usage.output <= truth.completion_tokens  # what was delivered
    assert cut.cost is not None and cut.cost > 0
    assert budget.spent() == cut.cost and budget.reserved() == 0


def test_a_cut_stream_is_recorded_with_estimated_tokens(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=5)])
    model = ChatHolySheep(  # type: ignore[call-arg]
        model="gpt-4.1", base_url=sim.base_url, api_key=sim.api_key, max_tokens=60
    )
    budget, sink = Budget("1"), Records()
    with (
        get_holysheep_callback(budget=budget, ledger=sink, pricebook=BOOK),
        pytest.raises(HolySheepError, match="partial text"),
    ):
        for _ in model.stream(PROMPT):
            pass
    _check(sink.rows, sim, budget)
    assert len(sink.rows) == sim.log.count() == 1


def test_a_cut_plain_openai_stream_is_estimated(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=5)])
    budget, sink = Budget("1"), Records()
    with (
        get_holysheep_callback(budget=budget, ledger=sink, pricebook=BOOK),
        pytest.raises(Exception, match="Connection error"),
    ):
        for _ in chat(sim, "gpt-4.1", max_tokens=60).stream(PROMPT):
            pass
    _check(sink.rows, sim, budget)


def test_a_failure_before_any_content_costs_nothing(sim: GatewaySimulator) -> None:
    sim.script("gpt-4.1", [Fault.status(500)])
    budget, sink = Budget("1"), Records()
    with (
        get_holysheep_callback(budget=budget, ledger=sink, pricebook=BOOK),
        pytest.raises(Exception, match="500"),
    ):
        for _ in chat(sim, "gpt-4.1", max_tokens=60).stream(PROMPT):
            pass
    assert [r.estimated for r in sink.rows] == [False]
    assert sink.rows[0].cost == Decimal(0) and budget.spent() == 0


def test_an_abandoned_stream_is_estimated_not_free(sim: GatewaySimulator) -> None:
    budget, sink = Budget("1"), Records()
    with get_holysheep_callback(budget=budget, ledger=sink, pricebook=BOOK):
        stream = chat(sim, "gpt-4.1", max_tokens=60).stream(PROMPT)
        next(stream), next(stream), next(stream)
        stream.close()  # the caller stops reading: the provider bills anyway
    (row,) = sink.rows
    assert row.estimated and row.usage.output > 0
    assert row.cost is not None and row.cost > 0 and budget.spent() == row.cost


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_a_cut_attempt_inside_a_recovered_call_is_billed(
    sim: GatewaySimulator, mode: str
) -> None:
    """The cut attempt is charged (estimated) even though a later route answered.

    `invoke` restarts the answer on the fallback; a live `stream` continues the
    delivered text on it (deepseek-v3.2 takes an assistant prefill).
    """
    sim.script("gpt-4.1", [Fault.stream_cut(after_chunks=5)])
    model = ChatHolySheep(  # type: ignore[call-arg]
        model="gpt-4.1",
        base_url=sim.base_url,
        api_key=sim.api_key,
        max_tokens=60,
        streaming=True,
        fallbacks=["deepseek-v3.2"],
    )
    budget, sink = Budget("1"), Records()
    with get_holysheep_callback(budget=budget, ledger=sink, pricebook=BOOK):
        if mode == "invoke":
            answer = model.invoke(PROMPT)
        else:
            answer = None
            for chunk in model.stream(PROMPT):
                answer = chunk if answer is None else answer + chunk
    assert answer is not None and answer.content
    cut, served = sink.rows
    assert cut.served_model == "gpt-4.1" and cut.outcome == "error"
    assert cut.estimated and cut.cost is not None and cut.cost > 0
    assert cut.usage.output > 0
    assert served.served_model == "deepseek-v3.2" and not served.estimated
    truth = sim.log.records()
    assert [r.status for r in truth] == ["cut", 200]
    assert served.usage.output == truth[1].completion_tokens
    assert budget.spent() == cut.cost + served.cost
    assert budget.reserved() == 0
