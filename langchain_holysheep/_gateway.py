"""Gateway specifics shared by the chat model and the CLI: URL, key, errors, models."""

from __future__ import annotations

import json
import os
from typing import Any, NoReturn

import openai
from pydantic import SecretStr

from langchain_holysheep.catalogue import default_catalogue
from langchain_holysheep.errors import (
    GatewayAuthenticationError,
    MissingAPIKeyError,
    ModelNotServedError,
    ResponseFormatError,
)

DEFAULT_BASE_URL = "https://api.holysheep.ai/v1"
"""The public HolySheep gateway."""

API_KEY_ENV = "HOLYSHEEP_API_KEY"
BASE_URL_ENV = "HOLYSHEEP_BASE_URL"


def resolve_api_key(api_key: str | SecretStr | None = None) -> SecretStr:
    """Return the key given or `HOLYSHEEP_API_KEY`, whitespace stripped.

    Raises:
        MissingAPIKeyError: when neither is set.
    """
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    raw = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
    if not raw.strip():
        raise MissingAPIKeyError(API_KEY_ENV)
    return SecretStr(raw.strip())


def resolve_base_url(base_url: str | None = None) -> str:
    """Return the URL given, or `HOLYSHEEP_BASE_URL`, or the public gateway."""
    return (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("code") is not None:
            return str(inner["code"])
    return None


def translate_error(exc: BaseException, model: str) -> BaseException | None:
    """Turn a raw gateway error into a helpful one, or `None` to keep it as is."""
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return GatewayAuthenticationError(exc.status_code)
    if isinstance(exc, openai.NotFoundError):
        code = _error_code(exc)
        if code in (None, "model_not_found") or "model" in exc.message.lower():
            return ModelNotServedError(model, default_catalogue().suggest(model))
        return None
    if isinstance(exc, json.JSONDecodeError):
        return ResponseFormatError(
            f"The gateway sent a malformed reply for model {model!r} "
            f"(invalid JSON: {exc.msg}). If this persists, report it to HolySheep "
            "support; a fallback model avoids it meanwhile.",
            model=model,
            body=exc.doc[:200] if isinstance(exc.doc, str) else None,
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return ResponseFormatError(
            f"The gateway sent a reply for model {model!r} that does not match the "
            f"OpenAI format: {exc.message}",
            model=model,
        )
    return None


def reraise(exc: BaseException, model: str) -> NoReturn:
    """Raise the helpful form of `exc` (chained to it), or `exc` itself."""
    new = translate_error(exc, model)
    if new is None:
        raise exc
    raise new from exc


def _client_kwargs(
    api_key: str | SecretStr | None, base_url: str | None, timeout: float
) -> dict[str, Any]:
    return {
        "api_key": resolve_api_key(api_key).get_secret_value(),
        "base_url": resolve_base_url(base_url),
        "timeout": timeout,
        "max_retries": 1,
    }


def list_gateway_models(
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """The model ids served by the gateway (`GET /models`), sorted."""
    kwargs = _client_kwargs(api_key, base_url, timeout)
    with openai.OpenAI(**kwargs) as client:
        try:
            return sorted(m.id for m in client.models.list())
        except (openai.APIError, json.JSONDecodeError) as exc:
            reraise(exc, "")


async def alist_gateway_models(
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """Async version of `list_gateway_models`."""
    kwargs = _client_kwargs(api_key, base_url, timeout)
    async with openai.AsyncOpenAI(**kwargs) as client:
        try:
            return sorted([m.id async for m in client.models.list()])
        except (openai.APIError, json.JSONDecodeError) as exc:
            reraise(exc, "")
