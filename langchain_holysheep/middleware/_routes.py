"""The routes of an agent's model call: the primary, then the fallbacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel

from langchain_holysheep.resilience.model_router import fallback_route
from langchain_holysheep.resilience.routes import Route

__all__ = ["RouteCache"]


class RouteCache:
    """`[primary, *fallbacks]` as single-attempt routes, built once per primary.

    A `ChatHolySheep` becomes a single-attempt copy (its own router off) and
    other models lose their SDK retries, so each attempt is one request.
    """

    def __init__(self) -> None:
        self._cache: dict[int, tuple[BaseChatModel, list[Route]]] = {}

    def get(
        self,
        primary: BaseChatModel,
        fallbacks: Sequence[BaseChatModel | str],
        timeout: float | None,
    ) -> list[Route]:
        """The routes of a call whose primary model is `primary`."""
        cached = self._cache.get(id(primary))
        if cached is not None and cached[0] is primary:
            return cached[1]
        settings = {"timeout": timeout} if timeout is not None else {}
        owner = primary if _is_holysheep(primary) else None
        routes = [fallback_route(owner, primary, settings)]
        for spec in fallbacks:
            routes.append(fallback_route(owner, _model_of(spec, owner), settings))
        self._cache[id(primary)] = (primary, routes)
        return routes


def _is_holysheep(model: Any) -> bool:
    from langchain_holysheep.chat_models import ChatHolySheep

    return isinstance(model, ChatHolySheep)


def _model_of(spec: BaseChatModel | str, owner: Any) -> Any:
    """A fallback spec as `fallback_route` takes it (gateway ids stay strings)."""
    if not isinstance(spec, str):
        return spec
    if ":" in spec:
        from langchain.chat_models import init_chat_model

        return init_chat_model(spec)
    if owner is not None:
        return spec  # a copy of the primary ChatHolySheep with another model id
    from langchain_holysheep.chat_models import ChatHolySheep

    return ChatHolySheep(model=spec)
