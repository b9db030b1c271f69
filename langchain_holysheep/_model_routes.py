"""Build the `Router` of a `ChatHolySheep` from its fields (and wire budgets in).

The primary route and every gateway fallback are single-attempt
`HolySheepGateway` models with the chat model's settings (same key, URL,
connection pools and sampling settings; another model id; the OpenAI SDK's
retries off). Budgets that downgraded a run restrict its routes through the
router's `route_filter` (the spend side's in-flight reservations): the chat
model wires spend into routing, neither package imports the other.

Fallbacks may be gateway model ids, any
`BaseChatModel` (a provider's own endpoint, a local vLLM server), `Route`s, or
dicts with per-route settings:

```python
ChatHolySheep(
    model="gpt-4.1",
    timeout=30,
    fallbacks=[
        {"model": "gemini-2.0-flash", "timeout": 20},
        {"model": "deepseek-v3.2", "timeout": 25, "retry": RetryPolicy(max_attempts=2)},
        ChatOpenAI(base_url="http://localhost:8000/v1", model="qwen", api_key="x"),
    ],
)
```

`HOLYSHEEP_ENABLED=false` in the environment skips every gateway route at call
time (the rollback switch): traffic goes to the non-gateway fallbacks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel

from langchain_holysheep._gateway_model import HolySheepGateway, gateway_copy
from langchain_holysheep.catalogue import default_catalogue
from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.resilience import Router
from langchain_holysheep.resilience._breaker import BreakerConfig
from langchain_holysheep.resilience._breakers import BreakerRegistry, registry_for
from langchain_holysheep.resilience._ratelimit import RateLimit, rate_limiters_for
from langchain_holysheep.resilience._retry import RetryPolicy
from langchain_holysheep.resilience._routes import Route
from langchain_holysheep.resilience._state import StateArg, resolve_state
from langchain_holysheep.spend.budgets._inflight import allowed_routes

__all__ = [
    "ENABLED_ENV",
    "ROUTE_SETTINGS",
    "build_router",
    "check_settings",
    "fallback_route",
    "gateway_enabled",
]

ENABLED_ENV = "HOLYSHEEP_ENABLED"
DEFAULT_FIRST_TOKEN_TIMEOUT = 30.0
"""Seconds to the first content: a silent upstream is left within this."""
DEFAULT_STALL_TIMEOUT = 30.0
"""Seconds without progress of the answer: a stalled stream is left within this."""
REASONING_FIRST_TOKEN_TIMEOUT = 120.0
"""The first-token limit of the catalogue's reasoning models (they think first)."""
ROUTE_SETTINGS = frozenset(
    {
        "timeout",
        "first_token_timeout",
        "stall_timeout",
        "retry",
        "rate_limit",
        "is_gateway",
        "name",
        "context_window",
        "capabilities",
        "breaker_key",
    }
)
_FALSE = frozenset({"0", "false", "no", "off"})


def gateway_enabled() -> bool:
    """`False` when `HOLYSHEEP_ENABLED` is set to false/0/no/off."""
    return os.environ.get(ENABLED_ENV, "true").strip().lower() not in _FALSE


def _is_holysheep(model: Any) -> bool:
    return isinstance(model, HolySheepGateway)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _gateway_route(model: Any, name: str, settings: Mapping[str, Any]) -> Route:
    cat = default_catalogue()
    resolved = cat.check(name) if model.validate_model else cat.resolve(name) or name
    return _route(
        gateway_copy(model, resolved),
        {"is_gateway": True, **reasoning_defaults(model, resolved), **settings},
        getattr(model, "state", None),
    )


def reasoning_defaults(owner: Any, name: str) -> dict[str, Any]:
    """A reasoning model's own first-token limit, unless the owner set one.

    Reasoning models can think for minutes before the first visible content;
    the default limit of other models would cut them.
    """
    info = default_catalogue().get(name)
    if info is None or not info.reasoning:
        return {}
    if "first_token_timeout" in owner.model_fields_set:
        return {}
    return {"first_token_timeout": REASONING_FIRST_TOKEN_TIMEOUT}


def _route(
    model: BaseChatModel, settings: Mapping[str, Any], state: StateArg = None
) -> Route:
    kw = dict(settings)
    limit = kw.pop("rate_limit", None)
    if isinstance(kw.get("retry"), Mapping):
        kw["retry"] = RetryPolicy(**kw["retry"])
    route = Route.of(model, **kw)
    if limit is not None:
        if not isinstance(limit, RateLimit):
            limit = RateLimit(**limit)
        rate_limiters_for(state).configure(route.key, limit)
    return route


