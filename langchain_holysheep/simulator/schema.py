"""Build JSON values from a JSON schema, filled from the prompt where possible.

Used for tool-call arguments and `response_format` content. Values are taken,
in order of appearance, from the prompt: numbers fill integer/number fields,
quoted text fills string fields; otherwise a field gets a sensible default
(enums take their first value, place-like fields the place named after
"in"/"at", known joke fields a joke about the prompt's topic). Deterministic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "PromptValues",
    "build_value",
    "object_keys_from_prompt",
    "schema_from_prompt",
]

_NUMBER = re.compile(r"(?<![\w.\-])-?\d+(?:\.\d+)?(?!\w)")
_QUOTED = re.compile(
    r"\"([^\"\n]{1,200})\""
    r"|(?<!\w)'([^'\n]{1,200})'(?!\w)"
    "|\u201c([^\u201d\n]{1,200})\u201d"  # curly double quotes
    "|\u2018([^\u2019\n]{1,200})\u2019"  # curly single quotes
    "|\u300c([^\u300d\n]{1,200})\u300d"  # CJK corner brackets
)
_PLACE = re.compile(
    r"\b(?:in|at|near|for|from|to)\s+((?:[A-Z][\w.'-]*)(?:(?:\s+|,\s*)[A-Z][\w.'-]*)*)"
)
_CAPITAL = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]{2,})\b")
_ABOUT = re.compile(r"\babout\s+(?:the\s+|a\s+|an\s+)?([^\W\d_][\w-]*)", re.IGNORECASE)
_IDENT = re.compile(r"^[A-Za-z_][\w\- ]{0,39}$")
_PLACE_NAMES = ("location", "city", "place", "country", "region", "address", "where")
_MAX_DEPTH = 8


class PromptValues:
    """Values found in a prompt, handed out in order of appearance."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.numbers: list[str] = [m.group(0) for m in _NUMBER.finditer(text)]
        self.strings: list[str] = [
            next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(text)
        ]
        place = _PLACE.search(text)
        self.place: str | None = place.group(1).rstrip(".,") if place else None
        self.capitals: list[str] = [
            w
            for w in _CAPITAL.findall(text)
            if w not in ("The", "What", "Use", "Please")
        ]
        about = _ABOUT.search(text)
        words = re.findall(r"[^\W\d_]{3,}", text)
        self.topic: str = (
            about.group(1).rstrip(".?!") if about else (words[-1] if words else "sheep")
        )

    def number(self) -> str | None:
        """The next number in the prompt (as written), or `None`."""
        return self.numbers.pop(0) if self.numbers else None

    def string(self) -> str | None:
        """The next quoted string in the prompt, or `None`."""
        return self.strings.pop(0) if self.strings else None

    def snippet(self, words: int = 8) -> str:
        """The prompt's first `words` words."""
        return " ".join(self.text.split()[:words])


