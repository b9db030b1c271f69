"""Argument checks for the agent middleware, run at construction.

Every bad argument fails when the middleware is built, with a
`ConfigurationError` (an `UnknownModelError` for a mistyped model id) that
names the argument, shows what was given and says what to pass instead, rather
than at the first model call, halfway through an agent run.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from langchain_core.language_models import BaseChatModel

from langchain_holysheep.catalogue import default_catalogue
from langchain_holysheep.errors import ConfigurationError, UnknownModelError
from langchain_holysheep.resilience._breaker import BreakerConfig
from langchain_holysheep.resilience._breakers import BreakerRegistry
from langchain_holysheep.resilience._policy import ErrorPolicy
from langchain_holysheep.resilience._ratelimit import RateLimit, RateLimiterRegistry
from langchain_holysheep.resilience._retry import RetryPolicy
from langchain_holysheep.resilience._routes import Route
from langchain_holysheep.spend.budgets._settings import check_usd
from langchain_holysheep.spend.pricing._book import PriceBook

__all__ = [
    "check_resilience_args",
    "check_spend_limit_args",
    "usd_amount",
]


def _given(value: Any) -> str:
    """`'10' (str)`: the value and its type, for error messages."""
    return f"{value!r} ({type(value).__name__})"


# -- shared -----------------------------------------------------------------------
def _choice(value: Any, name: str, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        options = " or ".join(repr(c) for c in choices)
        raise ConfigurationError(f"{name} must be {options}, got {_given(value)}.")


def _strict_bool(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"{name} must be True or False, got {_given(value)}; strings such as "
            "'no' are not read as booleans."
        )


def _seconds(value: Any, name: str, what: str) -> None:
    """`None` or a number of seconds > 0 (`math.inf`: no limit)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"{name} must be a number of seconds such as 10 or 2.5 (or None for "
            f"{what}), got {_given(value)}."
        )
    if math.isnan(value) or value <= 0:
        raise ConfigurationError(
            f"{name} must be more than 0 seconds (or None for {what}), got {value!r}."
        )


def _optional_callable(value: Any, name: str) -> None:
    if value is not None and not callable(value):
        raise ConfigurationError(
            f"{name} must be a function or None, got {_given(value)}."
        )


def _instance(value: Any, name: str, cls: type, example: str, hint: str = "") -> None:
    """`None` or an instance of `cls`."""
    if value is None or isinstance(value, cls):
        return
    raise ConfigurationError(
        f"{name} must be a {cls.__name__} (e.g. {example}) or None, got "
        f"{_given(value)}." + (f" {hint}" if hint else "")
    )


# -- money ------------------------------------------------------------------------
def usd_amount(value: Any, name: str, none_means: str) -> Decimal | None:
    """`value` as a `Decimal` amount of USD > 0, or `None`.

    Accepts a `Decimal`, an `int`, a finite `float` (read through its shortest
    str, so `0.1` is `Decimal('0.1')`) or a numeric string (`"0.50"`).

    Raises:
        ConfigurationError: not an amount, not finite, or not above 0.
    """
    if value is None:
        return None
    example = "'0.50' or Decimal('0.50')"
    return check_usd(value, name, example=example, none_means=none_means)


def _pricebook(value: Any) -> None:
    if value is None or isinstance(value, PriceBook):
        return
    if isinstance(value, Mapping):
        hint = "Wrap the prices: pricebook=PriceBook({...})."
    elif isinstance(value, (str, os.PathLike)):
        hint = "To read a pricing file, pass pricebook=PriceBook.from_file(path)."
    else:
        hint = ""
    raise ConfigurationError(
        "pricebook must be a PriceBook (e.g. PriceBook({'my-model': {'input': "
        "'1.00', 'output': '3.00'}}), prices in USD per 1M tokens) or None for the "
        f"catalogue prices, got {_given(value)}." + (f" {hint}" if hint else "")
    )


def check_spend_limit_args(
    *,
    run_limit: Any,
    thread_limit: Any,
    exit_behavior: Any,
    pricebook: Any,
    allow_unpriced: Any,
) -> tuple[Decimal | None, Decimal | None]:
    """Check `SpendLimitMiddleware`'s arguments; return the limits as `Decimal`.

    Raises:
        ConfigurationError: naming the argument at fault and what to pass.
    """
    run = usd_amount(run_limit, "run_limit", "no run limit")
    thread = usd_amount(thread_limit, "thread_limit", "no thread limit")
    if run is None and thread is None:
        raise ConfigurationError(
            "SpendLimitMiddleware needs run_limit and/or thread_limit (USD), e.g. "
            "SpendLimitMiddleware(run_limit='0.50')."
        )
    _choice(exit_behavior, "exit_behavior", ("end", "error"))
    _pricebook(pricebook)
    _strict_bool(allow_unpriced, "allow_unpriced")
    return run, thread


# -- resilience -------------------------------------------------------------------
_FALLBACK_KINDS = (
    "a chat model instance (e.g. ChatOpenAI(...) or ChatHolySheep(...)), a "
    "HolySheep model id such as 'gemini-2.5-flash', or a 'provider:model' string "
    "for init_chat_model such as 'openai:gpt-4.1'"
)


