"""Acceptance test of the simulator's wire format: LangChain's own standard
integration suite, run with plain `langchain_openai.ChatOpenAI` against it.

Skipped by configuration (the suite skips them itself), one line each:
- image / image-URL / PDF / audio inputs and image/PDF tool messages: they
  download media and ask for a judgement of its content, which a deterministic
  local simulator cannot honestly give;
- Anthropic-format inputs: not part of the OpenAI wire format;
- `test_stream_time`: needs VCR cassettes (a benchmark, not a wire check).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
)
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_holysheep.simulator import GatewaySimulator
from tests.integration_tests._simulator_capabilities import SimulatorCapabilities

# langchain-openai caches one async HTTP client per process; its pooled keep-alive
# connections belong to the event loop that opened them, so the async tests of
# this module share one loop (as they would in an application).
# (The mark also lands on the suite's sync tests, where it is harmless.)
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.filterwarnings("ignore:The test <Function:pytest.PytestWarning"),
]

_SIM: dict[str, GatewaySimulator] = {}


@pytest.fixture(scope="session", autouse=True)
def _standard_sim() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(api_key="hs-standard-suite-key") as sim:
        _SIM["sim"] = sim
        yield sim
        _SIM.clear()


def _sim() -> GatewaySimulator:
    return _SIM["sim"]


def _collect(model: ChatOpenAI, prompt: Any) -> AIMessage:
    full: AIMessageChunk | None = None
    for chunk in model.stream(prompt):
        full = chunk if full is None else full + chunk
    assert isinstance(full, AIMessageChunk)
    return full


def _assert_counted(msg: AIMessage, details: str, key: str) -> None:
    """The reply's usage counts some `key` tokens in its `details`."""
    assert msg.usage_metadata is not None
    usage: dict[str, Any] = dict(msg.usage_metadata)
    value = usage.get(details, {}).get(key)
    assert isinstance(value, int)
    assert value > 0


class TestSimulatorWithChatOpenAI(SimulatorCapabilities, ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        sim = _sim()
        return {
            "base_url": sim.base_url,
            "api_key": sim.api_key,
            "model": "gpt-4.1",
            "stream_usage": True,
            "max_retries": 0,
        }

    @property
    def model_override_value(self) -> str:
        return "gpt-4o-mini"

    def _model(self, model: str) -> ChatOpenAI:
        return ChatOpenAI(**{**self.chat_model_params, "model": model})

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        model = self._model("deepseek-reasoner")
        prompt = "Explain step by step why the sky is blue."
        msg = _collect(model, prompt) if stream else model.invoke(prompt)
        _assert_counted(msg, "output_token_details", "reasoning")
        return msg

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> AIMessage:
        model = self._model("gpt-4.1")
        history = [
            SystemMessage("You are a careful assistant for a travel agency. " * 40),
            HumanMessage("Which documents does a visa application need?"),
        ]
        model.invoke([*history, HumanMessage("Warm the cache.")])
        question = [*history, HumanMessage("And how long does it take?")]
        msg = _collect(model, question) if stream else model.invoke(question)
        _assert_counted(msg, "input_token_details", "cache_read")
        return msg
