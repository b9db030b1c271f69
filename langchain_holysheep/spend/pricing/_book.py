"""`PriceBook`: the prices used to turn token counts into money.

Catalogue list prices, overridden by the user's own (a dict, a JSON or TOML file,
or the file named by `HOLYSHEEP_PRICING_FILE`). Money is `Decimal` at full
precision; round only for display (`format_money`). A model with no known price
is *unpriced*: `cost()` returns `None` (with a one-time warning per model), never
$0 and never another model's price.

Pricing file format (JSON; TOML is the same shape)::

    {"models": {"my-model": {"input": "1.10", "output": "4.40",
                             "cached_input": "0.275", "reasoning": "4.40",
                             "max_output_tokens": 8192}}}

A top-level `"models"` table is optional (`{"my-model": {...}}` works too).
Prices are USD per 1M tokens. A broken file raises `PricingError` naming the
file, the line and the field at fault.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import warnings
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from langchain_holysheep.catalogue import (
    Catalogue,
    ModelPrice,
    default_catalogue,
)
from langchain_holysheep.errors import PricingError
from langchain_holysheep.spend.pricing._files import (
    Override,
    parse_file,
    parse_overrides,
)
from langchain_holysheep.spend.records import TokenUsage

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "PRICING_FILE_ENV",
    "PriceBook",
    "UnpricedModelWarning",
    "format_money",
]

PRICING_FILE_ENV = "HOLYSHEEP_PRICING_FILE"
#: Output tokens assumed for a worst case when neither the call nor the
#: catalogue gives a limit.
DEFAULT_MAX_OUTPUT_TOKENS = 32_768
_PER_TOKENS = Decimal(1_000_000)
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
_logger = logging.getLogger(__name__)

_Rates = tuple[ModelPrice, Decimal, Decimal, Decimal, Decimal, Decimal]
"""A price and its input, cached-input, output and reasoning rates, and `zero`."""

_warned_lock = threading.Lock()
_warned: set[str] = set()


class UnpricedModelWarning(UserWarning):
    """A call was served by a model with no known price (it is reported unpriced)."""


def _warn_unpriced(model: str) -> None:
    with _warned_lock:
        if model in _warned:
            return
        _warned.add(model)
    message = (
        f"No price is known for model {model!r}: its calls are reported as "
        "unpriced (cost None), not charged at $0 or at another model's price. "
        "Add a price with PriceBook({...}) or a pricing file in "
        f"${PRICING_FILE_ENV}."
    )
    _logger.debug(message)
    warnings.warn(message, UnpricedModelWarning, stacklevel=3)


def format_money(amount: Decimal | None, currency: str = "USD", places: int = 4) -> str:
    """Render an amount for display (`"$0.0123"`, `"¥0.0123"`, `"unpriced"`)."""
    if amount is None:
        return "unpriced"
    symbol = {"USD": "$", "CNY": "¥"}.get(currency, "")
    text = f"{amount.quantize(Decimal(1).scaleb(-places)):,}"
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


class PriceBook:
    """Prices per model: catalogue list prices plus user overrides.

    Lookup order for a model name: an override with that exact name, the
    catalogue entry (ids and aliases), then the same two for the name without a
    dated snapshot suffix (`gpt-4.1-2025-04-14` -> `gpt-4.1`: the same model).
    Anything else is unpriced.

    Args:
        overrides: prices by model, e.g. `{"m": {"input": "1", "output": "2"}}`
            (values may also be `ModelPrice`).
        file: a JSON or TOML pricing file (by extension; `.toml` is TOML).
        catalogue: the catalogue (default: the package's).
        use_env: also read the file named by `HOLYSHEEP_PRICING_FILE`.
        settlement_currency: the currency the gateway bills in.
        settlement_rate: settlement units per USD (HolySheep bills ¥1 per $1).

    Overrides apply in order: env file, then `file`, then `overrides`.

    Example:
        ```python
        book = PriceBook({"my-model": {"input": "1", "output": "2"}})
        book.cost("gpt-4.1", TokenUsage(input=1000, output=500))  # Decimal('0.020')
        ```
    """

    currency = "USD"

    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        *,
        file: str | os.PathLike[str] | None = None,
        catalogue: Catalogue | None = None,
        use_env: bool = True,
        settlement_currency: str = "CNY",
        settlement_rate: Decimal | int | str = 1,
    ) -> None:
        self.catalogue = catalogue if catalogue is not None else default_catalogue()
        self.settlement_currency = settlement_currency
        self.settlement_rate = Decimal(str(settlement_rate))
        self._overrides: dict[str, Override] = {}
        env_file = os.environ.get(PRICING_FILE_ENV) if use_env else None
        if env_file:
            self._overrides.update(self._load_file(env_file, env=True))
        if file is not None:
            self._overrides.update(self._load_file(file))
        if overrides:
            self._overrides.update(self._from_mapping(overrides))
        self._cache: dict[str, tuple[ModelPrice | None, int | None]] = {}
        self._rates: dict[int, _Rates] = {}

    # -- construction helpers ---------------------------------------------------
    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> PriceBook:
        """A price book with the overrides of one JSON/TOML file."""
        return cls(file=path, **kwargs)

    @staticmethod
    def _load_file(
        path: str | os.PathLike[str], *, env: bool = False
    ) -> dict[str, Override]:
        source = str(path)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            hint = f" (named by ${PRICING_FILE_ENV})" if env else ""
            raise PricingError(
                f"cannot read the pricing file{hint}: {exc.strerror or exc}",
                source=source,
            ) from None
        return parse_file(data, source)

    @staticmethod
    def _from_mapping(overrides: Mapping[str, Any]) -> dict[str, Override]:
        out: dict[str, Override] = {}
        plain: dict[str, Any] = {}
        for name, value in overrides.items():
            if isinstance(value, ModelPrice):
                out[name] = Override(value)
            else:
                plain[name] = value
        if plain:
            out.update(parse_overrides(plain, source="<dict>"))
        return out

    # -- lookup -----------------------------------------------------------------
    def _lookup(self, model: str) -> tuple[ModelPrice | None, int | None]:
        cached = self._cache.get(model)
        if cached is not None:
            return cached
        result: tuple[ModelPrice | None, int | None] = (None, None)
        names = [model]
        base = _SNAPSHOT.sub("", model)
        if base != model:
            names.append(base)
        for name in names:
            override = self._overrides.get(name)
            info = self.catalogue.get(name)
            if override is not None:
                mot = override.max_output_tokens or (info and info.max_output_tokens)
                result = (override.price, mot or None)
                break
            if info is not None and info.price is not None:
                result = (info.price, info.max_output_tokens)
                break
        if len(self._cache) < 10_000:
            self._cache[model] = result
        return result

    def price(self, model: str) -> ModelPrice | None:
        """The price of `model`, or `None` if it is unpriced."""
        return self._lookup(model)[0]

    def is_priced(self, model: str) -> bool:
        """Whether `model` has a known price."""
        return self._lookup(model)[0] is not None

    def max_output_tokens(self, model: str) -> int:
        """The model's output-token limit (catalogue or override), else a default."""
        known = self._lookup(model)[1]
        if known is None:
            info = self.catalogue.get(model)
            known = info.max_output_tokens if info is not None else None
        return known or DEFAULT_MAX_OUTPUT_TOKENS

    # -- money ------------------------------------------------------------------
    def cost(
        self, model: str, usage: TokenUsage, *, warn: bool = True
    ) -> Decimal | None:
        """The cost of `usage` on `model` in USD at full precision (`None`: unpriced).

        Cached input tokens are charged at the cached price when there is one,
        else at the input price; reasoning tokens at the reasoning price when
        there is one, else at the output price.
        """
        price = self.price(model)
        if price is None:
            if warn:
                _warn_unpriced(model)
            return None
        rates = self._rates.get(id(price))
        if rates is None or rates[0] is not price:
            rates = self._rates_of(price)
        _, p_in, p_cached, p_out, p_reasoning, zero = rates
        n_in, n_out = usage.input, usage.output
        cached, reasoning = usage.cached, usage.reasoning
        if not cached and not reasoning and n_in >= 0 and n_out >= 0:  # usual
            return (n_in * p_in + n_out * p_out + zero) / _PER_TOKENS
        n_in, n_out = max(n_in, 0), max(n_out, 0)
        cached = min(max(cached, 0), n_in)
        reasoning = min(max(reasoning, 0), n_out)
        total = (
            (n_in - cached) * p_in
            + cached * p_cached
            + (n_out - reasoning) * p_out
            + reasoning * p_reasoning
        )
        return total / _PER_TOKENS

    def _rates_of(self, price: ModelPrice) -> _Rates:
        """The four per-1M rates of `price`, cached by the price's identity.

        `zero` is the sum of zero tokens at the cached and reasoning rates: a
        call with neither adds it so that its cost carries the same exponent
        (the same digits) as the four-term sum.
        """
        p_cached = price.cached_input if price.cached_input is not None else price.input
        p_reasoning = price.reasoning if price.reasoning is not None else price.output
        rates = (price, price.input, p_cached, price.output, p_reasoning)
        out: _Rates = (*rates, 0 * p_cached + 0 * p_reasoning)
        if len(self._rates) < 10_000:
            self._rates[id(price)] = out
        return out

    def worst_case_cost(
        self,
        models: str | Iterable[str],
        prompt_tokens: int,
        max_tokens: int | None = None,
    ) -> Decimal | None:
        """The most one call can cost on any of `models` (its routes).

        Per route: `prompt_tokens` at the highest input-side price plus
        `max_tokens` (else the model's `max_output_tokens`) at the highest
        output-side price. Unpriced routes are skipped; `None` if none is priced
        (see `unpriced()`).
        """
        names = [models] if isinstance(models, str) else list(models)
        worst: Decimal | None = None
        for name in names:
            rates = self.worst_case_rates(name, max_tokens)
            if rates is None:
                continue
            cost = (max(prompt_tokens, 0) * rates[0] + rates[1]) / _PER_TOKENS
            worst = cost if worst is None else max(worst, cost)
        return worst

    def worst_case_rates(
        self, model: str, max_tokens: int | None = None
    ) -> tuple[Decimal, Decimal] | None:
        """What `worst_case_cost` of `model` is made of, but for the prompt.

        Returns `(input_price, output_cost)` (`None`: unpriced): the highest
        input-side price per 1M tokens, and `max_tokens` (else the model's
        `max_output_tokens`) at the highest output-side price, so that
        `worst_case_cost(model, p, max_tokens)` is
        `(max(p, 0) * input_price + output_cost) / 1_000_000`.
        """
        price = self.price(model)
        if price is None:
            return None
        in_price = max(price.input, price.cached_input or price.input)
        out_price = max(price.output, price.reasoning or price.output)
        out_tokens = (
            max_tokens if max_tokens is not None else self.max_output_tokens(model)
        )
        return in_price, max(out_tokens, 0) * out_price

    def unpriced(self, models: str | Iterable[str]) -> list[str]:
        """The names among `models` that have no known price."""
        names = [models] if isinstance(models, str) else list(models)
        return [m for m in names if not self.is_priced(m)]

    def to_settlement(self, amount: Decimal | None) -> Decimal | None:
        """`amount` (USD) in the settlement currency (CNY at ¥1 = $1 by default)."""
        return None if amount is None else amount * self.settlement_rate

    def overrides(self) -> dict[str, ModelPrice]:
        """A copy of the user overrides."""
        return {name: o.price for name, o in self._overrides.items()}

    def __repr__(self) -> str:
        return (
            f"PriceBook(catalogue={len(self.catalogue)} models, "
            f"overrides={sorted(self._overrides)})"
        )
