"""`Route`: one chat model the router may call, with its own limits and policies.

A route wraps any `BaseChatModel`. Its id, base URL, context window and
capabilities are read from the model and the package catalogue when known; a
`BaseChatOpenAI` route gets a copy of its OpenAI client with the SDK's own
retries turned off (ours are on: attempts never multiply).

`Requirements` describes what one request needs (tools, structured output,
vision, an estimated prompt size) so the router can skip routes that cannot
serve it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from langchain_holysheep.catalogue import Capabilities, default_catalogue
from langchain_holysheep.resilience._breaker import BreakerKey
from langchain_holysheep.resilience._retry import RetryPolicy

__all__ = [
    "Requirements",
    "Route",
    "estimate_tokens",
    "sdk_retries",
    "without_sdk_retries",
]

_CHARS_PER_TOKEN = 4.0
_TOKENS_PER_MESSAGE = 4


def _model_id(model: BaseChatModel) -> str:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def _base_url(model: BaseChatModel) -> str:
    for attr in ("openai_api_base", "base_url", "api_base"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value.rstrip("/")
    return ""


def sdk_retries(model: BaseChatModel) -> int:
    """Retries the model's own SDK client makes (OpenAI's default is 2)."""
    if not hasattr(model, "root_client") and not hasattr(model, "max_retries"):
        return 0
    value = getattr(model, "max_retries", None)
    if value is None:
        return 2 if hasattr(model, "root_client") else 0
    return int(value)


def without_sdk_retries(model: BaseChatModel) -> BaseChatModel:
    """A shallow copy of a `BaseChatOpenAI` whose OpenAI clients never retry.

    Other models are returned unchanged. The copy shares the HTTP connection
    pools (`with_options` copies the client, not the pool).
    """
    root = getattr(model, "root_client", None)
    root_async = getattr(model, "root_async_client", None)
    if (root is None and root_async is None) or sdk_retries(model) == 0:
        return model
    clone = model.model_copy()
    object.__setattr__(clone, "max_retries", 0)
    if root is not None:
        new_root = root.with_options(max_retries=0)
        object.__setattr__(clone, "root_client", new_root)
        object.__setattr__(clone, "client", new_root.chat.completions)
    if root_async is not None:
        new_async = root_async.with_options(max_retries=0)
        object.__setattr__(clone, "root_async_client", new_async)
        object.__setattr__(clone, "async_client", new_async.chat.completions)
    return clone


@dataclass(frozen=True)
class Route:
    """A chat model the router can call, and how.

    Args:
        model: the chat model (a `ChatHolySheep` clone for a gateway model id, a
            `ChatOpenAI` against a provider or a local vLLM, any `BaseChatModel`).
        name: the model id reported in metadata (default: read from `model`).
        base_url: the server's URL (default: read from `model`).
        is_gateway: a HolySheep gateway route (shares the gateway-wide breaker;
            skipped when `HOLYSHEEP_ENABLED=false`; 401/403 stop the call).
        timeout: per-attempt request timeout, seconds.
        first_token_timeout: streams: time allowed until the first content.
        stall_timeout: streams: longest gap allowed between chunks.
        retry: this route's retry policy (default: the router's).
        breaker_key: circuit-breaker key (default `(base_url, name)`).
        context_window: tokens (default: from the catalogue when known).
        capabilities: tools, structured output, vision, assistant prefill
            (default: from the catalogue; unknown models are assumed capable,
            without prefill).

    Example:
        ```python
        Route.of(ChatOpenAI(model="gpt-4.1", base_url=..., max_retries=0),
                 timeout=30, is_gateway=True)
        ```
    """

    model: BaseChatModel
    name: str = ""
    base_url: str = ""
    is_gateway: bool = False
    timeout: float | None = None
    first_token_timeout: float | None = None
    stall_timeout: float | None = None
    retry: RetryPolicy | None = None
    breaker_key: BreakerKey | None = None
    context_window: int | None = None
    capabilities: Capabilities | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model: BaseChatModel, **settings: Any) -> Route:
        """A route for `model`, its id, URL, window and capabilities filled in.

        The OpenAI SDK's own retries are turned off on a copy of the model.
        """
        name = settings.pop("name", None) or _model_id(model)
        base_url = settings.pop("base_url", None) or _base_url(model)
        info = default_catalogue().get(name)
        if info is not None:
            settings.setdefault("context_window", info.context_window)
            settings.setdefault("capabilities", info.capabilities)
        return cls(
            model=without_sdk_retries(model), name=name, base_url=base_url, **settings
        )

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", _model_id(self.model))
        if not self.base_url:
            object.__setattr__(self, "base_url", _base_url(self.model))
        if self.breaker_key is None:
            object.__setattr__(self, "breaker_key", (self.base_url, self.name))

    @property
    def key(self) -> BreakerKey:
        """The circuit-breaker / rate-limit key."""
        assert self.breaker_key is not None
        return self.breaker_key

    @property
    def supports_prefill(self) -> bool:
        """Whether the model continues a trailing assistant message."""
        return bool(self.capabilities and self.capabilities.assistant_prefill)

    @property
    def passes_timeout(self) -> bool:
        """Whether per-request timeouts can be passed as a `timeout=` kwarg.

        OpenAI clients can (`root_client`), and so can any route model that
        says so with `passes_timeout = True` (e.g. a raw wire endpoint).
        """
        model = self.model
        return hasattr(model, "root_client") or getattr(model, "passes_timeout", False)

    def with_settings(self, **changes: Any) -> Route:
        """A copy with some settings changed."""
        return replace(self, **changes)

    def cannot_serve(self, req: Requirements) -> str | None:
        """Why this route cannot serve `req`, or `None` if it can."""
        caps = self.capabilities
        if caps is not None:
            if req.tools and not caps.tools:
                return "no tool calling"
            if req.structured_output and not caps.structured_output:
                return "no structured output"
            if req.vision and not caps.vision:
                return "no image input"
        window = self.context_window
        if window is not None and req.prompt_tokens > window:
            return (
                f"context window {window} < estimated prompt {req.prompt_tokens} tokens"
            )
        if (
            window is not None
            and req.min_context is not None
            and window < req.min_context
        ):
            return f"context window {window} not larger than the one that overflowed"
        return None


@dataclass(frozen=True)
class Requirements:
    """What a request needs from a route."""

    tools: bool = False
    structured_output: bool = False
    vision: bool = False
    prompt_tokens: int = 0
    max_tokens: int = 0
    min_context: int | None = None

    @classmethod
    def of(
        cls,
        messages: Sequence[BaseMessage | Mapping[str, Any]],
        kwargs: Mapping[str, Any],
    ) -> Requirements:
        """Read tools / response format / images / size from a request.

        `messages` are LangChain messages or OpenAI-wire message dicts.
        """
        fmt = kwargs.get("response_format")
        structured = isinstance(fmt, Mapping) and fmt.get("type") == "json_schema"
        if fmt is not None and not isinstance(fmt, Mapping):
            structured = True  # a pydantic class: parsed structured output
        max_tokens = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens")
        return cls(
            tools=bool(kwargs.get("tools") or kwargs.get("functions")),
            structured_output=structured,
            vision=any(_has_image(_content(m)) for m in messages),
            prompt_tokens=estimate_tokens(messages, kwargs),
            max_tokens=int(max_tokens) if isinstance(max_tokens, int) else 0,
        )

    @property
    def rate_tokens(self) -> int:
        """Tokens to reserve against a tokens-per-minute limit."""
        return self.prompt_tokens + self.max_tokens


def _content(message: Any) -> Any:
    """A message's content (a LangChain message, or a wire message dict)."""
    if isinstance(message, Mapping):
        return message.get("content")
    return message.content


def _tool_calls(message: Any) -> Any:
    if isinstance(message, Mapping):
        return message.get("tool_calls")
    return getattr(message, "tool_calls", None)


def _has_image(content: Any) -> bool:
    if isinstance(content, str):
        return False
    for block in content or ():
        if isinstance(block, Mapping) and block.get("type") in (
            "image_url",
            "image",
            "input_image",
        ):
            return True
    return False


def _text_len(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    total = 0
    for block in content or ():
        if isinstance(block, str):
            total += len(block)
        elif isinstance(block, Mapping):
            text = block.get("text")
            if isinstance(text, str):
                total += len(text)
    return total


def estimate_tokens(
    messages: Sequence[BaseMessage | Mapping[str, Any]], kwargs: Mapping[str, Any]
) -> int:
    """A cheap prompt-size estimate (~4 characters per token), no tokenizer."""
    chars = 0
    for m in messages:
        chars += _text_len(_content(m))
        calls = _tool_calls(m)
        if calls:
            chars += len(json.dumps(calls, default=str))
    tools = kwargs.get("tools")
    if tools:
        chars += len(json.dumps(tools, default=str))
    return int(chars / _CHARS_PER_TOKEN) + _TOKENS_PER_MESSAGE * len(messages)
