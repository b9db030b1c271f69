"""Deterministic replies: text, tool calls, JSON content, and their token counts.

Same request, same reply and token counts (the prompt-prefix cache aside, which
depends on what the model was sent before).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_holysheep.simulator import wire
from langchain_holysheep.simulator.schema import (
    PromptValues,
    build_value,
    object_keys_from_prompt,
    schema_from_prompt,
)
from langchain_holysheep.simulator.tokens import (
    PromptCache,
    count_tokens,
    message_text,
    prompt_tokens,
    truncate_tokens,
)

__all__ = ["Completion", "Prompt", "ToolCall", "compose", "read_prompt"]

_OPENERS = ("Sure!", "Certainly.", "Happy to help.", "Of course.")
_CLOSERS = (
    "Let me know if you need anything else.",
    "Ask again and you will get the same answer, word for word.",
    "No real model was called to write this.",
)
_REASONING_BASE = {
    "none": 0,
    "minimal": 8,
    "low": 32,
    "medium": 96,
    "high": 256,
    "xhigh": 512,
}
_ASKS_FOR_TOOL = re.compile(r"\b(?:use|using|call|with) (?:the |a |your )?tools?\b")
_GENERIC = frozenset(
    {
        "get",
        "set",
        "the",
        "tool",
        "function",
        "create",
        "make",
        "run",
        "call",
        "find",
        "fetch",
    }
)


@dataclass(slots=True)
class Prompt:
    """What the simulator needs to know about a request's prompt."""

    messages: list[Mapping[str, Any]]
    tokens: int
    prefix_tokens: list[int]
    cache_keys: list[bytes]
    last_role: str
    last_user_text: str


@dataclass(slots=True)
class ToolCall:
    """One generated tool call (`arguments` is a JSON string)."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Completion:
    """A reply and its usage."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0


def read_prompt(
    model: str, body: Mapping[str, Any], messages: list[Mapping[str, Any]]
) -> Prompt:
    """Count a request's prompt tokens and compute its cache keys."""
    extra_parts = [body[k] for k in ("tools", "response_format") if body.get(k)]
    extra = wire.dumps(extra_parts) if extra_parts else b""
    total, prefix = prompt_tokens(extra.decode() if extra else "", messages)
    keys = PromptCache.keys(model, extra, [wire.dumps(m) for m in messages])
    last_user = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            last_user = message_text(message.get("content"))
            break
    last_role = str(messages[-1].get("role", "user")) if messages else "user"
    return Prompt(messages, total, prefix, keys, last_role, last_user)


def _text_reply(model: str, prompt: Prompt) -> str:
    if prompt.last_role == "tool":
        result = " ".join(message_text(prompt.messages[-1].get("content")).split()[:24])
        name = _tool_name_for(prompt.messages, prompt.messages[-1].get("tool_call_id"))
        return (
            f"The {name} tool returned: {result}. That is the answer to your question."
        )
    text = prompt.last_user_text.strip()
    if not text:
        return "Hello! How can I help you today?"
    seed = zlib.crc32(f"{model}\x00{text}".encode())
    snippet = " ".join(text.split()[:12])
    return (
        f"{_OPENERS[seed % len(_OPENERS)]} This is a simulated reply from {model} "
        f'on the HolySheep gateway simulator. You wrote: "{snippet}". '
        f"{_CLOSERS[(seed >> 8) % len(_CLOSERS)]}"
    )


def _tool_name_for(messages: Sequence[Mapping[str, Any]], call_id: Any) -> str:
    for message in reversed(messages):
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and call.get("id") == call_id:
                fn = call.get("function") or {}
                return str(fn.get("name", "requested"))
    return "requested"


def _functions(tools: Any) -> list[Mapping[str, Any]]:
    out = []
    for tool in tools if isinstance(tools, list) else ():
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            out.append(fn)
    return out


def _similar(part: str, word: str) -> bool:
    """Same word up to a short ending ("multiply" ~ "multiplied")."""
    if part == word:
        return True
    if len(part) < 4 or len(word) < 4:
        return False
    common = next(
        (i for i, (a, b) in enumerate(zip(part, word, strict=False)) if a != b),
        min(len(part), len(word)),
    )
    return common >= max(4, min(len(part), len(word)) - 2)


def _name_score(name: str, text_lower: str, words: set[str]) -> int:
    if name.lower() in text_lower:
        return 100
    parts = {p for p in _split_name(name) if len(p) > 2 and p not in _GENERIC}
    return sum(1 for p in parts if any(_similar(p, w) for w in words))


def _split_name(name: str) -> list[str]:
    spaced = "".join(f" {c}" if c.isupper() else c for c in name)
    return [p for p in spaced.replace("_", " ").replace("-", " ").lower().split() if p]


