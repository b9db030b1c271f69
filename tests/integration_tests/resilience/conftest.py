"""Fixtures: ChatOpenAI routes against the simulator, isolated registries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_openai import ChatOpenAI

from langchain_holysheep.resilience import (
    BreakerRegistry,
    RateLimiterRegistry,
    RetryPolicy,
    Router,
)
from langchain_holysheep.resilience._routes import Route
from langchain_holysheep.simulator import GatewaySimulator
from tests.integration_tests.resilience.routed import RoutedChat

FAST_RETRY = RetryPolicy(max_attempts=3, initial=0.01, max_backoff=0.05, jitter=False)


@pytest.fixture
def openai_model(sim: GatewaySimulator) -> Callable[..., ChatOpenAI]:
    def make(model: str, **kw: Any) -> ChatOpenAI:
        params: dict[str, Any] = {
            "base_url": sim.base_url,
            "api_key": sim.api_key,
            "model": model,
            "max_retries": 0,
            "stream_usage": True,
        }
        params.update(kw)
        return ChatOpenAI(**params)

    return make


@pytest.fixture
def breakers() -> BreakerRegistry:
    return BreakerRegistry()


@pytest.fixture
def make_chat(
    openai_model: Callable[..., ChatOpenAI], breakers: BreakerRegistry
) -> Callable[..., RoutedChat]:
    """`make_chat("gpt-4.1", "gemini-2.5-flash", timeout=..., ...)`."""

    def make(
        *models: str | Route, route_settings: Any = None, **router_kw: Any
    ) -> RoutedChat:
        settings = route_settings or {}
        routes = [
            m
            if isinstance(m, Route)
            else Route.of(openai_model(m), is_gateway=True, **settings.get(m, {}))
            for m in models
        ]
        router_kw.setdefault("retry", FAST_RETRY)
        router_kw.setdefault("breakers", breakers)
        router_kw.setdefault("rate_limits", RateLimiterRegistry())
        return RoutedChat(router=Router(routes, **router_kw))

    return make


class Recorder(BaseCallbackHandler):
    """Records retries and custom events."""

    def __init__(self) -> None:
        self.retries: list[Any] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.run_ids: set[UUID] = set()
        self.starts: list[UUID] = []

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.starts.append(run_id)

    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.retries.append(retry_state)
        self.run_ids.add(run_id)

    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.events.append((name, data))
        self.run_ids.add(run_id)

    def names(self) -> list[str]:
        return [n for n, _ in self.events]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
