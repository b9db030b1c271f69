"""Errors of the proxy, in the OpenAI error shape, with the right status.

`{"error": {"message", "type", "param", "code"}}`, as OpenAI's API and every
OpenAI SDK read it. `upstream_error` maps what the route loop raised (every
route failed, a stop decision, a deadline) to 502/503/504 with a summary of
the routes, or passes a client error of the upstream (400) through. Messages
never carry a key: upstream keys never reach an error, and a virtual key is
never echoed back.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from langchain_holysheep.resilience._exceptions import (
    AllRoutesFailedError,
    AttemptTimeoutError,
    CircuitOpenError,
    DeadlineExceededError,
    RateLimitTimeoutError,
    RouteFailure,
    StreamFailureError,
    StreamInterruptedError,
)

__all__ = ["ProxyError", "upstream_error"]


class ProxyError(Exception):
    """An error answer: status, OpenAI error fields and extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        """The JSON error body."""
        return orjson.dumps(
            {
                "error": {
                    "message": self.message,
                    "type": self.type,
                    "param": self.param,
                    "code": self.code,
                }
            }
        )

    def event(self) -> bytes:
        """The error as one SSE event (a stream that broke after its headers)."""
        return b"data: " + self.body() + b"\n\n"


def _summary(failures: list[RouteFailure]) -> str:
    parts = []
    for f in failures[-8:]:
        status = f" {f.status}" if f.status else ""
        parts.append(f"{f.model}:{status} {f.reason or f.action}".rstrip())
    if len(failures) > 8:
        parts.insert(0, f"... {len(failures) - 8} earlier")
    return "; ".join(parts)


_TIMEOUTS = ("timeout", "timed out", "stall", "first token", "silent", "deadline")


def _timed_out(failures: list[RouteFailure]) -> bool:
    attempted = [f for f in failures if not f.error.startswith("skipped")]
    return bool(attempted) and all(
        any(t in f"{f.reason} {f.error}".lower() for t in _TIMEOUTS) for f in attempted
    )


def _too_long(f: RouteFailure) -> bool:
    return "context length" in f.reason or "context window" in f.reason


def _exhausted(exc: AllRoutesFailedError) -> ProxyError:
    failures = list(exc.failures)
    routes = _summary(failures)
    head = str(exc).split("\n", 1)[0]
    if failures and all(_too_long(f) for f in failures):
        return ProxyError(
            400,
            f"The prompt is too long for every route of this model ({routes}).",
            param="messages",
            code="context_length_exceeded",
        )
    if "deadline" in head or _timed_out(failures):
        status, code, what = 504, "upstream_timeout", "timed out"
    elif failures and all(
        "circuit open" in f.reason or f.error.startswith("skipped") for f in failures
    ):
        status, code, what = 503, "upstream_unavailable", "are unavailable"
    else:
        status, code, what = 502, "upstream_failed", "failed"
    return ProxyError(
        status,
        f"Every route of this model {what} ({routes}). Retry later.",
        type="upstream_error",
        code=code,
    )


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _client_error(exc: BaseException, status: int) -> ProxyError:
    body: Any = getattr(exc, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else None
    message = str(getattr(exc, "message", "") or exc)
    code = None
    if isinstance(err, dict):
        message = str(err.get("message") or message)
        code = err.get("code")
    return ProxyError(
        status,
        f"The upstream model refused the request: {message}",
        type="invalid_request_error",
        code=str(code) if code else "upstream_rejected",
    )


def upstream_error(exc: BaseException) -> ProxyError:
    """The error answer for what a routed call raised."""
    if isinstance(exc, ProxyError):
        return exc
    if isinstance(exc, AllRoutesFailedError):
        return _exhausted(exc)
    if isinstance(exc, StreamInterruptedError):
        return ProxyError(
            502,
            f"The stream broke after {len(exc.partial_text)} characters and no "
            f"route could continue it ({_summary(list(exc.failures))}).",
            type="upstream_error",
            code="stream_interrupted",
        )
    if isinstance(exc, (DeadlineExceededError, AttemptTimeoutError)):
        return ProxyError(504, str(exc), type="upstream_error", code="upstream_timeout")
    if isinstance(exc, (CircuitOpenError, RateLimitTimeoutError)):
        wait = float(getattr(exc, "retry_in_s", 0) or getattr(exc, "wait_s", 1.0))
        return ProxyError(
            503,
            str(exc),
            type="upstream_error",
            code="upstream_unavailable",
            headers={"retry-after": str(max(1, math.ceil(wait)))},
        )
    if isinstance(exc, StreamFailureError):
        return ProxyError(502, str(exc), type="upstream_error", code="upstream_failed")
    status = _status_of(exc)
    if status is not None and status in (400, 404, 413, 422):
        return _client_error(exc, 400 if status != 413 else 413)
    if status in (401, 403):
        return ProxyError(
            502,
            "The upstream refused the server's credentials; the server's operator "
            "must check its upstream key.",
            type="upstream_error",
            code="upstream_auth_failed",
        )
    name = type(exc).__name__
    if "Timeout" in name:
        return ProxyError(
            504,
            f"The upstream timed out ({name}).",
            type="upstream_error",
            code="upstream_timeout",
        )
    return ProxyError(
        502,
        f"The upstream failed ({name}{f' {status}' if status else ''}).",
        type="upstream_error",
        code="upstream_failed",
    )
