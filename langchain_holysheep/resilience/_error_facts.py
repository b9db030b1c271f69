"""Facts about an exception: status, body code, `Retry-After`, timeout kind.

`extract(exc)` walks the `__cause__` chain once (LangChain wraps the openai SDK's
errors, which wrap httpx2's) and the predicates below read the result; they are
the conditions of the error table in `errors.py`.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelPermissionDeniedError,
    ModelTimeoutError,
)

__all__ = [
    "ErrorInfo",
    "extract",
    "has_own_action",
    "is_auth",
    "is_client_error",
    "is_connection",
    "is_content_policy",
    "is_context_overflow",
    "is_malformed",
    "is_retryable_model_error",
    "is_server_error",
    "is_silent_timeout",
    "is_timeout",
    "is_unreachable",
    "is_unstatused_api_error",
    "parse_retry_after",
]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Facts extracted from an exception and its `__cause__` chain."""

    exc: BaseException
    chain: tuple[BaseException, ...]
    status: int | None
    code: str | None
    message: str
    retry_after_s: float | None
    timeout_kind: str | None
    gateway: bool = True

    def any_instance(self, types: type[BaseException] | tuple[type, ...]) -> bool:
        """Whether any exception of the chain is an instance of `types`."""
        return any(isinstance(e, types) for e in self.chain)


# -- extraction --------------------------------------------------------------------
_CHAIN_LIMIT = 8
_CONTENT_POLICY_CODES = frozenset(
    {"content_policy_violation", "content_filter", "content_policy", "safety"}
)
_CONTEXT_CODES = frozenset({"context_length_exceeded", "context_window_exceeded"})
_CONTEXT_PHRASES = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "input tokens exceed",
)
_READ_TIMEOUTS = frozenset({"ReadTimeout"})
_SEND_TIMEOUTS = frozenset({"ConnectTimeout", "WriteTimeout", "PoolTimeout"})


def _chain(exc: BaseException) -> tuple[BaseException, ...]:
    out = [exc]
    cur: BaseException | None = exc
    while len(out) < _CHAIN_LIMIT:
        assert cur is not None
        nxt = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
        if nxt is None or nxt in out:
            break
        out.append(nxt)
        cur = nxt
    return tuple(out)


def parse_retry_after(headers: Any, *, now: float | None = None) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or HTTP date).

    Returns `None` when neither header is present or readable; never negative.
    """
    if headers is None:
        return None
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except (TypeError, ValueError):
            continue
        if math.isnan(seconds):
            continue
        return max(seconds, 0.0)
    value = get("retry-after")
    if value:
        try:
            parsed = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError):
            return None
        if parsed is None:
            return None
        current = time.time() if now is None else now
        return max(parsed.timestamp() - current, 0.0)
    return None


def _status_of(e: BaseException) -> int | None:
    for attr in ("status_code", "status", "http_status"):
        value = getattr(e, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    response = getattr(e, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _code_of(e: BaseException) -> str | None:
    code = getattr(e, "code", None)
    if isinstance(code, str) and code:
        return code
    body = getattr(e, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("code") is not None:
            return str(inner["code"])
    return None


def extract(exc: BaseException, *, gateway: bool = True) -> ErrorInfo:
    """Collect status, body code, message, `Retry-After` and timeout kind."""
    chain = _chain(exc)
    status = code = None
    retry_after = None
    timeout_kind = None
    message = ""
    for e in chain:
        if status is None:
            status = _status_of(e)
        if code is None:
            code = _code_of(e)
        if retry_after is None:
            response = getattr(e, "response", None)
            retry_after = parse_retry_after(getattr(response, "headers", None))
        if timeout_kind is None:
            name = type(e).__name__
            if name in _READ_TIMEOUTS or name in _SEND_TIMEOUTS:
                timeout_kind = name
        if not message:
            msg = getattr(e, "message", None)
            message = msg if isinstance(msg, str) and msg else str(e)
    return ErrorInfo(
        exc=exc,
        chain=chain,
        status=status,
        code=code,
        message=message,
        retry_after_s=retry_after,
        timeout_kind=timeout_kind,
        gateway=gateway,
    )


# -- predicates of the table ------------------------------------------------------
def has_own_action(action: str) -> Callable[[ErrorInfo], bool]:
    """A predicate: the exception carries `holysheep_action == action`."""
    return lambda i: getattr(i.exc, "holysheep_action", None) == action


def is_content_policy(i: ErrorInfo) -> bool:
    """The provider rejected the content (safety / content filter)."""
    if i.code in _CONTENT_POLICY_CODES:
        return True
    return any(type(e).__name__ == "ContentFilterFinishReasonError" for e in i.chain)


def is_context_overflow(i: ErrorInfo) -> bool:
    """The prompt exceeds the model's context window."""
    if i.any_instance(ContextOverflowError) or i.code in _CONTEXT_CODES:
        return True
    if i.status in (400, 413, None) and i.message:
        low = i.message.lower()
        return any(p in low for p in _CONTEXT_PHRASES)
    return False


