"""Prices: the price book (catalogue prices, overrides, pricing files)."""

from langchain_holysheep.spend.pricing._book import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    PRICING_FILE_ENV,
    PriceBook,
    UnpricedModelWarning,
    format_money,
)
from langchain_holysheep.spend.pricing._files import (
    Override,
    decode_text,
    parse_document,
    parse_file,
    parse_overrides,
)

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "Override",
    "PRICING_FILE_ENV",
    "PriceBook",
    "UnpricedModelWarning",
    "decode_text",
    "format_money",
    "parse_document",
    "parse_file",
    "parse_overrides",
]
