"""Offline helpers: a tiny chat model that reports usage like ChatOpenAI does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langchain_holysheep.spend.pricing import _book as pricing


class FakeChat(BaseChatModel):
    """Answers 'hello world' and reports fixed usage, like ChatOpenAI."""

    model: str = "gpt-4.1"
    served: str | None = None  # what response_metadata["model_name"] says
    max_tokens: int | None = 100
    input_tokens: int = 1000
    output_tokens: int = 500
    cached: int = 0
    reasoning: int = 0
    holysheep: dict[str, Any] | None = None
    fail: bool = False
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": self.max_tokens}

    def _usage(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "input_token_details": {"cache_read": self.cached},
            "output_token_details": {"reasoning": self.reasoning},
        }

    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"model_name": self.served or self.model}
        if self.holysheep is not None:
            meta["holysheep"] = self.holysheep
        return meta

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls += 1
        if self.fail:
            raise RuntimeError("upstream broke")
        msg = AIMessage(
            content="hello world",
            usage_metadata=self._usage(),  # type: ignore[arg-type]
            response_metadata=self._meta(),
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, None, **kwargs)

    def _chunks(self) -> list[ChatGenerationChunk]:
        return [
            ChatGenerationChunk(message=AIMessageChunk(content="hello")),
            ChatGenerationChunk(message=AIMessageChunk(content=" world")),
            ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    usage_metadata=self._usage(),  # type: ignore[arg-type]
                    response_metadata=self._meta(),
                )
            ),
        ]

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self.calls += 1
        for i, chunk in enumerate(self._chunks()):
            if self.fail and i == 2:
                raise RuntimeError("stream cut")
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.calls += 1
        for chunk in self._chunks():
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


@pytest.fixture
def fake() -> FakeChat:
    return FakeChat()


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    pricing._warned.clear()
    yield
    pricing._warned.clear()
