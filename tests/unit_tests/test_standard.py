"""LangChain's standard unit tests for ChatHolySheep."""

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

from langchain_holysheep import ChatHolySheep


class TestChatHolySheepStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatHolySheep]:
        return ChatHolySheep

    @property
    def chat_model_params(self) -> dict:
        return {"model": "gpt-4.1", "api_key": "hs-test-key"}

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        return (
            {
                "HOLYSHEEP_API_KEY": "hs-env-key",
                "HOLYSHEEP_BASE_URL": "https://gateway.example.test/v1",
            },
            {"model": "deepseek-v3.2"},
            {
                "holysheep_api_key": "hs-env-key",
                "holysheep_api_base": "https://gateway.example.test/v1",
            },
        )

    @pytest.mark.xfail(
        reason="langchain-core's load() only revives classes on its own allowlist; "
        "a third-party class cannot round-trip there (dumps works, key stays secret)",
        strict=True,
    )
    def test_serdes(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)