def is_auth(i: ErrorInfo) -> bool:
    """The key was rejected (401) or lacks permission (403)."""
    return i.status in (401, 403) or i.any_instance(
        (ModelAuthenticationError, ModelPermissionDeniedError)
    )


def is_timeout(i: ErrorInfo) -> bool:
    """Any kind of timeout."""
    if i.timeout_kind is not None or i.any_instance((ModelTimeoutError, TimeoutError)):
        return True
    names = ("APITimeoutError", "TimeoutException")
    return any(type(e).__name__ in names for e in i.chain)


def is_silent_timeout(i: ErrorInfo) -> bool:
    """A read timeout: the server never answered (not retried)."""
    return is_timeout(i) and i.timeout_kind not in _SEND_TIMEOUTS


_UNREACHABLE = frozenset({"ConnectError", "ConnectTimeout", "ProxyError", "gaierror"})


def is_unreachable(i: ErrorInfo) -> bool:
    """The server cannot be reached at all (refused, DNS, connect timeout)."""
    if i.timeout_kind == "ConnectTimeout":
        return True
    if i.any_instance(ConnectionRefusedError):
        return True
    return any(type(e).__name__ in _UNREACHABLE for e in i.chain)


def is_connection(i: ErrorInfo) -> bool:
    """The connection failed or dropped (reset, protocol error)."""
    if i.any_instance((ModelConnectionError, ConnectionError)):
        return True
    return any(
        type(e).__name__
        in (
            "APIConnectionError",
            "ConnectError",
            "RemoteProtocolError",
            "ReadError",
            "NetworkError",
            "TransportError",
            "ProxyError",
        )
        for e in i.chain
    )


def is_malformed(i: ErrorInfo) -> bool:
    """The reply could not be parsed (invalid JSON, schema mismatch)."""
    return i.any_instance(json.JSONDecodeError) or any(
        type(e).__name__ in ("ResponseFormatError", "APIResponseValidationError")
        for e in i.chain
    )


def is_server_error(i: ErrorInfo) -> bool:
    """A 5xx, or LangChain's `ModelAPIError`."""
    if i.status is not None:
        return 500 <= i.status <= 599
    return i.any_instance(ModelAPIError)


def is_client_error(i: ErrorInfo) -> bool:
    """A 4xx, or LangChain's `ModelInvalidRequestError`."""
    if i.status is not None and 400 <= i.status <= 499:
        return True
    return i.any_instance(ModelInvalidRequestError)


def is_unstatused_api_error(i: ErrorInfo) -> bool:
    """An openai `APIError` without status (a streamed error event)."""
    return i.status is None and type(i.exc).__name__ == "APIError"


def is_retryable_model_error(i: ErrorInfo) -> bool:
    """A LangChain `ModelError` whose `is_retryable` is true."""
    return isinstance(i.exc, ModelError) and bool(i.exc.is_retryable)