def fallback_route(owner: Any, spec: Any, defaults: Mapping[str, Any]) -> Route:
    """One fallback (id, model, `Route` or settings dict) as a `Route`."""
    if isinstance(spec, Route):
        return spec
    settings: dict[str, Any] = dict(defaults)
    if isinstance(spec, Mapping):
        spec = dict(spec)
        target = spec.pop("model", None)
        unknown = set(spec) - ROUTE_SETTINGS
        if unknown or target is None:
            raise ConfigurationError(
                f"Invalid fallback {spec!r}: give 'model' (a gateway id or a chat "
                f"model) and settings among {sorted(ROUTE_SETTINGS)}"
                + (f"; unknown: {sorted(unknown)}" if unknown else "")
            )
        settings.update(spec)
        spec = target
    if isinstance(spec, str):
        return _gateway_route(owner, spec, settings)
    if _is_holysheep(spec):
        settings.setdefault("is_gateway", True)
        return _route(gateway_copy(spec), settings, getattr(owner, "state", None))
    if isinstance(spec, BaseChatModel):
        settings.setdefault("is_gateway", False)
        return _route(spec, settings, getattr(owner, "state", None))
    raise ConfigurationError(
        f"Invalid fallback {spec!r}: expected a gateway model id (e.g. "
        "'gemini-2.5-flash'), a chat model, a Route, or a dict of settings."
    )


def _check_spec(model: Any, spec: Any) -> None:
    if isinstance(spec, Route) or _is_holysheep(spec):
        return
    if isinstance(spec, Mapping):
        unknown = set(spec) - ROUTE_SETTINGS - {"model"}
        if unknown or "model" not in spec:
            raise ConfigurationError(
                f"Invalid fallback {dict(spec)!r}: give 'model' (a gateway id or a "
                f"chat model) and settings among {sorted(ROUTE_SETTINGS)}"
                + (f"; unknown: {sorted(unknown)}" if unknown else "")
            )
        _check_spec(model, spec["model"])
        return
    if isinstance(spec, str):
        if model.validate_model:
            default_catalogue().check(spec)
        return
    if not isinstance(spec, BaseChatModel):
        raise ConfigurationError(
            f"Invalid fallback {spec!r}: expected a gateway model id (e.g. "
            "'gemini-2.5-flash'), a chat model, a Route, or a dict of settings."
        )


def check_settings(model: Any) -> None:
    """Validate a `ChatHolySheep`'s resilience fields at construction.

    Raises:
        ConfigurationError: naming the setting at fault.
        UnknownModelError: a fallback id that looks like a typo.
    """
    for spec in model.fallbacks:
        _check_spec(model, spec)
    if model.breaker is not None and not isinstance(
        model.breaker, (BreakerConfig, BreakerRegistry)
    ):
        raise ConfigurationError(
            f"breaker= expects a BreakerConfig or a BreakerRegistry, got "
            f"{model.breaker!r}"
        )
    resolve_state(model.state)  # a bad store or URL fails at construction
    for name in ("deadline", "first_token_timeout", "stall_timeout"):
        value = getattr(model, name)
        if value is not None and not value > 0:
            raise ConfigurationError(f"{name} must be > 0 seconds, got {value!r}")


def _retry_policy(model: Any) -> RetryPolicy:
    if model.retry is not None:
        return model.retry  # type: ignore[no-any-return]
    if isinstance(model.max_retries, int):
        return RetryPolicy(max_attempts=model.max_retries + 1)
    return RetryPolicy()


def _breakers(model: Any, routes: list[Route]) -> BreakerRegistry:
    spec = model.breaker
    if isinstance(spec, BreakerRegistry):
        return spec
    registry = registry_for(model.state)
    if isinstance(spec, BreakerConfig):
        for route in routes:
            if route.key not in registry or registry.get(route.key).config != spec:
                registry.configure(route.key, spec)
    elif spec is not None:
        raise ConfigurationError(
            f"breaker= expects a BreakerConfig or a BreakerRegistry, got {spec!r}"
        )
    return registry


def build_router(model: Any) -> Router:
    """The router of a `ChatHolySheep` (built once per instance)."""
    timeout = _number(model.request_timeout)
    primary = {"timeout": timeout} if timeout is not None else {}
    if model.rate_limit is not None:
        primary["rate_limit"] = model.rate_limit
    first = {"is_gateway": True, **reasoning_defaults(model, model.model_name)}
    routes = [_route(gateway_copy(model), {**first, **primary}, model.state)]
    routes += [fallback_route(model, spec, {}) for spec in model.fallbacks]

    def extra_route(name: str) -> Route:
        return _gateway_route(model, name, primary)

    return Router(
        routes,
        error_policy=model.error_policy,
        retry=_retry_policy(model),
        breakers=_breakers(model, routes),
        rate_limits=rate_limiters_for(model.state),
        deadline=model.deadline,
        first_token_timeout=model.first_token_timeout,
        stall_timeout=model.stall_timeout,
        gateway_enabled=gateway_enabled,
        route_factory=extra_route,
        route_filter=allowed_routes,
        timeout=timeout,
    )
