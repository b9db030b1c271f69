"""Deterministic token counting and the prompt-prefix cache.

The tokenizer is a regex, not a real BPE: Latin words (Vietnamese letters
included) are one token per 10 letters, digits one token per 3, and every other
visible character (punctuation, CJK, emoji) one token. Close enough to real
counts for billing tests, and exactly reproducible.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "PromptCache",
    "count_tokens",
    "message_text",
    "prompt_tokens",
    "split_words",
    "truncate_tokens",
]

_TOKEN = re.compile(r"[A-Za-z\u00C0-\u024F\u1E00-\u1EFF]{1,10}|\d{1,3}|\S")

#: Per-message framing overhead, like OpenAI's chat format.
MESSAGE_OVERHEAD = 4
#: Tokens charged for one image part.
IMAGE_TOKENS = 85


def count_tokens(text: str) -> int:
    """Number of tokens in `text`."""
    return len(_TOKEN.findall(text)) if text else 0


def truncate_tokens(text: str, limit: int) -> str:
    """`text` cut after its first `limit` tokens (unchanged if shorter)."""
    if limit <= 0:
        return ""
    for i, match in enumerate(_TOKEN.finditer(text), 1):
        if i == limit:
            return text[: match.end()]
    return text


_WORD = re.compile(r"\s*\S+\s*")


def split_words(text: str) -> list[str]:
    """`text` in word pieces (whitespace kept); `"".join()` gives it back."""
    return _WORD.findall(text) or ([text] if text else [])


def message_text(content: Any) -> str:
    """The text of a message `content` (string or list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    return str(content)


def _content_tokens(content: Any) -> int:
    tokens = count_tokens(message_text(content))
    if isinstance(content, list):
        tokens += IMAGE_TOKENS * sum(
            1
            for p in content
            if isinstance(p, Mapping) and p.get("type") not in (None, "text")
        )
    return tokens


def message_tokens(message: Mapping[str, Any]) -> int:
    """Tokens of one chat message, framing included."""
    tokens = MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
    name = message.get("name")
    if isinstance(name, str):
        tokens += count_tokens(name)
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                tokens += count_tokens(str(fn.get("name", ""))) + count_tokens(
                    str(fn.get("arguments", ""))
                )
    return tokens


def prompt_tokens(
    extra: str, messages: Sequence[Mapping[str, Any]]
) -> tuple[int, list[int]]:
    """Prompt tokens: `extra` (tools, response format) plus each message.

    Returns:
        The total (with 3 tokens of reply priming) and the running total after
        each message (for the prefix cache).
    """
    running = 3 + count_tokens(extra)
    prefix: list[int] = []
    for message in messages:
        running += message_tokens(message)
        prefix.append(running)
    return running, prefix


class PromptCache:
    """Prompt-prefix cache per model.

    A request's messages are hashed cumulatively (tools and response format
    first). Its cached tokens are the tokens of the longest proper prefix (all
    messages but at least the last one) that an earlier *served* request to the
    same model contained. Deterministic given the request sequence.

    Args:
        max_entries: forget everything once this many prefixes are stored.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: set[bytes] = set()
        self._max = max_entries

    @staticmethod
    def keys(model: str, extra: bytes, messages: Sequence[bytes]) -> list[bytes]:
        """Cumulative prefix keys: key `i` covers messages `0..i`."""
        h = hashlib.blake2b(digest_size=16)
        h.update(model.encode())
        h.update(b"\x00")
        h.update(extra)
        out = []
        for raw in messages:
            h.update(b"\x01")
            h.update(raw)
            out.append(h.copy().digest())
        return out

    def cached_tokens(self, keys: Sequence[bytes], prefix_tokens: Sequence[int]) -> int:
        """Tokens of the longest proper prefix already seen."""
        for i in range(len(keys) - 2, -1, -1):
            if keys[i] in self._seen:
                return prefix_tokens[i]
        return 0

    def remember(self, keys: Sequence[bytes]) -> None:
        """Record a served request's prefixes."""
        if len(self._seen) + len(keys) > self._max:
            self._seen.clear()
        self._seen.update(keys)

    def clear(self) -> None:
        """Forget everything."""
        self._seen.clear()
