"""The OpenAI wire format: JSON bodies, SSE chunks and error bodies, as bytes.

Bodies are built as plain dicts and serialised once (orjson when installed);
stream chunks share one pre-serialised prefix per response.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

try:  # orjson ships with langsmith (a langchain-core dependency) on CPython
    import orjson

    def dumps(value: Any) -> bytes:
        """Serialise to compact JSON bytes (UTF-8, non-ASCII kept)."""
        return orjson.dumps(value)

    def loads(data: bytes | str) -> Any:
        """Parse JSON."""
        return orjson.loads(data)

    JSONDecodeError: type[ValueError] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - exercised only without orjson
    import json

    def dumps(value: Any) -> bytes:
        """Serialise to compact JSON bytes (UTF-8, non-ASCII kept)."""
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    def loads(data: bytes | str) -> Any:
        """Parse JSON."""
        return json.loads(data)

    JSONDecodeError = json.JSONDecodeError

if TYPE_CHECKING:
    from langchain_holysheep.simulator.replies import Completion

__all__ = ["dumps", "error_body", "error_object", "loads"]

SYSTEM_FINGERPRINT = "fp_holysheep_sim"
DONE = b"data: [DONE]\n\n"
MALFORMED = b'data: {not json, "choices": [{"delta": {"content": "oops"\n\n'
#: An SSE event whose data is not UTF-8 (0xff never occurs in UTF-8).
MALFORMED_BINARY = b"data: \xff\xfe\x00\x9c\x80garbage\xc3\x28\n\n"
#: A captive portal's / proxy's HTML page (sent as `text/html`).
HTML_PAGE = (
    b"<!DOCTYPE html>\r\n<html>\r\n<head>\r\n"
    b'<meta charset="utf-8">\r\n'
    b'<meta http-equiv="refresh" content="5; url=http://portal.example/login">\r\n'
    b"<title>Sign in to the network</title>\r\n</head>\r\n<body>\r\n"
    b"<h1>Sign in to continue</h1>\r\n"
    b"<p>You must accept the terms of use before you can access the "
    b"Internet.</p>\r\n</body>\r\n</html>\r\n"
)

_ERROR_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Invalid request.", None),
    401: ("invalid_request_error", "Incorrect API key provided.", "invalid_api_key"),
    403: (
        "invalid_request_error",
        "You are not allowed to use this model with this API key.",
        "permission_denied",
    ),
    404: (
        "invalid_request_error",
        "The requested resource was not found.",
        "not_found",
    ),
    408: ("timeout_error", "Request timed out.", "request_timeout"),
    409: ("invalid_request_error", "The request conflicts with another request.", None),
    429: (
        "requests",
        "Rate limit reached for requests. Please try again later.",
        "rate_limit_exceeded",
    ),
    500: (
        "server_error",
        "The server had an error while processing your request. Sorry about that!",
        None,
    ),
    502: (
        "server_error",
        "Bad gateway: the upstream provider returned an invalid response.",
        None,
    ),
    503: (
        "server_error",
        "The engine is currently overloaded, please try again later.",
        None,
    ),
    504: (
        "server_error",
        "Gateway timeout: the upstream provider did not answer in time.",
        None,
    ),
}


def malformed(payload: str | None, json: bytes) -> bytes:
    """What `malformed_chunk` sends for `payload`, with `json` for `"json"`."""
    if payload == "html":
        return HTML_PAGE
    if payload == "binary":
        return MALFORMED_BINARY
    return json


def error_object(
    status: int,
    *,
    message: str | None = None,
    code: str | None = None,
    type_: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """An OpenAI error object `{message, type, param, code}` (defaults by status)."""
    default_type, default_message, default_code = _ERROR_DEFAULTS.get(
        status,
        (
            "server_error" if status >= 500 else "invalid_request_error",
            f"HTTP {status}.",
            None,
        ),
    )
    return {
        "message": message or default_message,
        "type": type_ or default_type,
        "param": param,
        "code": code if code is not None else default_code,
    }


def error_body(
    status: int,
    *,
    message: str | None = None,
    code: str | None = None,
    type_: str | None = None,
    param: str | None = None,
) -> bytes:
    """An OpenAI-shaped error body `{"error": {message, type, param, code}}`."""
    return dumps(
        {
            "error": error_object(
                status, message=message, code=code, type_=type_, param=param
            )
        }
    )


def bad_completion_body(shape: str, *, rid: str, model: str, created: int) -> bytes:
    """A `chat.completion`-like JSON body that is not usable (`Fault.bad_reply`).

    `shape` is "no_choices", "null_choices" or "empty_choices".
    """
    body: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion",
        "created": created,
        "model": model,
    }
    if shape == "null_choices":
        body["choices"] = None
    elif shape == "empty_choices":
        body["choices"] = []
    body["system_fingerprint"] = SYSTEM_FINGERPRINT
    return dumps(body)


def usage(c: Completion) -> dict[str, Any]:
    """The `usage` object of a completion."""
    return {
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "total_tokens": c.prompt_tokens + c.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": c.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": c.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_calls(c: Completion) -> list[dict[str, Any]]:
    return [
        {
            "id": t.id,
            "type": "function",
            "function": {"name": t.name, "arguments": t.arguments},
        }
        for t in c.tool_calls
    ]


def completion_body(c: Completion, *, rid: str, model: str, created: int) -> bytes:
    """A non-streaming `chat.completion` body."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": c.content,
        "refusal": None,
        "annotations": [],
    }
    if c.tool_calls:
        message["tool_calls"] = _tool_calls(c)
    return dumps(
        {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": c.finish_reason,
                }
            ],
            "usage": usage(c),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
    )


