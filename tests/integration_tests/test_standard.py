"""LangChain's standard integration tests for ChatHolySheep, against the simulator."""

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
)
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.simulator import GatewaySimulator
from tests.integration_tests._simulator_capabilities import SimulatorCapabilities


@pytest.fixture(scope="module", autouse=True)
def _simulator_env() -> Iterator[None]:
    with GatewaySimulator() as sim, pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOLYSHEEP_BASE_URL", sim.base_url)
        mp.setenv("HOLYSHEEP_API_KEY", sim.api_key)
        yield


class TestChatHolySheepIntegration(SimulatorCapabilities, ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatHolySheep]:
        return ChatHolySheep

    @property
    def chat_model_params(self) -> dict:
        return {"model": "gpt-4.1", "temperature": 0}

    @property
    def model_override_value(self) -> str:
        return "deepseek-v3.2"

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        model = ChatHolySheep(model="deepseek-reasoner")
        prompt = "Explain step by step why the sky is blue."
        msg = _collect(model, prompt) if stream else model.invoke(prompt)
        assert msg.usage_metadata is not None
        assert msg.usage_metadata["output_token_details"]["reasoning"] > 0
        return msg

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> AIMessage:
        model = ChatHolySheep(model="gpt-4.1")
        history = [
            SystemMessage("You are a helpful assistant. " * 50),
            HumanMessage("First question: what is LangChain?"),
            AIMessage("A framework for building LLM applications."),
        ]
        model.invoke([*history, HumanMessage("Warm the prompt cache.")])
        question = [*history, HumanMessage("Second question: and HolySheep?")]
        msg = _collect(model, question) if stream else model.invoke(question)
        assert msg.usage_metadata is not None
        assert msg.usage_metadata["input_token_details"]["cache_read"] > 0
        return msg


def _collect(model: ChatHolySheep, prompt: Any) -> AIMessage:
    full: AIMessageChunk | None = None
    for chunk in model.stream(prompt):
        full = chunk if full is None else full + chunk
    assert isinstance(full, AIMessageChunk)
    return full
