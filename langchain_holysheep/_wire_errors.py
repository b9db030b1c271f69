"""Failures of OpenAI-wire requests as the OpenAI SDK's exception classes.

An error status, a transport failure, or an error event inside a stream
becomes the exception the SDK would raise, with the same fields (`status_code`,
`body`, `response`) and message, so every caller classifies and translates it
exactly as on the SDK's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2
import openai

from langchain_holysheep._json import loads

__all__ = ["status_class", "status_error", "stream_error", "transport_error"]

_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def status_error(response: httpx2.Response) -> openai.APIStatusError:
    """The OpenAI SDK's error for a reply with status >= 400 (body already read)."""
    message = f"Error code: {response.status_code}"
    text = response.text.strip()
    body: Any = text
    try:
        body = loads(text)
    except ValueError:
        pass
    else:  # only the designated message field goes into the text, as the SDK does
        error = body.get("error", body) if isinstance(body, Mapping) else None
        detail = error.get("message") if isinstance(error, Mapping) else None
        if isinstance(detail, str) and detail:
            message += f" - {detail}"
    data = body.get("error", body) if isinstance(body, Mapping) else body
    return status_class(response.status_code)(message, response=response, body=data)


def status_class(status: int) -> type[openai.APIStatusError]:
    """The OpenAI SDK's exception class for an HTTP status >= 400."""
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = openai.InternalServerError if status >= 500 else openai.APIStatusError
    return cls


def transport_error(exc: Exception, request: httpx2.Request) -> openai.APIError:
    if isinstance(exc, httpx2.TimeoutException):
        return openai.APITimeoutError(request=request)
    return openai.APIConnectionError(request=request)


def stream_error(data: Any, request: httpx2.Request) -> openai.APIError | None:
    """An error event inside a stream, as the SDK raises it."""
    if not isinstance(data, Mapping) or not data.get("error"):
        return None
    error = data["error"]
    message = error.get("message") if isinstance(error, Mapping) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    return openai.APIError(message, request, body=error)