class ChunkWriter:
    """Encodes the SSE events of one streamed completion."""

    __slots__ = ("_head", "_tail")

    def __init__(
        self, *, rid: str, model: str, created: int, include_usage: bool
    ) -> None:
        head = dumps(
            {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
        )
        self._head = b"data: " + head[:-1] + b',"choices":'
        self._tail = b',"usage":null}\n\n' if include_usage else b"}\n\n"

    def _event(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._head + dumps([choice]) + self._tail

    def role(self, tool_calls: bool) -> bytes:
        """The first event (role, empty content)."""
        return self._event(
            {
                "role": "assistant",
                "content": None if tool_calls else "",
                "refusal": None,
            }
        )

    def content_events(self, c: Completion, pieces: list[str]) -> Iterator[bytes]:
        """Content events: one per text piece, or tool calls in argument fragments."""
        if not c.tool_calls:
            for piece in pieces:
                yield self._event({"content": piece})
            return
        for index, call in enumerate(c.tool_calls):
            yield self._event(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            for fragment in _fragments(call.arguments):
                yield self._event(
                    {
                        "tool_calls": [
                            {"index": index, "function": {"arguments": fragment}}
                        ]
                    }
                )

    def finish(self, reason: str) -> bytes:
        """The event carrying `finish_reason`."""
        return self._event({}, reason)

    def empty(self) -> bytes:
        """A `"choices": []` event without usage (no content, no progress)."""
        return self._head + b"[]" + self._tail

    def bad(self, shape: str) -> bytes:
        """An event of a `Fault.bad_reply` JSON shape (no choices / null / [])."""
        if shape == "empty_choices":
            return self.empty()
        head = self._head[: -len(b',"choices":')]
        if shape == "null_choices":
            return head + b',"choices":null' + self._tail
        return head + self._tail

    @staticmethod
    def error(error: dict[str, Any]) -> bytes:
        """An error event, `data: {"error": {...}}`, as OpenAI streams one."""
        return b"data: " + dumps({"error": error}) + b"\n\n"

    def usage(self, c: Completion) -> bytes:
        """The final `choices: []` event with usage."""
        return self._head + b"[]" + b',"usage":' + dumps(usage(c)) + b"}\n\n"


def _fragments(arguments: str, size: int = 8) -> list[str]:
    """Split a JSON argument string into several fragments, OpenAI style."""
    if len(arguments) <= size:
        return [arguments]
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def model_list(models: list[tuple[str, str]], created: int) -> bytes:
    """`GET /v1/models` body."""
    return dumps(
        {
            "object": "list",
            "data": [
                {"id": mid, "object": "model", "created": created, "owned_by": owner}
                for mid, owner in models
            ],
        }
    )
