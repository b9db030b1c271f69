"""The fault matrix through the proxy, with the `openai` SDK as the client.

The same scripted simulator faults as `ChatHolySheep`'s matrix
(`tests/integration_tests/resilience/test_fault_matrix.py`), on a group of
`gpt-4.1` then `deepseek-v3.2` with the same limits and retry policy: the same
number of requests reach each model (the simulator's log is the ground truth),
the same model serves, the whole answer arrives (a stream continued after a
break is the delivered prefix plus the fallback's answer), and a failure is an
OpenAI-shaped error of the right status, never a truncated answer that looks
complete. The response headers name the route that served and its attempts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from langchain_holysheep.simulator import GatewaySimulator
from langchain_holysheep.simulator.tokens import split_words
from tests.integration_tests.resilience.test_fault_matrix import (
    AFTER_CHUNKS,
    ALL_FAILED,
    AUTH,
    CONTINUED,
    DS,
    GPT,
    INVALID,
    MATRIX,
    OK_GPT,
    PROMPTS,
    REASON,
    RELAXED,
    SCRIPTS,
    SILENT_LIMITS,
    STALL_LIMITS,
    Limits,
)
from tests.integration_tests.serve._proxy import KEY, running_proxy


def _route(model: str, limits: Limits) -> str:
    return (
        f'{{ model = "{model}", timeout = {limits.timeout}, first_token_timeout = '
        f"{limits.first_token}, stall_timeout = {limits.stall}, breaker = "
        "{ failure_threshold = 1000, minimum_requests = 1000 } }"
    )


def _group(name: str, limits: Limits) -> str:
    return (
        f"[groups.{name}]\ndeadline = 5\n"
        "retry = { max_attempts = 3, initial = 0.01, max_backoff = 0.05 }\n"
        f"routes = [{_route(GPT, limits)}, {_route(DS, RELAXED)}]\n"
    )


GROUPS = {
    id(RELAXED): "m-relaxed",
    id(SILENT_LIMITS): "m-silent",
    id(STALL_LIMITS): "m-stall",
}
GROUP_TEXT = "".join(
    _group(name, limits)
    for name, limits in (
        ("m-relaxed", RELAXED),
        ("m-silent", SILENT_LIMITS),
        ("m-stall", STALL_LIMITS),
    )
)
# exceptions of the library's matrix -> what the proxy answers instead
STATUS = {
    ALL_FAILED: (400, "context_length_exceeded"),
    INVALID: (400, None),
    AUTH: (502, "upstream_auth_failed"),
}


@pytest.fixture(scope="module")
def reference() -> Iterator[dict[tuple[str, str], str]]:
    """What unfaulted calls answer, per (model, prompt)."""
    with GatewaySimulator() as ref:
        client = openai.OpenAI(base_url=ref.base_url, api_key=ref.api_key)
        yield {
            (model, prompt): client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}]
            )
            .choices[0]
            .message.content
            or ""
            for model in (GPT, DS)
            for prompt in PROMPTS
        }


def _invoke(client: openai.OpenAI, group: str) -> tuple[Any, str, dict[str, str]]:
    raw = client.chat.completions.with_raw_response.create(
        model=group, messages=[{"role": "user", "content": PROMPTS[0]}]
    )
    reply = raw.parse()
    return reply.model, reply.choices[0].message.content or "", dict(raw.headers)


def _stream(client: openai.OpenAI, group: str) -> tuple[Any, str, dict[str, str]]:
    with client.chat.completions.with_streaming_response.create(
        model=group,
        messages=[{"role": "user", "content": PROMPTS[0]}],
        stream=True,
    ) as raw:
        headers = dict(raw.headers)
        text, models = "", []
        for chunk in raw.parse():
            models.append(chunk.model)
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    return models[-1], text, headers


@pytest.mark.parametrize("kind", ["invoke", "stream"])
@pytest.mark.parametrize("fault", list(MATRIX))
def test_fault_through_the_proxy(
    sim: GatewaySimulator,
    tmp_path: Path,
    reference: dict[tuple[str, str], str],
    fault: str,
    kind: str,
) -> None:
    script = SCRIPTS[fault]
    want_gpt, want_ds, outcome = MATRIX[fault][0 if kind == "invoke" else 1]
    sim.script(GPT, list(script.faults), then=script.then)
    group = GROUPS[id(script.limits)]
    with running_proxy(tmp_path, sim, group=GROUP_TEXT) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key=KEY, max_retries=0)
        call = _invoke if kind == "invoke" else _stream
        try:
            served, text, headers = call(client, group)
            error = None
        except openai.APIStatusError as exc:
            error = exc
        gpt = sim.log.wait_for(want_gpt, model=GPT, finished=True)
        ds = sim.log.wait_for(want_ds, model=DS, finished=True)
        assert (len(gpt), len(ds)) == (want_gpt, want_ds), (error, sim.log.records())
        assert sim.log.count() == want_gpt + want_ds
        if isinstance(outcome, type):
            assert error is not None, "an error was expected"
            status, code = STATUS[outcome]
            assert error.status_code == status
            body = error.body if isinstance(error.body, dict) else {}
            if code is not None:
                assert body.get("code") == code
            if fault == "content-policy":
                assert REASON in str(error)
            return
        assert error is None, f"unexpected {error!r}"
        want = DS if outcome != OK_GPT else GPT
        answer = reference[want, PROMPTS[0]]
        if outcome == CONTINUED:
            prefix = "".join(split_words(reference[GPT, PROMPTS[0]])[:AFTER_CHUNKS])
            answer = prefix + answer
        assert text == answer  # the whole answer, never a truncated one
        assert served == want
        if outcome != CONTINUED:
            assert headers["x-holysheep-route"] == want
            assert int(headers["x-holysheep-attempts"]) == want_gpt + want_ds
        else:  # headers went out with the first content, on gpt-4.1
            assert headers["x-holysheep-route"] == GPT
        # one ledger row per request that reached the simulator
        rows = proxy.ledger_rows(want_gpt + want_ds)
        assert len(rows) == want_gpt + want_ds
        assert rows[-1].outcome == "ok" and rows[-1].served_model == want
