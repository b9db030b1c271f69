"""Prompt sizes before the server counts them: a hard bound and a heuristic.

Budgets reserve a call's worst case *before* it is sent, so they need the prompt
size before the server counts it. Tokenizers differ per model.

`bound_prompt_tokens` (what budgets use by default) is an upper bound that no
byte-level BPE tokenizer can exceed: every token covers at least one UTF-8
byte, so the bytes of the serialized request bound its tokens. On top of the
bytes it adds the chat format's framing, generously:

- `BOUND_MESSAGE_OVERHEAD` (16) tokens per message (role and separators;
  OpenAI's format uses 3-4);
- `BOUND_TOOL_OVERHEAD` (32) tokens per tool or response schema (the
  provider's rendering of a schema);
- `BOUND_IMAGE_TOKENS` (8,192) per image part, the largest image any
  catalogue model bills (OpenAI high detail <= 1,445 for gpt-4o-class models,
  <= 3,779 for the patch-based minis; Anthropic ~1,600; a Gemini image is
  258 per 768 px tile), instead of the bytes of its URL; other non-text parts
  (audio, files) count their serialized bytes;
- `BOUND_REQUEST_OVERHEAD` (64) tokens per request: reply priming, and a short
  system prompt a gateway may add. A gateway that adds more must be declared
  (`Budget(..., extra_prompt_tokens=N)`).

`estimate_prompt_tokens` is the cheaper heuristic (opt in with
`Budget(..., estimate="heuristic")`), meant to be at least the real count for
ordinary text:

- each run of ASCII letters counts one token per 3 letters (rounded up); English
  averages about 4 letters per token;
- each run of digits counts one token per 3 digits (rounded up);
- every other visible character (punctuation, CJK, emoji, accented letters)
  counts one token;
- each message adds 4 tokens of framing, the reply priming 3, and tools or a
  response format count as their JSON text.

Adversarial text (random base64, long runs of rare characters) and prompts a
gateway adds on its own can beat it: that is why budgets use
`bound_prompt_tokens` unless told otherwise. (`safe=True` counts one token per
UTF-8 byte of the texts, without the bound's framing allowances.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BOUND_IMAGE_TOKENS",
    "BOUND_MESSAGE_OVERHEAD",
    "BOUND_REQUEST_OVERHEAD",
    "BOUND_TOOL_OVERHEAD",
    "bound_prompt_tokens",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
]

MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3
IMAGE_TOKENS = 1_500  # a generous estimate for one image part

BOUND_MESSAGE_OVERHEAD = 16
BOUND_TOOL_OVERHEAD = 32
BOUND_IMAGE_TOKENS = 8_192
BOUND_REQUEST_OVERHEAD = 64
_IMAGE_TYPES = frozenset({"image_url", "image", "input_image"})

_PIECE = re.compile(r"[A-Za-z]+|[0-9]+|\S")


def estimate_text_tokens(text: str, *, safe: bool = False) -> int:
    """Over-estimate the tokens of `text` (see the module docstring)."""
    if not text:
        return 0
    if safe:
        return len(text.encode("utf-8", "surrogatepass"))
    total = 0
    for piece in _PIECE.findall(text):
        n = len(piece)
        total += (n + 2) // 3 if n > 1 else 1
    return total


def _content_text(content: Any) -> tuple[str, int]:
    """The text of a message content and its number of non-text parts."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if isinstance(content, list):
        texts, others = [], 0
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") not in (None, "text"):
                    others += 1
        return "\n".join(texts), others
    return str(content), 0


def _message_parts(message: Any) -> Iterable[str]:
    """The texts of a LangChain message (or an OpenAI-style dict) that count."""
    if isinstance(message, Mapping):
        get = message.get
    else:

        def get(key: str, default: Any = None) -> Any:
            return getattr(message, key, default)

    yield str(get("name") or "")
    for call in get("tool_calls") or ():
        if isinstance(call, Mapping):
            fn = call.get("function")
            if isinstance(fn, Mapping):  # OpenAI wire format
                yield str(fn.get("name", ""))
                yield str(fn.get("arguments", ""))
            else:  # LangChain ToolCall
                yield str(call.get("name", ""))
                yield json.dumps(call.get("args", {}), ensure_ascii=False)
    extra = get("additional_kwargs") or {}
    if isinstance(extra, Mapping) and extra.get("function_call"):
        yield json.dumps(extra["function_call"], ensure_ascii=False)


def estimate_prompt_tokens(
    messages: Iterable[Any],
    *,
    tools: Any = None,
    response_format: Any = None,
    safe: bool = False,
) -> int:
    """Over-estimate the prompt tokens of a chat request.

    Args:
        messages: LangChain `BaseMessage`s or OpenAI-style message dicts.
        tools: the request's tools (counted as their JSON text), if any.
        response_format: the request's response format, if any.
        safe: count one token per UTF-8 byte (a hard upper bound).
    """
    total = REPLY_PRIMING
    for extra in (tools, response_format):
        if extra:
            text = json.dumps(extra, ensure_ascii=False, default=str)
            total += estimate_text_tokens(text, safe=safe)
    for message in messages:
        content = (
            message.get("content")
            if isinstance(message, Mapping)
            else getattr(message, "content", message)
        )
        text, others = _content_text(content)
        total += MESSAGE_OVERHEAD + estimate_text_tokens(text, safe=safe)
        total += others * IMAGE_TOKENS
        for part in _message_parts(message):
            total += estimate_text_tokens(part, safe=safe)
    return total


def _bytes(value: Any) -> int:
    if isinstance(value, str):
        if value.isascii():  # one byte per character
            return len(value)
        return len(value.encode("utf-8", "surrogatepass"))
    text = json.dumps(value, ensure_ascii=False, default=str)
    return len(text.encode("utf-8", "surrogatepass"))


def _content_bound(content: Any) -> int:
    if content is None:
        return 0
    if not isinstance(content, list):
        return _bytes(content)
    total = 0
    for part in content:
        if isinstance(part, Mapping) and part.get("type") in _IMAGE_TYPES:
            total += BOUND_IMAGE_TOKENS
        elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
            total += _bytes(part["text"])
        else:
            total += _bytes(part)
    return total


def _schemas(value: Any) -> int:
    if not value:
        return 0
    items = value if isinstance(value, list) else [value]
    return sum(BOUND_TOOL_OVERHEAD + _bytes(item) for item in items)


def bound_prompt_tokens(
    messages: Iterable[Any], *, tools: Any = None, response_format: Any = None
) -> int:
    """An upper bound on the prompt tokens of a chat request (module docstring).

    Args:
        messages: LangChain `BaseMessage`s or OpenAI-style message dicts.
        tools: the request's tools, if any.
        response_format: the request's response format (a JSON schema), if any.
    """
    total = BOUND_REQUEST_OVERHEAD + _schemas(tools) + _schemas(response_format)
    for message in messages:
        content = (
            message.get("content")
            if isinstance(message, Mapping)
            else getattr(message, "content", message)
        )
        total += BOUND_MESSAGE_OVERHEAD + _content_bound(content)
        total += _parts_bound(message)
    return total


def _parts_bound(message: Any) -> int:
    """`_bytes` of `_message_parts(message)`, summed (0 when it has none)."""
    if type(message) is dict and not (
        message.get("name")
        or message.get("tool_calls")
        or message.get("additional_kwargs")
    ):
        return 0  # its parts are one empty name
    return sum(_bytes(part) for part in _message_parts(message))
