"""Checks that a gateway reply is a usable chat completion before LangChain reads it.

A status 200 is not always a completion: a captive portal answers with an HTML
page (which the OpenAI SDK hands through as a `str`), a broken upstream sends
JSON without `choices`, with `"choices": null` or `[]`, or an OpenAI error object
(`{"error": {...}}`) with status 200. `langchain_openai` then fails with a bare
`ValueError`, `KeyError`, `TypeError` or `IndexError`, which the router cannot
tell from a programming error, so it stops instead of falling over.

`check_completion` (non-streaming replies) and `check_chunk` (stream chunks)
raise instead:

- `ResponseFormatError` for a reply that is not a completion (the error table
  falls over to the next route: "malformed response");
- the provider's own error when the body is an error object, as the SDK would
  raise it with the status its `code` / `type` stands for (`provider_error`):
  a rate limit is retried, an unknown error falls over.

`unreadable` turns what LangChain still fails on after the checks into a
`ResponseFormatError` too (see `READ_ERRORS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_holysheep._gateway import provider_error
from langchain_holysheep.errors import ResponseFormatError

__all__ = [
    "READ_ERRORS",
    "check_chunk",
    "check_completion",
    "unreadable",
]

#: What LangChain raises on a reply it cannot read (pydantic's `ValidationError`
#: is a `ValueError`).
READ_ERRORS = (KeyError, TypeError, IndexError, AttributeError, ValueError)

# `dict` first: chunks are dicts, and `isinstance(x, Mapping)` alone is slow.
_MAP = (dict, Mapping)

_HINT = (
    "If this persists, report it to HolySheep support; a fallback model avoids it "
    "meanwhile."
)
_PAGE_HINT = (
    "A captive portal, proxy or login page may be in the way: check the network "
    "path to the gateway (HOLYSHEEP_BASE_URL)."
)


def _field(obj: Any, key: str) -> Any:
    """`obj[key]` of a dict, or the attribute of an SDK model (`None`: absent)."""
    if isinstance(obj, _MAP):
        return obj.get(key)
    return getattr(obj, key, None)


def _has(obj: Any, key: str) -> bool:
    """Whether the reply had `key` at all (even as null)."""
    if isinstance(obj, _MAP):
        return key in obj
    given = getattr(obj, "model_fields_set", None) or ()
    return key in given or key in (getattr(obj, "model_extra", None) or {})


def _is_object(obj: Any) -> bool:
    """A JSON object: a dict, or an SDK (pydantic) model built from one."""
    return isinstance(obj, _MAP) or hasattr(obj, "model_dump")


def _unusable(sent: str, model: str, body: Any) -> ResponseFormatError:
    return ResponseFormatError(
        f"The gateway sent {sent}. {_HINT}", model=model, body=body
    )


def _malformed(model: str, problem: str, body: Any) -> ResponseFormatError:
    sent = f"a reply for model {model!r} that is not a usable chat completion"
    return _unusable(f"{sent}: {problem}", model, body)


def _not_an_object(response: Any, model: str) -> ResponseFormatError:
    if isinstance(response, (bytes, bytearray)):
        response = bytes(response).decode("utf-8", "replace")
    if isinstance(response, str) and response.lstrip()[:1] == "<":
        return ResponseFormatError(
            f"The gateway answered model {model!r} with an HTML page instead of a "
            f"chat completion. {_PAGE_HINT}",
            model=model,
            body=response,
        )
    kind = "text" if isinstance(response, str) else f"a JSON {type(response).__name__}"
    return _malformed(model, f"{kind} instead of a JSON object", response)


def _error_in(body: Any) -> Any:
    """The error object a reply carries instead of a completion, if any."""
    error = _field(body, "error")
    return error or None


def check_completion(response: Any, model: str, base_url: str | None = None) -> None:
    """Raise unless `response` is a chat completion LangChain can read.

    Args:
        response: what the SDK parsed (a `ChatCompletion`, a dict on the lean
            async path, or the body's text when it was not JSON).
        model: the model that answered (for messages).
        base_url: the gateway URL (describes the request of a provider error).

    Raises:
        ResponseFormatError: not a completion (HTML page, no / null / empty /
            invalid `choices`, a choice without an assistant message).
        Exception: the provider's error, for an error object sent with status
            200 (see `provider_error`).
    """
    if not _is_object(response):
        raise _not_an_object(response, model)
    error = _error_in(response)
    if error is not None:
        raise provider_error(error, model, base_url=base_url)
    choices = _field(response, "choices")
    if not isinstance(choices, (list, tuple)) or not choices:
        if not _has(response, "choices"):
            problem = "it has no 'choices'"
        elif choices is None:
            problem = "'choices' is null"
        elif isinstance(choices, (list, tuple)):
            problem = "'choices' is empty"
        else:
            problem = f"'choices' is a {type(choices).__name__}, not a list"
        raise _malformed(model, problem, _excerpt(response))
    for i, choice in enumerate(choices):
        message = _field(choice, "message") if _is_object(choice) else None
        if not _is_object(message):
            problem = f"choice {i} has no 'message' object"
            raise _malformed(model, problem, _excerpt(response))
        role = _field(message, "role")
        if role != "assistant":
            problem = f"choice {i} is a message from {role!r}, not the assistant"
            raise _malformed(model, problem, _excerpt(response))
        content = _field(message, "content")
        if content is not None and not isinstance(content, (str, list)):
            problem = f"choice {i} has content of type {type(content).__name__}"
            raise _malformed(model, problem, _excerpt(response))
        calls = _field(message, "tool_calls")
        if calls is not None and not (
            isinstance(calls, (list, tuple))
            and all(_is_object(_field(c, "function")) for c in calls)
        ):
            problem = f"choice {i} has malformed 'tool_calls'"
            raise _malformed(model, problem, _excerpt(response))
    usage = _field(response, "usage")
    if usage is not None and not _is_object(usage):
        problem = f"'usage' is a {type(usage).__name__}, not an object"
        raise _malformed(model, problem, _excerpt(response))


def check_chunk(chunk: Any, model: str, base_url: str | None = None) -> None:
    """Raise unless a stream chunk is one LangChain can read.

    Chunks with `"choices": []` (usage, keep-alives) are valid. An error event
    normally never gets here (the SDK raises it as `openai.APIError`, see
    `_gateway.translate_error`); when one does, the provider's error is raised.

    Raises:
        ResponseFormatError: the chunk is not a chat-completion chunk.
        Exception: the provider's error, for an error object.
    """
    if not isinstance(chunk, _MAP):
        raise _malformed_chunk(model, f"a {type(chunk).__name__}", chunk)
    error = chunk.get("error")
    if error:
        raise provider_error(error, model, base_url=base_url)
    usage = chunk.get("usage")
    if usage is not None and not isinstance(usage, _MAP):
        raise _malformed_chunk(model, "'usage' is not an object", chunk)
    choices = chunk.get("choices")
    if not choices:
        return
    if not isinstance(choices, list):
        raise _malformed_chunk(model, "'choices' is not a list", chunk)
    for choice in choices:
        problem = _choice_problem(choice)
        if problem is not None:
            raise _malformed_chunk(model, problem, chunk)


def _choice_problem(choice: Any) -> str | None:
    """What makes one choice of a chunk unreadable (`None`: nothing)."""
    if not isinstance(choice, _MAP) or "delta" not in choice:
        return "its choice has no 'delta'"
    if not _is_index(choice.get("index")):
        return "its choice's 'index' is not an integer"
    logprobs = choice.get("logprobs")
    if logprobs is not None and not (
        isinstance(logprobs, _MAP) and isinstance(logprobs.get("content") or [], list)
    ):
        return "its choice's 'logprobs' are malformed"
    delta = choice["delta"]
    if delta is None:
        return None
    if not isinstance(delta, _MAP):
        return "its 'delta' is not an object"
    content = delta.get("content")
    if content is not None and not isinstance(content, (str, list)):
        return "its content is not text"
    role = delta.get("role")
    if role is not None and not isinstance(role, str):
        return "its 'role' is not text"
    calls = delta.get("tool_calls")
    if calls is not None and not (
        isinstance(calls, list) and all(_is_tool_delta(c) for c in calls)
    ):
        return "its 'tool_calls' are malformed"
    return None


def _is_index(value: Any) -> bool:
    return value is None or type(value) is int


def _is_tool_delta(call: Any) -> bool:
    """A tool call's piece: an index, an object `function`, text name and arguments."""
    if not isinstance(call, _MAP) or not _is_index(call.get("index")):
        return False
    fn = call.get("function", {})
    return isinstance(fn, _MAP) and all(
        isinstance(fn.get(key), (str, type(None))) for key in ("name", "arguments")
    )


def _malformed_chunk(model: str, problem: str, chunk: Any) -> ResponseFormatError:
    sent = f"a stream chunk for model {model!r} that is not a chat-completion chunk"
    return _unusable(f"{sent} ({problem})", model, chunk)


def unreadable(exc: BaseException, reply: Any, model: str) -> ResponseFormatError:
    """A reply LangChain failed to read (one of `READ_ERRORS`), as a format error.

    Raise it `from exc`.
    """
    return ResponseFormatError(
        f"The gateway sent a reply for model {model!r} that could not be read "
        f"({type(exc).__name__}: {exc}). {_HINT}",
        model=model,
        body=_excerpt(reply),
    )


def _excerpt(reply: Any) -> Any:
    """What to keep of a reply for an error's `body_excerpt`."""
    if _is_object(reply) and not isinstance(reply, Mapping):
        try:
            return reply.model_dump(exclude_unset=True, warnings=False)
        except Exception:  # an excerpt is best effort
            return repr(reply)
    return reply
