"""Reading price overrides: JSON / TOML documents, validated field by field.

Errors are `PricingError`s that name the source, the line and the field at fault.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_holysheep.catalogue import ModelPrice, parse_price
from langchain_holysheep.errors import PricingError

__all__ = [
    "NotUtf8Error",
    "Override",
    "decode_utf8",
    "decode_text",
    "parse_document",
    "parse_file",
    "parse_overrides",
]

_PRICE_KEYS = frozenset(
    {
        "input",
        "output",
        "cached_input",
        "reasoning",
        "currency",
        "source",
        "effective",
        "max_output_tokens",
    }
)


@dataclass(frozen=True)
class Override:
    """One model's overriding price (and output-token limit)."""

    price: ModelPrice
    max_output_tokens: int | None = None


def _key_line(text: str, keys: Iterable[str]) -> int | None:
    """Best-effort 1-based line of the last of nested `keys` in a JSON/TOML text."""
    pos, found = 0, None
    for key in keys:
        k = re.escape(key)
        pattern = re.compile(
            rf"(?:\"{k}\"|'{k}'|(?<![\w.\-\"]){k}(?![\w\-\"]))\s*(?:[:=\].])"
        )
        match = pattern.search(text, pos)
        if match is None:
            return found
        pos = match.end()
        found = text.count("\n", 0, match.start()) + 1
    return found


class NotUtf8Error(ValueError):
    """Bytes that are not UTF-8 text; says which byte, at which line and column.

    Attributes:
        line: the 1-based line of the first byte that does not decode.
        column: its 1-based column (in bytes).
    """

    def __init__(self, line: int, column: int, byte: int) -> None:
        super().__init__(f"not UTF-8 text (byte 0x{byte:02x} at column {column})")
        self.line = line
        self.column = column


def decode_utf8(data: bytes) -> str:
    """`data` as UTF-8 text (an optional BOM dropped); else `NotUtf8Error`."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise NotUtf8Error(line, column, data[exc.start]) from None


def decode_text(data: bytes, source: str) -> str:
    """A pricing file's bytes as text (UTF-8, an optional BOM dropped).

    Raises:
        PricingError: the bytes are not UTF-8; names the line and column.
    """
    try:
        return decode_utf8(data)
    except NotUtf8Error as exc:
        raise PricingError(
            f"{exc}; save the file as UTF-8", source=source, line=exc.line
        ) from None


def _load_toml(text: str, source: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError as exc:
            raise PricingError(
                "reading TOML on Python 3.10 needs `pip install tomli` "
                "(or use a JSON pricing file)",
                source=source,
            ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise PricingError(f"not valid TOML: {exc}", source=source, line=line) from None


def parse_document(text: str, source: str, fmt: str) -> Any:
    """Parse a JSON or TOML pricing document (errors carry the line)."""
    if fmt == "toml":
        return _load_toml(text, source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PricingError(
            f"not valid JSON: {exc.msg} (column {exc.colno})",
            source=source,
            line=exc.lineno,
        ) from None


def parse_file(data: bytes, source: str) -> dict[str, Override]:
    """A pricing file's overrides: TOML when `source` ends in ".toml", else JSON."""
    text = decode_text(data, source)
    fmt = "toml" if source.lower().endswith(".toml") else "json"
    return parse_overrides(parse_document(text, source, fmt), source=source, text=text)


_Fail = Callable[[str, list[str]], PricingError]


def parse_overrides(
    data: Any, *, source: str, text: str | None = None
) -> dict[str, Override]:
    """Validate a pricing document; errors name the field (and line, given `text`)."""

    def fail(message: str, keys: list[str]) -> PricingError:
        line = _key_line(text, keys) if text is not None else None
        return PricingError(message, source=source, line=line, field=".".join(keys))

    if not isinstance(data, Mapping):
        raise PricingError(
            "expected a table of model prices, like "
            '{"models": {"my-model": {"input": "1.0", "output": "2.0"}}}',
            source=source,
            line=1 if text is not None else None,
        )
    models, prefix = _models_table(data, fail)
    return {
        str(name): _override(raw, [*prefix, str(name)], source, fail)
        for name, raw in models.items()
    }


def _models_table(data: Mapping[str, Any], fail: _Fail) -> tuple[Any, list[str]]:
    """The table of model prices (`data["models"]`, or `data` itself) and its path."""
    if "models" not in data:
        return data, []
    models, prefix = data["models"], ["models"]
    extra = sorted(set(data) - {"models", "currency", "schema_version"})
    if extra:
        raise fail(f"unknown top-level key {extra[0]!r}", [extra[0]])
    if data.get("currency", "USD") != "USD":
        raise fail("only USD prices are supported", ["currency"])
    if not isinstance(models, Mapping):
        raise fail("expected a table of model prices", prefix)
    return models, prefix


def _override(raw: Any, keys: list[str], source: str, fail: _Fail) -> Override:
    """One model's entry, validated; `keys` is its path in the document."""
    if not isinstance(raw, Mapping):
        raise fail(
            'expected a table like {"input": "1.0", "output": "2.0"} '
            "(USD per 1M tokens)",
            keys,
        )
    unknown = sorted(set(raw) - _PRICE_KEYS)
    if unknown:
        raise fail(
            f"unknown price field {unknown[0]!r}; allowed: "
            + ", ".join(sorted(_PRICE_KEYS)),
            [*keys, unknown[0]],
        )
    if raw.get("currency", "USD") != "USD":
        raise fail("only USD prices are supported", [*keys, "currency"])
    try:
        price = parse_price(raw, source=source, field_path="")
    except PricingError as exc:
        sub = (exc.field or "").lstrip(".")
        message = str(exc).split("): ", 1)[-1]
        raise fail(message, [*keys, sub] if sub else keys) from None
    mot = raw.get("max_output_tokens")
    if mot is not None and (
        isinstance(mot, bool) or not isinstance(mot, int) or mot <= 0
    ):
        raise fail("expected a positive integer", [*keys, "max_output_tokens"])
    src = str(raw.get("source") or source)
    return Override(
        ModelPrice(
            price.input,
            price.output,
            price.cached_input,
            price.reasoning,
            currency="USD",
            source=src,
            effective=price.effective,
        ),
        mot,
    )
