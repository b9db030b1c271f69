"""The router of an agent's model call: the primary, then the fallbacks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel

from langchain_holysheep._model_routes import fallback_route
from langchain_holysheep.resilience import Router
from langchain_holysheep.resilience._routes import Route

__all__ = ["RouterCache"]


class RouterCache:
    """One router per primary model: `[primary, *fallbacks]` as routes.

    A `ChatHolySheep` (or `HolySheepGateway`) becomes a single-attempt gateway
    model with its settings and other models lose their SDK retries, so each
    attempt is one request.
    """

    def __init__(self) -> None:
        self._cache: dict[int, tuple[BaseChatModel, Router]] = {}

    def get(
        self,
        primary: BaseChatModel,
        fallbacks: Sequence[BaseChatModel | str],
        build: Callable[[list[Route]], Router],
    ) -> Router:
        """The router of a call whose primary model is `primary`."""
        cached = self._cache.get(id(primary))
        if cached is not None and cached[0] is primary:
            return cached[1]
        owner = primary if _is_holysheep(primary) else None
        routes = [fallback_route(owner, primary, {})]
        for spec in fallbacks:
            routes.append(fallback_route(owner, _model_of(spec, owner), {}))
        router = build(routes)
        self._cache[id(primary)] = (primary, router)
        return router


def _is_holysheep(model: Any) -> bool:
    from langchain_holysheep._gateway_model import HolySheepGateway

    return isinstance(model, HolySheepGateway)


def _model_of(spec: BaseChatModel | str, owner: Any) -> Any:
    """A fallback spec as `fallback_route` takes it (gateway ids stay strings)."""
    if not isinstance(spec, str):
        return spec
    if ":" in spec:
        from langchain.chat_models import init_chat_model

        return init_chat_model(spec)
    if owner is not None:
        return spec  # the primary's gateway settings with another model id
    from langchain_holysheep.chat_models import ChatHolySheep

    return ChatHolySheep(model=spec)
