"""Reading what a chat-model run reported: usage, served model, attempts.

Pure functions over LangChain objects (`LLMResult`, messages) and the
`response_metadata["holysheep"]` dictionary written by `ChatHolySheep`'s router:
`{"requested_model", "served_model", "route_index", "attempts", "retries",
"fallbacks", "failures": [{"model", "error", "status", "action", "elapsed_ms"}]}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration

from langchain_holysheep.spend.records import TokenUsage

__all__ = [
    "Outcome",
    "attempt_failure",
    "error_label",
    "final_message",
    "max_tokens_of",
    "requested_model_of",
    "usage_copy",
    "usage_metadata_of",
    "usage_of",
]


_UNSET: Any = object()


def _int(value: Any) -> int:
    if type(value) is int:  # the usual case, first
        return value
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_new = object.__new__


def token_usage(n_in: int, n_out: int, cached: int, reasoning: int) -> TokenUsage:
    """A `TokenUsage` of four ints.

    Built without the frozen dataclass `__init__`, for the per-call path, as
    `make_call_record` builds records.
    """
    usage: TokenUsage = _new(TokenUsage)
    fields = usage.__dict__
    fields["input"] = n_in
    fields["output"] = n_out
    fields["cached"] = cached
    fields["reasoning"] = reasoning
    return usage


def usage_from_metadata(usage: Mapping[str, Any]) -> TokenUsage:
    """`TokenUsage` from a LangChain `usage_metadata` dict."""
    get = usage.get
    n_in, n_out = get("input_tokens"), get("output_tokens")
    in_details = get("input_token_details")
    out_details = get("output_token_details")
    cached = in_details.get("cache_read", 0) if in_details else 0
    reasoning = out_details.get("reasoning", 0) if out_details else 0
    if int is type(n_in) is type(n_out) is type(cached) is type(reasoning):
        return token_usage(n_in, n_out, cached, reasoning)  # four ints: usual
    return token_usage(_int(n_in), _int(n_out), _int(cached), _int(reasoning))


def usage_from_openai(usage: Mapping[str, Any]) -> TokenUsage:
    """`TokenUsage` from an OpenAI `usage` / `token_usage` dict."""
    get = usage.get
    prompt = get("prompt_tokens_details") or {}
    completion = get("completion_tokens_details") or {}
    return token_usage(
        _int(get("prompt_tokens")),
        _int(get("completion_tokens")),
        _int(prompt.get("cached_tokens")),
        _int(completion.get("reasoning_tokens")),
    )


def final_message(response: Any) -> Any:
    """The message of the first generation of an `LLMResult` (or `None`)."""
    generations = getattr(response, "generations", None) or []
    for batch in generations:
        for gen in batch or ():
            message = getattr(gen, "message", None)
            if message is not None:
                return message
    return None


def usage_of(response: Any, message: Any = _UNSET) -> TokenUsage | None:
    """The billed usage of a run's result, or `None` if it reports none.

    Prefers the message's `usage_metadata` (also set on streamed results with
    `stream_usage`), else `llm_output["token_usage"]`. `message` is the
    result's `final_message`, when the caller has it already.
    """
    if message is _UNSET:
        message = final_message(response)
    usage = getattr(message, "usage_metadata", None)
    if usage:
        return usage_from_metadata(usage)
    llm_output = getattr(response, "llm_output", None) or {}
    token_usage = (
        llm_output.get("token_usage") if isinstance(llm_output, Mapping) else None
    )
    if isinstance(token_usage, Mapping) and token_usage:
        return usage_from_openai(token_usage)
    return None


def usage_copy(usage: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a `usage_metadata` dict, its detail dicts included."""
    return {k: dict(v) if type(v) is dict else v for k, v in usage.items()}


def usage_metadata_of(response: Any) -> tuple[str, UsageMetadata] | None:
    """`(model_name, usage_metadata)` of a run's answer, read as LangChain reads it.

    The same reading as langchain-core's `UsageMetadataCallbackHandler`: the
    first generation's `AIMessage`, its `usage_metadata` and
    `response_metadata["model_name"]`; `None` if either is missing. The usage
    is a copy (it is summed later, when the tracker counts the call).
    """
    try:
        generation = response.generations[0][0]
    except (AttributeError, IndexError, TypeError):
        return None
    if not isinstance(generation, ChatGeneration):
        return None
    message = generation.message
    if not isinstance(message, AIMessage):
        return None
    usage = message.usage_metadata
    model_name = message.response_metadata.get("model_name")
    if not usage or not model_name:
        return None
    return str(model_name), usage_copy(usage)  # type: ignore[return-value]


def requested_model_of(
    params: Mapping[str, Any], metadata: Mapping[str, Any] | None
) -> str:
    """The model a run asked for, from its invocation params or metadata."""
    for key in ("model", "model_name", "model_id", "deployment_name"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    value = (metadata or {}).get("ls_model_name")
    return value if isinstance(value, str) and value else "unknown"


def max_tokens_of(params: Mapping[str, Any]) -> int | None:
    """The output-token limit in a run's invocation params, if any."""
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def error_label(error: BaseException | str | None, status: Any = None) -> str | None:
    """A short label for a failed attempt: the error class and status code."""
    if error is None:
        return None
    name = error if isinstance(error, str) else type(error).__name__
    if status is None and isinstance(error, BaseException):
        status = getattr(error, "status_code", None) or getattr(error, "status", None)
    return f"{name} ({status})" if isinstance(status, int) else name


@dataclass(frozen=True)
class Outcome:
    """One failed attempt read from a custom event or the failures list."""

    model: str
    error: str | None
    elapsed_ms: float | None
    route_index: int | None = None
    delivered_chars: int = 0
    """Characters a failed streamed attempt delivered (it was billed)."""


def attempt_failure(data: Any) -> Outcome | None:
    """A failed attempt from a `holysheep_attempt` event or a `failures` entry.

    Returns `None` for a successful attempt or unreadable data.
    """
    if not isinstance(data, Mapping):
        return None
    outcome = data.get("outcome")
    if outcome in ("ok", "success") or (outcome is None and not data.get("error")):
        return None
    model = data.get("model") or data.get("served_model")
    if not isinstance(model, str) or not model:
        return None
    elapsed = data.get("elapsed_ms")
    route = data.get("route_index")
    delivered = data.get("delivered_chars")
    return Outcome(
        model=model,
        error=error_label(str(data.get("error") or "error"), data.get("status")),
        elapsed_ms=float(elapsed) if isinstance(elapsed, (int, float)) else None,
        route_index=route if isinstance(route, int) else None,
        delivered_chars=delivered if isinstance(delivered, int) else 0,
    )


def failures_of(holysheep: Mapping[str, Any]) -> list[Outcome]:
    """The failed attempts listed in `response_metadata["holysheep"]`."""
    raw = holysheep.get("failures")
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return []
    out = []
    for item in raw:
        if isinstance(item, Mapping):
            failure = attempt_failure({"error": "error", **item})
            if failure is not None:
                out.append(failure)
    return out
