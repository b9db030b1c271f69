"""`hidden_prompt_tokens`: a gateway that bills a system prompt of its own."""

from __future__ import annotations

import httpx
import pytest

from langchain_holysheep.simulator import GatewaySimulator


def _usage(sim: GatewaySimulator) -> dict:  # type: ignore[type-arg]
    reply = httpx.post(
        f"{sim.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {sim.api_key}"},
        json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]},
    )
    reply.raise_for_status()
    return reply.json()["usage"]  # type: ignore[no-any-return]


def test_hidden_prompt_tokens_are_billed_and_logged() -> None:
    with GatewaySimulator() as plain, GatewaySimulator(hidden_prompt_tokens=40) as sim:
        base = _usage(plain)["prompt_tokens"]
        usage = _usage(sim)
        assert usage["prompt_tokens"] == base + 40
        assert usage["total_tokens"] == base + 40 + usage["completion_tokens"]
        assert sim.log.billed().prompt_tokens == base + 40


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_hidden_prompt_tokens_must_be_a_whole_number(bad: object) -> None:
    with pytest.raises(ValueError, match="hidden_prompt_tokens must be a whole"):
        GatewaySimulator(hidden_prompt_tokens=bad)  # type: ignore[arg-type]
