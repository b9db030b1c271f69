"""Gateway specifics shared by the chat model and the CLI: URL, key, errors, models."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

import httpx2
import openai
from langchain_openai.chat_models.base import (  # ChatOpenAI's error classes
    _handle_openai_api_error,
    _handle_openai_bad_request,
)
from pydantic import SecretStr

from langchain_holysheep._gateway_env import (
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    resolve_base_url,
)
from langchain_holysheep._header_secrets import (
    redact_http_trace_logs,
    scrub_header_values,
)
from langchain_holysheep._settings import unsafe_header_character
from langchain_holysheep._wire import status_class
from langchain_holysheep.catalogue import default_catalogue
from langchain_holysheep.errors import (
    GatewayAuthenticationError,
    InvalidAPIKeyError,
    InvalidHeaderError,
    MissingAPIKeyError,
    ModelNotServedError,
    ResponseFormatError,
)


def resolve_api_key(api_key: str | SecretStr | None = None) -> SecretStr:
    """Return the key given or `HOLYSHEEP_API_KEY`, whitespace stripped.

    Raises:
        MissingAPIKeyError: when neither is set.
        InvalidAPIKeyError: when the key holds a character an HTTP header cannot
            carry (a line break, a space, a control or non-ASCII character);
            the message names the kind of character, never the key.
    """
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    env_value = os.environ.get(API_KEY_ENV)
    # a model reads the variable into its field, so equal text means "from env"
    from_env = api_key is None or api_key == env_value
    raw = api_key if api_key is not None else env_value or ""
    if not isinstance(raw, str):
        raise InvalidAPIKeyError(
            f"a {type(raw).__name__} instead of text", from_env=from_env
        )
    key = raw.strip()
    if not key:
        raise MissingAPIKeyError(API_KEY_ENV)
    problem = unsafe_header_character(key, spaces_allowed=False)
    if problem is not None:
        raise InvalidAPIKeyError(problem, from_env=from_env, env_var=API_KEY_ENV)
    return SecretStr(key)


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("code") is not None:
            return str(inner["code"])
    return None


# The HTTP status an error object stands for, from its `code`, then its `type`
# (OpenAI's names, and the common ones of other OpenAI-compatible servers).
_CODE_STATUS: dict[str, int] = {
    "rate_limit_exceeded": 429,
    "rate_limit": 429,
    "too_many_requests": 429,
    "insufficient_quota": 429,
    "context_length_exceeded": 400,
    "context_window_exceeded": 400,
    "content_policy_violation": 400,
    "content_filter": 400,
    "invalid_api_key": 401,
    "invalid_authentication": 401,
    "unauthorized": 401,
    "permission_denied": 403,
    "forbidden": 403,
    "unsupported_country_region_territory": 403,
    "model_not_found": 404,
    "not_found": 404,
    "request_timeout": 408,
    "server_error": 500,
    "internal_error": 500,
    "internal_server_error": 500,
    "bad_gateway": 502,
    "overloaded": 503,
    "engine_overloaded": 503,
    "model_overloaded": 503,
    "service_unavailable": 503,
    "gateway_timeout": 504,
}
_TYPE_STATUS: dict[str, int] = {
    "requests": 429,
    "tokens": 429,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "timeout_error": 408,
    "server_error": 500,
    "api_error": 500,
    "internal_server_error": 500,
    "overloaded_error": 503,
}


def _http_status(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and 400 <= value <= 599:
        return value
    return None


def error_status(error: Any) -> int | None:
    """The HTTP status an OpenAI-style error object stands for (`None`: unknown).

    Read from a numeric `status` / `status_code` / `code` (as some gateways
    send), else the `code` name (`rate_limit_exceeded` -> 429), else the `type`
    (`server_error` -> 500).
    """
    if not isinstance(error, Mapping):
        return None
    for key in ("status", "status_code", "code"):
        status = _http_status(error.get(key))
        if status is not None:
            return status
    code, kind = error.get("code"), error.get("type")
    if isinstance(code, str) and code.lower() in _CODE_STATUS:
        return _CODE_STATUS[code.lower()]
    if isinstance(kind, str) and kind.lower() in _TYPE_STATUS:
        return _TYPE_STATUS[kind.lower()]
    return None


def _as_langchain_error(exc: openai.APIError) -> BaseException:
    """`exc` as ChatOpenAI raises it (`OpenAIRateLimitError`, ...)."""
    try:
        try:
            raise exc
        except openai.BadRequestError as bad:
            _handle_openai_bad_request(bad)
        except openai.APIError as other:
            _handle_openai_api_error(other)
    except Exception as final:  # the handlers always raise
        return final
    return exc  # pragma: no cover - the handlers always raise


def provider_error(
    error: Any,
    model: str,
    *,
    request: httpx2.Request | None = None,
    base_url: str | None = None,
) -> BaseException:
    """The exception for an error object the gateway sent with status 200.

    It is the one the OpenAI SDK (then ChatOpenAI, then this package) raises when
    the same object comes with the HTTP status its `code` / `type` stands for:
    a rate limit is an `OpenAIRateLimitError` (retried), a server error an
    `OpenAIAPIError` (retried), a context overflow an
    `OpenAIContextOverflowError`, a rejected key a `GatewayAuthenticationError`,
    and so on. An error object that names no known status is an `openai.APIError`
    without status, as the SDK raises for an error event in a stream (the
    router falls over to the next route).

    Args:
        error: the body's `error` value (normally `{"message", "type", "code"}`).
        model: the model that answered.
        request: the request it answered, if known.
        base_url: the gateway URL (to describe the request when `request` is
            not known).
    """
    if request is None:
        url = f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/chat/completions"
        request = httpx2.Request("POST", url)
    body: Any = dict(error) if isinstance(error, Mapping) else error
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = str(body)
    status = error_status(body)
    if status is None:
        return openai.APIError(
            f"{message} (an error object sent with HTTP 200 for model {model!r})",
            request,
            body=body,
        )
    cls = status_class(status)
    response = httpx2.Response(status, request=request, json={"error": body})
    exc = cls(
        f"Error code: {status} - {{'error': {body!r}}} (sent with HTTP 200)",
        response=response,
        body=body,
    )
    final = _as_langchain_error(exc)
    helpful = translate_error(final, model)
    if helpful is None:
        return final
    helpful.__cause__ = final
    return helpful


def translate_error(exc: BaseException, model: str) -> BaseException | None:
    """Turn a raw gateway error into a helpful one, or `None` to keep it as is.

    A header that could not be sent becomes `InvalidHeaderError` (never
    retried), after the value is scrubbed from every error in the chain.
    """
    if scrub_header_values(exc):
        return InvalidHeaderError()
    if type(exc) is openai.APIError and error_status(exc.body) is not None:
        # An error event in a stream: the SDK raises it without a status.
        return provider_error(exc.body, model, request=exc.request)
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
    if isinstance(exc, UnicodeDecodeError):
        return ResponseFormatError(
            f"The gateway sent a reply for model {model!r} that is not UTF-8 text "
            f"({exc.reason} at byte {exc.start}). If this persists, report it to "
            "HolySheep support; a fallback model avoids it meanwhile.",
            model=model,
            body=exc.object[max(exc.start - 100, 0) : exc.start + 100],
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


def _models_client(
    factory: Any, api_key: str | SecretStr | None, base_url: str | None, timeout: float
) -> Any:
    """An OpenAI client (`factory`: sync or async) for `GET /models`."""
    redact_http_trace_logs()
    return factory(
        api_key=resolve_api_key(api_key).get_secret_value(),
        base_url=resolve_base_url(base_url),
        timeout=timeout,
        max_retries=1,
    )


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Raise gateway errors of the block in their helpful form."""
    try:
        yield
    except (openai.APIError, json.JSONDecodeError) as exc:
        reraise(exc, "")


def list_gateway_models(
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """The model ids served by the gateway (`GET /models`), sorted."""
    client = _models_client(openai.OpenAI, api_key, base_url, timeout)
    with client, _translated():
        return sorted(m.id for m in client.models.list())


async def alist_gateway_models(
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """Async version of `list_gateway_models`."""
    async with _models_client(openai.AsyncOpenAI, api_key, base_url, timeout) as c:
        with _translated():
            return sorted([m.id async for m in c.models.list()])
