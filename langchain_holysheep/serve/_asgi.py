"""ASGI plumbing of the proxy: reading a bounded body, checking it, answering.

Only what the OpenAI wire format needs, on the raw ASGI interface (no
framework between uvicorn and the relay): the body is read up to the size
limit (413 past it, before reading more), parsed with orjson and checked
field by field (400 naming the field); keys are taken from the
`Authorization` header only (a key in the query string is refused).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from langchain_holysheep.serve._errors import ProxyError

__all__ = [
    "Receive",
    "Send",
    "bearer_key",
    "check_chat_request",
    "query_has_key",
    "read_json",
    "respond",
]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_KEY_PARAMS = frozenset(
    {"key", "api_key", "api-key", "apikey", "access_token", "token", "auth",
     "authorization", "bearer"}
)  # fmt: skip
_JSON = [(b"content-type", b"application/json")]


def header(scope: Mapping[str, Any], name: bytes) -> bytes | None:
    """The first value of request header `name` (lowercase)."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def bearer_key(scope: Mapping[str, Any]) -> str | None:
    """The key of `Authorization: Bearer <key>` (`None`: absent or malformed)."""
    raw = header(scope, b"authorization")
    if raw is None:
        return None
    scheme, _, key = raw.decode("latin-1").strip().partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def query_has_key(scope: Mapping[str, Any]) -> bool:
    """Whether the query string carries something named like a key."""
    query = scope.get("query_string") or b""
    if not query:
        return False
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return any(name.strip().lower() in _KEY_PARAMS for name, _ in pairs)


async def read_json(
    scope: Mapping[str, Any], receive: Receive, limit: int
) -> dict[str, Any]:
    """The request body as a JSON object, at most `limit` bytes.

    Raises:
        ProxyError: 413 over the limit, 400 not a JSON object.
    """
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ProxyError(400, "The client disconnected.", code="disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        data = orjson.loads(b"".join(parts))
    except orjson.JSONDecodeError as exc:
        raise ProxyError(
            400,
            f"The request body is not valid JSON ({exc}). Send a JSON object "
            "with 'model' and 'messages'.",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise ProxyError(
            400,
            f"The request body must be a JSON object, not a {type(data).__name__}.",
            code="invalid_json",
        )
    return data


def _too_large(limit: int) -> ProxyError:
    return ProxyError(
        413,
        f"The request body is larger than this server's limit of {limit} bytes.",
        code="request_too_large",
    )


def _bad(param: str, message: str) -> ProxyError:
    return ProxyError(400, message, param=param, code="invalid_request")


_TYPES: dict[str, tuple[type, ...]] = {
    "stream": (bool,),
    "stream_options": (dict,),
    "tools": (list,),
    "response_format": (dict,),
    "max_tokens": (int,),
    "max_completion_tokens": (int,),
    "n": (int,),
    "temperature": (int, float),
    "top_p": (int, float),
}


def check_chat_request(body: Mapping[str, Any]) -> None:
    """Check the fields the proxy reads; the upstream checks the rest.

    Raises:
        ProxyError: 400 naming the field at fault.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "'model' is required: the name of a model group.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "'messages' is required: a non-empty list of messages.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _bad(
                f"messages[{i}]",
                f"messages[{i}] must be an object with a string 'role'.",
            )
    for name, types in _TYPES.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, types) or (
            isinstance(value, bool) and bool not in types
        ):
            what = " or ".join(t.__name__ for t in types)
            raise _bad(name, f"'{name}' must be of type {what}.")
    n = body.get("n")
    if isinstance(n, int) and n < 1:
        raise _bad("n", "'n' must be at least 1.")


async def respond(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A whole JSON response (with its length: no chunked framing)."""
    length = (b"content-length", b"%d" % len(body))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON, length, *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Send, err: ProxyError) -> None:
    """An OpenAI-shaped error response."""
    extra = [(k.encode(), v.encode()) for k, v in err.headers.items()]
    await respond(send, err.status, err.body(), extra)
