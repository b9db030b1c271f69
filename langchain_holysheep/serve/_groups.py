"""Model groups: one `Router` of wire routes per public model name.

Each route of a group becomes a `Route` whose model is a `WireEndpoint`, with
its limits, retry policy, breaker and rate limit in the same registries (and
the same state store) as `ChatHolySheep`'s routes. Upstream keys are read from
the server's environment here, once, at start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from pydantic import SecretStr

from langchain_holysheep._gateway import DEFAULT_BASE_URL
from langchain_holysheep._model_routes import (
    DEFAULT_FIRST_TOKEN_TIMEOUT,
    DEFAULT_STALL_TIMEOUT,
    REASONING_FIRST_TOKEN_TIMEOUT,
    gateway_enabled,
)
from langchain_holysheep.catalogue import Capabilities, default_catalogue
from langchain_holysheep.resilience import Router
from langchain_holysheep.resilience._breakers import registry_for
from langchain_holysheep.resilience._ratelimit import rate_limiters_for
from langchain_holysheep.resilience._routes import Route
from langchain_holysheep.resilience._state import StateArg
from langchain_holysheep.serve._relay import WireChunks, WireEndpoint
from langchain_holysheep.serve.config import (
    GroupSpec,
    RouteSpec,
    ServeConfig,
    ServeConfigError,
)

__all__ = ["Group", "build_groups"]

BASE_URL_ENV = "HOLYSHEEP_BASE_URL"
_CHUNKS = WireChunks()


@dataclass(frozen=True)
class Group:
    """A public model name and the router over its routes.

    Attributes:
        name: the public name clients send as `model`.
        router: the router of its routes.
        max_tokens: per route, its own output limit (`None`: the request's).
    """

    name: str
    router: Router
    max_tokens: tuple[int | None, ...]


def _key(env: str, source: str, where: str) -> SecretStr:
    value = os.environ.get(env, "").strip()
    if not value:
        raise ServeConfigError(
            f"{source}: {where}: the environment variable {env} is not set; "
            "the upstream key is read only from the server's environment"
        )
    return SecretStr(value)


def _capabilities(spec: RouteSpec) -> tuple[Capabilities | None, int | None]:
    info = default_catalogue().get(spec.model) if spec.is_gateway else None
    if info is None:
        info = default_catalogue().get(spec.model)
    caps = info.capabilities if info is not None else None
    window = spec.context_window or (info.context_window if info else None)
    if spec.assistant_prefill is not None:
        caps = replace(caps or Capabilities(), assistant_prefill=spec.assistant_prefill)
    return caps, window


def _limits(spec: RouteSpec, name: str) -> tuple[float | None, float | None]:
    """The route's first-token and stall limits: its own, or the defaults."""
    first = spec.first_token_timeout
    if first is None:
        info = default_catalogue().get(name)
        first = DEFAULT_FIRST_TOKEN_TIMEOUT
        if info is not None and info.reasoning:
            first = REASONING_FIRST_TOKEN_TIMEOUT
    stall = DEFAULT_STALL_TIMEOUT if spec.stall_timeout is None else spec.stall_timeout
    return first or None, stall or None  # false: off


def _route(spec: RouteSpec, config: ServeConfig, where: str, state: StateArg) -> Route:
    if spec.is_gateway:
        base = (
            config.gateway.base_url
            or os.environ.get(BASE_URL_ENV, "").strip()
            or DEFAULT_BASE_URL
        )
        key: SecretStr | None = _key(config.gateway.api_key_env, config.source, where)
        name = default_catalogue().resolve(spec.model) or spec.model
    else:
        assert spec.base_url is not None
        base, name = spec.base_url, spec.model
        key = _key(spec.api_key_env, config.source, where) if spec.api_key_env else None
    caps, window = _capabilities(spec)
    first_token, stall = _limits(spec, name)
    route = Route(
        model=WireEndpoint(name, base, key),  # type: ignore[arg-type]
        name=name,
        base_url=base.rstrip("/"),
        is_gateway=spec.is_gateway,
        first_token_timeout=first_token,
        stall_timeout=stall,
        context_window=window,
        capabilities=caps,
        timeout=spec.timeout,
        retry=spec.retry,
    )
    if spec.rate_limit is not None:
        rate_limiters_for(state).configure(route.key, spec.rate_limit)
    if spec.breaker is not None:
        registry_for(state).configure(route.key, spec.breaker)
    return route


def _group(name: str, spec: GroupSpec, config: ServeConfig, state: StateArg) -> Group:
    routes = [
        _route(r, config, f"groups.{name}.routes.{i}", state)
        for i, r in enumerate(spec.routes)
    ]
    router = Router(
        routes,
        retry=spec.retry,
        breakers=registry_for(state),
        rate_limits=rate_limiters_for(state),
        deadline=spec.deadline or config.server.deadline,
        gateway_enabled=gateway_enabled,
        chunks=_CHUNKS,
    )
    own = tuple(None if r.is_gateway else r.max_tokens for r in spec.routes)
    return Group(name, router, own)


def build_groups(config: ServeConfig, state: StateArg = None) -> Mapping[str, Group]:
    """Every group of `config` (reads the upstream keys from the environment).

    Raises:
        ServeConfigError: an upstream key's environment variable is not set.
    """
    return {
        name: _group(name, spec, config, state) for name, spec in config.groups.items()
    }