def _resolve(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    seen = 0
    while isinstance(schema, Mapping) and "$ref" in schema and seen < _MAX_DEPTH:
        ref = schema["$ref"]
        node: Any = root
        if isinstance(ref, str) and ref.startswith("#"):
            for part in ref.lstrip("#/").split("/"):
                node = node.get(part) if isinstance(node, Mapping) and part else node
        schema = node if isinstance(node, Mapping) else {}
        seen += 1
    return schema if isinstance(schema, Mapping) else {}


def _schema_type(schema: Mapping[str, Any]) -> str | None:
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    if t is None:
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
    return t if isinstance(t, str) else None


def _string_for(name: str, schema: Mapping[str, Any], values: PromptValues) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2025-01-01T00:00:00Z"
    if fmt == "date":
        return "2025-01-01"
    if fmt in ("email", "idn-email"):
        return "user@example.com"
    if fmt in ("uri", "url"):
        return "https://example.com"
    quoted = values.string()
    if quoted is not None:
        return quoted
    place = values.place
    lname = name.lower()
    if place and any(p in lname for p in _PLACE_NAMES):
        return place
    topic = values.topic
    if "setup" in lname:
        return f"Why did the {topic} sit on the computer?"
    if "punchline" in lname:
        return f"Because the {topic} wanted to keep an eye on the mouse!"
    if values.capitals:
        return values.capitals.pop(0)
    if lname in ("answer", "summary", "text", "content", "response", "reply", "result"):
        return f"A simulated answer about {topic}."
    return f"{name or 'value'} for {values.snippet(6) or topic}"


def build_value(
    schema: Any,
    values: PromptValues,
    *,
    name: str = "",
    root: Mapping[str, Any] | None = None,
    depth: int = 0,
) -> Any:
    """A JSON value valid against `schema` (the common subset), filled from `values`.

    Args:
        schema: a JSON schema (dict).
        values: prompt values, consumed in order.
        name: the property name the value is for (guides string defaults).
        root: the root schema, for `$ref` resolution (defaults to `schema`).
        depth: recursion depth (deep schemas bottom out in `None`).
    """
    root = root if root is not None else (schema if isinstance(schema, Mapping) else {})
    node = _resolve(schema, root)
    if depth > _MAX_DEPTH:
        return None
    if "const" in node:
        return node["const"]
    enum = node.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches:
            for branch in branches:
                b = _resolve(branch, root)
                if _schema_type(b) != "null" or len(branches) == 1:
                    return build_value(b, values, name=name, root=root, depth=depth + 1)
            return None
    kind = _schema_type(node)
    if kind == "object":
        props = node.get("properties")
        out: dict[str, Any] = {}
        if isinstance(props, Mapping):
            for key, sub in props.items():
                out[key] = build_value(
                    sub, values, name=key, root=root, depth=depth + 1
                )
        return out
    if kind == "array":
        min_items = node.get("minItems")
        count = max(1, min_items if isinstance(min_items, int) else 1)
        items = node.get("items", {})
        return [
            build_value(items, values, name=name, root=root, depth=depth + 1)
            for _ in range(count)
        ]
    if kind in ("integer", "number"):
        return _number_for(node, values, integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _string_for(name, node, values)


def _number_for(
    node: Mapping[str, Any], values: PromptValues, *, integer: bool
) -> int | float:
    found = values.number()
    value: float = float(found) if found is not None else 1.0
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    step = 1 if integer else 0
    if isinstance(low, (int, float)) and value < low:
        value = low + (step if "minimum" not in node else 0)
    if isinstance(high, (int, float)) and value > high:
        value = high - (step if "maximum" not in node else 0)
    if integer or (value == int(value) and (found is None or "." not in found)):
        return round(value)
    return value


_DECODER = json.JSONDecoder()
_KEYS_AFTER_JSON = re.compile(
    r"\bjson\b[^.\n]*?\bwith\s+(?:the\s+)?([\w ,]+?)"
    r"(?:\s+(?:keys|fields|properties|attributes))?\s*(?:[.\n]|$)",
    re.IGNORECASE,
)


def schema_from_prompt(text: str, max_tries: int = 200) -> dict[str, Any] | None:
    """The last JSON schema embedded in a prompt.

    E.g. LangChain's format instructions, whose example schema comes first.
    Looks for objects around each `"properties"` key (at most `max_tries`
    parse attempts, so long prompts stay cheap).
    """
    found = None
    tries = 0
    start = text.find('"properties"')
    while start != -1 and tries < max_tries:
        resume = start + 1
        brace = text.rfind("{", 0, start)
        while brace != -1 and tries < max_tries:
            tries += 1
            try:
                value, end = _DECODER.raw_decode(text, brace)
            except (ValueError, RecursionError):
                value, end = None, 0
            if (
                end > start  # encloses this key (not an earlier, closed object)
                and isinstance(value, dict)
                and isinstance(value.get("properties"), dict)
            ):
                found, resume = value, end  # skip the schema's nested objects
                break
            brace = text.rfind("{", 0, brace)
        start = text.find('"properties"', resume)
    return found


def object_keys_from_prompt(text: str) -> list[str]:
    """Identifier-like quoted words of a prompt, as `json_object` reply keys.

    E.g. "Return JSON with 'setup' and 'punchline' keys".
    """
    keys: list[str] = []
    for m in _QUOTED.finditer(text):
        word = next(g for g in m.groups() if g is not None)
        if _IDENT.match(word) and word not in keys:
            keys.append(word)
    if not keys:
        listed = _KEYS_AFTER_JSON.search(text)
        if listed:
            names = re.split(r",\s*(?:and\s+)?|\s+and\s+", listed.group(1).strip())
            keys = [
                n.strip()
                for n in names
                if re.fullmatch(r"[A-Za-z_]\w{0,39}", n.strip())
            ]
    return keys
