"""The model catalogue: ids, aliases, context windows, capabilities and list prices.

The data lives in `langchain_holysheep/data/models.json`: each price carries its
source and date, and each model's context window, output limit and capabilities
carry the provider page they were checked against and when (`spec_source`).
`default_catalogue()` loads it once per process.

Example:
    ```python
    from langchain_holysheep.catalogue import default_catalogue

    cat = default_catalogue()
    cat.resolve("sonnet")             # 'claude-sonnet-4.5'
    cat.get("gpt-4.1").context_window # 1047576
    cat.check("gpt4.1")               # UnknownModelError: did you mean gpt-4.1?
    cat.profile("gpt-4.1")["max_input_tokens"]  # 1047576 (a LangChain profile)
    ```
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, cast

from langchain_holysheep.errors import PricingError, UnknownModelError

if TYPE_CHECKING:
    from langchain_core.language_models.model_profile import ModelProfile

__all__ = [
    "Capabilities",
    "Catalogue",
    "ModelInfo",
    "ModelPrice",
    "default_catalogue",
]


@dataclass(frozen=True)
class Capabilities:
    """What a model can serve through the gateway's chat-completions API."""

    tools: bool = True
    structured_output: bool = False
    vision: bool = False
    assistant_prefill: bool = False


@dataclass(frozen=True)
class ModelPrice:
    """List prices per 1M tokens, as `Decimal`.

    `cached_input` and `reasoning` are `None` when the source gives no separate
    price: cached input tokens are then charged at `input`, reasoning tokens at
    `output` (both are part of the billed prompt / completion counts).
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    reasoning: Decimal | None = None
    currency: str = "USD"
    source: str = ""
    effective: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """One catalogue entry.

    Attributes:
        context_window: tokens of prompt and output together.
        max_output_tokens: the most tokens one reply can hold (reasoning
            included): the worst case a budget reserves for a call.
        spec_source: the provider page the limits and capabilities were
            checked against; `spec_checked` is when (ISO date).
    """

    id: str
    provider: str
    aliases: tuple[str, ...] = ()
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    price: ModelPrice | None = None
    reasoning: bool = False
    spec_source: str = ""
    spec_checked: str = ""


def model_profile(info: ModelInfo) -> ModelProfile:
    """The LangChain `ModelProfile` fields the catalogue knows for one model."""
    caps = info.capabilities
    profile: dict[str, Any] = {
        "text_inputs": True,
        "text_outputs": True,
        "image_inputs": caps.vision,
        "tool_calling": caps.tools,
        "structured_output": caps.structured_output,
        "reasoning_output": info.reasoning,
    }
    if info.context_window is not None:
        profile["max_input_tokens"] = info.context_window
    if info.max_output_tokens is not None:
        profile["max_output_tokens"] = info.max_output_tokens
    return cast("ModelProfile", profile)


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _only_version_chars(a: str, b: str) -> bool:
    """True if `a` and `b` differ only in digits and dots (a version bump)."""
    matcher = difflib.SequenceMatcher(None, a, b)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        changed = a[i1:i2] + b[j1:j2]
        if not re.fullmatch(r"[0-9.\-]+", changed):
            return False
    return True


class Catalogue:
    """An immutable set of `ModelInfo` with alias resolution and typo detection.

    Args:
        models: the entries.
        currency: the currency of the list prices.
    """

    def __init__(self, models: Iterable[ModelInfo], *, currency: str = "USD") -> None:
        self._models: dict[str, ModelInfo] = {}
        self._aliases: dict[str, str] = {}
        self.currency = currency
        for info in models:
            self._models[info.id] = info
        for info in self._models.values():
            for alias in info.aliases:
                self._aliases[alias.lower()] = info.id
        self._variant_words = {
            part
            for mid in self._models
            for part in mid.split("-")[1:]
            if part.isalpha() and len(part) > 2
        }

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.resolve(name) is not None

    def __iter__(self) -> Any:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def model_ids(self) -> list[str]:
        """Return the canonical ids, in catalogue order."""
        return list(self._models)

    def aliases(self) -> dict[str, str]:
        """Return a copy of the alias table (alias -> canonical id)."""
        return dict(self._aliases)

    def resolve(self, name: str) -> str | None:
        """Return the canonical id for an id or alias, or `None` if unknown."""
        if name in self._models:
            return name
        lowered = name.strip().lower()
        if lowered in self._models:
            return lowered
        return self._aliases.get(lowered)

    def get(self, name: str) -> ModelInfo | None:
        """Return the entry for an id or alias, or `None` if unknown."""
        resolved = self.resolve(name)
        return None if resolved is None else self._models[resolved]

    def suggest(self, name: str) -> list[str]:
        """Known ids that an unknown `name` is probably a typo of (may be empty).

        A name counts as a likely typo when it equals a known id or alias up to
        case and punctuation (`gpt4.1`), when it is very close to one and the
        difference is not just a version number (`gtp-4.1`), or when it is a known
        id with a variant suffix that no catalogue model has (`gpt-4.1-turbo`).
        New ids that resemble nothing known are not typos.
        """
        lowered = name.strip().lower()
        names = {**{mid.lower(): mid for mid in self._models}, **self._aliases}
        norm = _normalise(lowered)
        exact = sorted({mid for key, mid in names.items() if _normalise(key) == norm})
        if exact:
            return exact
        out: list[str] = []
        for key in difflib.get_close_matches(lowered, list(names), n=3, cutoff=0.85):
            if lowered.startswith(key + "-") or _only_version_chars(lowered, key):
                continue  # a new variant or version of a known model, not a typo
            if names[key] not in out:
                out.append(names[key])
        base, _, suffix = lowered.rpartition("-")
        if base and suffix in self._variant_words and base in names:
            family = base.split("-")[0]
            related = [m for m in self._models if m.endswith("-" + suffix)]
            related += [m for m in self._models if m.startswith(names[base] + "-")]
            out = [names[base]] + [
                m for m in related if m.split("-")[0] == family and m != names[base]
            ]
        return list(dict.fromkeys(out))[:3]

    def check(self, name: str) -> str:
        """Resolve `name`, or raise `UnknownModelError` if it looks like a typo.

        Returns:
            The canonical id, or `name` unchanged when it is unknown but resembles
            nothing known (the gateway adds models often).
        """
        resolved = self.resolve(name)
        if resolved is not None:
            return resolved
        suggestions = self.suggest(name)
        if suggestions:
            raise UnknownModelError(name, suggestions)
        return name

    def price(self, name: str) -> ModelPrice | None:
        """The list price of a model, or `None` if the catalogue has none."""
        info = self.get(name)
        return None if info is None else info.price

    def profile(self, name: str) -> ModelProfile | None:
        """The LangChain model profile of an id or alias, or `None` if unknown.

        Built from the catalogue only (context window, output limit,
        capabilities), so it describes what the gateway serves under that id.
        """
        info = self.get(name)
        return None if info is None else model_profile(info)


def _decimal(value: Any, *, source: str, field_path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PricingError(
            f"expected a number or numeric string, got {value!r}",
            source=source,
            field=field_path,
        )
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise PricingError(
            f"{value!r} is not a number", source=source, field=field_path
        ) from None
    if not result.is_finite() or result < 0:
        raise PricingError(
            f"price must be a finite number >= 0, got {value!r}",
            source=source,
            field=field_path,
        )
    return result


def parse_price(
    raw: Mapping[str, Any],
    *,
    source: str,
    field_path: str,
    sources: Mapping[str, Mapping[str, str]] | None = None,
) -> ModelPrice:
    """Build a `ModelPrice` from a mapping such as `{"input": "8", "output": "24"}`.

    Raises:
        PricingError: naming the field at fault.
    """
    if not isinstance(raw, Mapping):
        raise PricingError("expected an object", source=source, field=field_path)
    for required in ("input", "output"):
        if required not in raw:
            raise PricingError(
                f"missing {required!r} (USD per 1M tokens)",
                source=source,
                field=f"{field_path}.{required}",
            )
    optional = {}
    for key in ("cached_input", "reasoning"):
        if raw.get(key) is not None:
            optional[key] = _decimal(
                raw[key], source=source, field_path=f"{field_path}.{key}"
            )
    src_key = str(raw.get("source", ""))
    meta = (sources or {}).get(src_key, {})
    return ModelPrice(
        input=_decimal(raw["input"], source=source, field_path=f"{field_path}.input"),
        output=_decimal(
            raw["output"], source=source, field_path=f"{field_path}.output"
        ),
        currency=str(raw.get("currency", "USD")),
        source=str(meta.get("title", src_key)),
        effective=str(raw.get("effective", meta.get("date", ""))),
        **optional,
    )


def catalogue_from_dict(data: Mapping[str, Any], *, source: str) -> Catalogue:
    """Build a `Catalogue` from the parsed JSON document."""
    sources = data.get("sources", {})
    entries = []
    for i, raw in enumerate(data.get("models", [])):
        caps = Capabilities(**raw.get("capabilities", {}))
        spec = raw.get("spec_source") or {}
        price = None
        if raw.get("pricing") is not None:
            price = parse_price(
                raw["pricing"],
                source=source,
                field_path=f"models[{i}].pricing",
                sources=sources,
            )
        entries.append(
            ModelInfo(
                id=raw["id"],
                provider=raw.get("provider", ""),
                aliases=tuple(raw.get("aliases", ())),
                context_window=raw.get("context_window"),
                max_output_tokens=raw.get("max_output_tokens"),
                capabilities=caps,
                price=price,
                reasoning=bool(raw.get("reasoning", False)),
                spec_source=str(spec.get("url", "")),
                spec_checked=str(spec.get("checked", "")),
            )
        )
    return Catalogue(entries, currency=str(data.get("currency", "USD")))


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    """The catalogue shipped with the package (loaded once per process)."""
    text = resources.files("langchain_holysheep").joinpath("data/models.json")
    return catalogue_from_dict(
        json.loads(text.read_text(encoding="utf-8")), source="data/models.json"
    )