def _init_chat_model_providers() -> Mapping[str, tuple[Any, ...]] | None:
    """The providers `init_chat_model` reads from a `"provider:model"` string."""
    try:
        from langchain.chat_models import base
    except ImportError:  # pragma: no cover - langchain is a dependency of agents
        return None
    providers = getattr(base, "_BUILTIN_PROVIDERS", None)
    return providers if isinstance(providers, Mapping) else None


def _provider_string(spec: str, where: str) -> None:
    provider, _, model = spec.partition(":")
    provider = provider.strip().replace("-", "_").lower()
    if not provider or not model.strip():
        raise ConfigurationError(
            f"{where} {spec!r} is not a 'provider:model' string: give both parts, "
            "e.g. 'openai:gpt-4.1', or pass a chat model instance."
        )
    providers = _init_chat_model_providers()
    if providers is None:
        return
    entry = providers.get(provider)
    if entry is None:
        raise ConfigurationError(
            f"{where} {spec!r}: init_chat_model does not know the provider "
            f"{provider!r}. Use one of {', '.join(sorted(providers))}, or pass a "
            "chat model instance."
        )
    package = str(entry[0]).split(".", 1)[0]
    if importlib.util.find_spec(package) is None:
        dist = package.replace("_", "-")
        raise ConfigurationError(
            f"{where} {spec!r} needs the {dist} package: pip install {dist} "
            "(or pass a chat model instance)."
        )


def _gateway_id(spec: str, where: str) -> None:
    if not spec.strip():
        raise ConfigurationError(f"{where} is an empty string: {_FALLBACK_KINDS}.")
    try:
        default_catalogue().check(spec)
    except UnknownModelError as exc:
        raise UnknownModelError(
            spec,
            exc.suggestions,
            detail=(
                f"It is {where}. If it is a new gateway model, pass "
                f"ChatHolySheep(model={spec!r}, validate_model=False) instead of "
                "the string."
            ),
            hint_override=False,
        ) from None


def _fallback(spec: Any, position: int) -> None:
    where = f"ResilienceMiddleware fallback #{position}"
    if isinstance(spec, (BaseChatModel, Route)):
        return
    if isinstance(spec, str):
        if ":" in spec:
            _provider_string(spec, where)
        else:
            _gateway_id(spec, where)
        return
    hint = ""
    if isinstance(spec, Mapping):
        hint = (
            " For per-model settings, configure the model itself, e.g. "
            "ChatHolySheep(model='deepseek-v3.2', timeout=25)."
        )
    elif isinstance(spec, (list, tuple)):
        hint = (
            " Fallbacks are positional arguments: ResilienceMiddleware('a', 'b'), "
            "or ResilienceMiddleware(*models) for a list."
        )
    raise ConfigurationError(
        f"{where} is {_given(spec)}: pass {_FALLBACK_KINDS}.{hint}"
    )


def _retries(max_retries: Any) -> None:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        raise ConfigurationError(
            "max_retries must be a whole number of retries per model (0 for none), "
            f"got {_given(max_retries)}."
        )
    if max_retries < 0:
        raise ConfigurationError(f"max_retries must be 0 or more, got {max_retries!r}.")


def _policies(retry: Any, error_policy: Any, breakers: Any, rate_limits: Any) -> None:
    _instance(
        retry,
        "retry",
        RetryPolicy,
        "RetryPolicy(max_attempts=3, initial=0.5)",
        "To set only the number of retries, use max_retries=N.",
    )
    _instance(
        error_policy,
        "error_policy",
        ErrorPolicy,
        "ErrorPolicy(overrides={429: 'fallback'})",
    )
    _instance(
        breakers,
        "breakers",
        BreakerRegistry,
        "BreakerRegistry(BreakerConfig(cooldown=60))",
        "A BreakerConfig goes inside one: breakers=BreakerRegistry(config)."
        if isinstance(breakers, BreakerConfig)
        else "",
    )
    _instance(
        rate_limits,
        "rate_limits",
        RateLimiterRegistry,
        "RateLimiterRegistry()",
        "Configure a RateLimit in one: registry.configure((base_url, model), limit)."
        if isinstance(rate_limits, RateLimit)
        else "",
    )


def check_resilience_args(
    fallbacks: Sequence[Any],
    *,
    max_retries: Any,
    retry: Any,
    error_policy: Any,
    deadline: Any,
    timeout: Any,
    breakers: Any,
    rate_limits: Any,
    on_failure: Any,
    streaming: Any,
    sleep: Any = None,
    asleep: Any = None,
) -> None:
    """Check `ResilienceMiddleware`'s arguments.

    Fallback model ids are checked against the catalogue's typo detection
    (`"gtp-4.1"`, `"gpt-4.1-turbo"`); ids that resemble nothing known pass, as
    new gateway models do. `"provider:model"` strings must name a provider
    `init_chat_model` knows, with its package installed.

    Raises:
        ConfigurationError: naming the argument at fault and what to pass.
        UnknownModelError: a fallback id that looks like a typo.
    """
    for position, spec in enumerate(fallbacks, start=1):
        _fallback(spec, position)
    _retries(max_retries)
    _policies(retry, error_policy, breakers, rate_limits)
    _seconds(deadline, "deadline", "no deadline")
    _seconds(timeout, "timeout", "the model's own timeout")
    if not callable(on_failure):
        _choice(on_failure, "on_failure", ("error", "continue"))
    _choice(streaming, "streaming", ("buffer", "live"))
    _optional_callable(sleep, "sleep")
    _optional_callable(asleep, "asleep")
