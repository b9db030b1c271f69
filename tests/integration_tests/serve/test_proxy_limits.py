"""Non-streaming calls through the proxy under first-token and stall limits.

With a limit on (the default, as on `ChatHolySheep`), the proxy asks the route
for a stream, reads it under the limits and answers the client with one JSON
reply; a silent or stalled route is left for the next one long before any
HTTP timeout. With the limits off (`false`), the request is sent as the client
sent it.
"""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from langchain_holysheep.simulator import Fault, GatewaySimulator
from tests.integration_tests.serve._proxy import KEY, running_proxy

MESSAGES = [{"role": "user", "content": "Say hello in one sentence."}]
GROUPS = """
[groups.plain]
routes = [{ model = "gpt-4.1", first_token_timeout = false, stall_timeout = false }]

[groups.guarded]
routes = [
  { model = "gpt-4.1", timeout = 60, first_token_timeout = 0.5, stall_timeout = 0.5 },
  "deepseek-v3.2",
]
"""


def _client(proxy: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key=KEY, max_retries=0)  # type: ignore[attr-defined]


def test_by_default_an_answer_is_read_as_a_stream_and_relayed_whole(
    sim: GatewaySimulator, tmp_path: Path
) -> None:
    direct = openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key)
    want = direct.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    with running_proxy(tmp_path, sim) as proxy:
        raw = _client(proxy).chat.completions.with_raw_response.create(
            model="solo", messages=MESSAGES
        )
        reply = raw.parse()
        (row,) = proxy.ledger_rows(1)
    assert [r.stream for r in sim.log.records()] == [False, True]
    assert reply.object == "chat.completion" and reply.model == "gpt-4.1"
    assert reply.choices[0].message.content == want.choices[0].message.content
    assert reply.choices[0].finish_reason == want.choices[0].finish_reason
    assert reply.usage is not None and want.usage is not None
    assert reply.usage.completion_tokens == want.usage.completion_tokens
    assert raw.headers["content-type"].startswith("application/json")
    assert row.usage.output == want.usage.completion_tokens and row.cost


def test_limits_off_sends_the_request_as_the_client_sent_it(
    sim: GatewaySimulator, tmp_path: Path
) -> None:
    with running_proxy(tmp_path, sim, group=GROUPS) as proxy:
        reply = _client(proxy).chat.completions.create(model="plain", messages=MESSAGES)
        proxy.ledger_rows(1)
    assert reply.choices[0].message.content
    assert [r.stream for r in sim.log.records()] == [False]


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault.silent(), "silent"), (Fault.stream_stall(after_chunks=2), "stall")],
    ids=["silent", "stalled"],
)
def test_a_silent_or_stalled_route_is_left_for_the_next(
    sim: GatewaySimulator, tmp_path: Path, fault: Fault, status: str
) -> None:
    sim.script("gpt-4.1", [], then=fault)
    with running_proxy(tmp_path, sim, group=GROUPS) as proxy:
        raw = _client(proxy).chat.completions.with_raw_response.create(
            model="guarded", messages=MESSAGES
        )
        reply = raw.parse()
        rows = proxy.ledger_rows(2)
    # the 0.5 s limits left gpt-4.1 (its 60 s timeout never came into play)
    assert reply.model == "deepseek-v3.2" and reply.choices[0].message.content
    assert raw.headers["x-holysheep-route"] == "deepseek-v3.2"
    first = sim.log.wait_for(1, model="gpt-4.1", finished=True)[0]
    assert first.stream and first.status in (status, "disconnected")
    assert first.ended is not None and first.ended - first.arrived < 30  # not 60 s
    assert [r.outcome for r in rows] == ["error", "ok"]
    assert rows[0].served_model == "gpt-4.1" and not rows[0].cost