def _choose_tools(
    functions: list[Mapping[str, Any]], tool_choice: Any, prompt: Prompt, parallel: bool
) -> list[Mapping[str, Any]]:
    """The functions to call (empty: answer in text)."""
    if not functions or tool_choice == "none":
        return []
    if isinstance(tool_choice, Mapping):
        wanted = (tool_choice.get("function") or {}).get("name")
        return [f for f in functions if f["name"] == wanted][:1] or functions[:1]
    forced = tool_choice in ("required", "any")
    if not forced and prompt.last_role != "user":
        return []
    text_lower = prompt.last_user_text.lower()
    words = set(text_lower.replace("_", " ").split()) | {
        w.strip(".,!?;:()'\"") for w in text_lower.split()
    }
    scored = [
        (_name_score(f["name"], text_lower, words), i, f)
        for i, f in enumerate(functions)
    ]
    named = [s for s in scored if s[0] >= 100]
    if parallel and len(named) > 1:
        named.sort(key=lambda s: text_lower.index(s[2]["name"].lower()))
        return [s[2] for s in named]
    best = max(scored, key=lambda s: (s[0], -s[1]))
    if best[0] > 0 or forced or _ASKS_FOR_TOOL.search(text_lower):
        return [best[2]]
    return []


def _reasoning_tokens(
    body: Mapping[str, Any], reasoning_model: bool, prompt: Prompt
) -> int:
    effort = body.get("reasoning_effort")
    if not reasoning_model and not effort:
        return 0
    base = _REASONING_BASE.get(str(effort or "medium"), 96)
    if base == 0:
        return 0
    return base + zlib.crc32(prompt.last_user_text.encode()) % 32


def _json_content(
    response_format: Mapping[str, Any], prompt: Prompt, model: str
) -> str | None:
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        value = build_value(
            schema or {"type": "object"}, PromptValues(prompt.last_user_text)
        )
        return wire.dumps(value).decode()
    if kind == "json_object":
        everything = "\n".join(message_text(m.get("content")) for m in prompt.messages)
        schema = schema_from_prompt(everything)
        if schema is None:
            keys = object_keys_from_prompt(prompt.last_user_text)
            if not keys:
                return wire.dumps({"answer": _text_reply(model, prompt)}).decode()
            props = {k: {"type": "string"} for k in keys}
            schema = {"type": "object", "properties": props}
        values = PromptValues(prompt.last_user_text)
        return wire.dumps(build_value(schema, values)).decode()
    return None


def _call_id(prompt: Prompt, name: str, index: int) -> str:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(prompt.cache_keys[-1] if prompt.cache_keys else b"")
    digest.update(f"{name}\x00{index}".encode())
    return "call_" + digest.hexdigest()


def _tool_reply(
    chosen: list[Mapping[str, Any]], prompt: Prompt, cached_tokens: int, reasoning: int
) -> Completion:
    """Calls to the chosen functions, with arguments built from the prompt."""
    values = PromptValues(prompt.last_user_text)
    calls = []
    for i, fn in enumerate(chosen):
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        args = build_value(params, values)
        calls.append(
            ToolCall(
                _call_id(prompt, fn["name"], i),
                fn["name"],
                wire.dumps(args).decode(),
            )
        )
    used = sum(count_tokens(c.name) + count_tokens(c.arguments) for c in calls)
    return Completion(
        None,
        calls,
        "tool_calls",
        prompt.tokens,
        cached_tokens,
        used + reasoning,
        reasoning,
    )


def _cut_at_stop(content: str, stop: Any) -> str:
    """`content` up to the first of the request's stop sequences."""
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    cut = min(
        (i for s in stops if isinstance(s, str) and s and (i := content.find(s)) >= 0),
        default=-1,
    )
    return content[:cut] if cut >= 0 else content


def _content_reply(
    model: str,
    body: Mapping[str, Any],
    prompt: Prompt,
    cached_tokens: int,
    reasoning: int,
) -> Completion:
    """A text or JSON answer, cut at a stop sequence and at the token limit."""
    response_format = body.get("response_format")
    content = None
    if isinstance(response_format, Mapping):
        content = _json_content(response_format, prompt, model)
    if content is None:
        content = _text_reply(model, prompt)
    finish = "stop"
    content = _cut_at_stop(content, body.get("stop"))
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        reasoning = min(reasoning, limit)
        visible = limit - reasoning
        if count_tokens(content) > visible:
            content = truncate_tokens(content, visible)
            finish = "length"
    used = count_tokens(content) + reasoning
    return Completion(
        content, [], finish, prompt.tokens, cached_tokens, used, reasoning
    )


def compose(
    model: str,
    body: Mapping[str, Any],
    prompt: Prompt,
    *,
    reasoning_model: bool,
    cached_tokens: int = 0,
) -> Completion:
    """The reply to a request, with usage.

    Args:
        model: the requested model (echoed in the text).
        body: the request body.
        prompt: from `read_prompt`.
        reasoning_model: whether the model reasons (adds reasoning tokens).
        cached_tokens: prompt tokens served from the prefix cache.
    """
    reasoning = _reasoning_tokens(body, reasoning_model, prompt)
    functions = _functions(body.get("tools"))
    chosen = _choose_tools(
        functions,
        body.get("tool_choice"),
        prompt,
        body.get("parallel_tool_calls") is not False,
    )
    if chosen:
        return _tool_reply(chosen, prompt, cached_tokens, reasoning)
    return _content_reply(model, body, prompt, cached_tokens, reasoning)
