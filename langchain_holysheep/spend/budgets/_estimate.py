"""A cheap, deterministic over-estimate of a prompt's token count.

Budgets reserve a call's worst case *before* it is sent, so they need the prompt
size before the server counts it. Tokenizers differ per model; this estimate is
meant to be at least the real count for ordinary text:

- each run of ASCII letters counts one token per 3 letters (rounded up); English
  averages about 4 letters per token;
- each run of digits counts one token per 3 digits (rounded up);
- every other visible character (punctuation, CJK, emoji, accented letters)
  counts one token;
- each message adds 4 tokens of framing, the reply priming 3, and tools or a
  response format count as their JSON text.

Adversarial text (random base64, long runs of rare characters) can beat it; use
`estimate_prompt_tokens(..., safe=True)` (one token per UTF-8 byte, a hard upper
bound for byte-level BPE tokenizers) when the cap must hold against any input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["estimate_prompt_tokens", "estimate_text_tokens"]

MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3
IMAGE_TOKENS = 1_500  # a generous bound for one image part

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
