from __future__ import annotations

import json
import warnings
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_holysheep.catalogue import ModelPrice
from langchain_holysheep.errors import PricingError
from langchain_holysheep.spend.pricing._book import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    PRICING_FILE_ENV,
    PriceBook,
    UnpricedModelWarning,
    format_money,
)
from langchain_holysheep.spend.records import TokenUsage


@pytest.fixture(autouse=True)
def _no_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PRICING_FILE_ENV, raising=False)


def test_catalogue_prices_exact() -> None:
    book = PriceBook()
    assert book.cost("gpt-4.1", TokenUsage(input=1000, output=500)) == Decimal("0.02")
    assert book.cost("claude-sonnet-4.5", TokenUsage(input=1, output=1)) == Decimal(
        "0.00009"
    )
    # aliases resolve to the same price; a dated snapshot is the same model
    assert book.price("gpt4") == book.price("gpt-4.1")
    assert book.price("gpt-4.1-2025-04-14") == book.price("gpt-4.1")


def test_unpriced_is_none_and_warns_once_never_another_models_price() -> None:
    book = PriceBook()
    with pytest.warns(UnpricedModelWarning, match="gpt-4.1-mini"):
        assert book.cost("gpt-4.1-mini", TokenUsage(10, 10)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert book.cost("gpt-4.1-mini", TokenUsage(10, 10)) is None  # no 2nd warning
        assert book.cost("totally-new", TokenUsage(1, 1), warn=False) is None
    assert not book.is_priced("gpt-4.1-mini")
    assert book.unpriced(["gpt-4.1", "gpt-4.1-mini"]) == ["gpt-4.1-mini"]


def test_cached_and_reasoning_prices() -> None:
    book = PriceBook(
        {"m": {"input": "2", "output": "8", "cached_input": "0.5", "reasoning": "16"}}
    )
    usage = TokenUsage(input=1000, output=400, cached=600, reasoning=100)
    expected = (Decimal(400) * 2 + 600 * Decimal("0.5") + 300 * 8 + 100 * 16) / 10**6
    assert book.cost("m", usage) == expected
    plain = PriceBook({"m": {"input": "2", "output": "8"}})
    assert plain.cost("m", usage) == (Decimal(1000) * 2 + 400 * 8) / 10**6


def test_inconsistent_usage_is_clamped() -> None:
    book = PriceBook({"m": {"input": "1", "output": "1", "cached_input": "0"}})
    assert book.cost("m", TokenUsage(input=10, cached=50)) == Decimal(0)


@given(
    st.lists(
        st.tuples(*[st.integers(0, 10**7)] * 4).map(
            lambda t: TokenUsage(t[0] + t[2], t[1] + t[3], t[2], t[3])
        ),
        max_size=30,
    )
)
def test_cost_is_additive_exactly(usages: list[TokenUsage]) -> None:
    book = PriceBook({"m": {"input": "1.1", "output": "4.4", "cached_input": "0.275"}})
    total = sum(usages, TokenUsage())
    assert sum((book.cost("m", u) for u in usages), Decimal(0)) == book.cost("m", total)


def _four_terms(price: ModelPrice, usage: TokenUsage) -> Decimal:
    """The cost as the documented formula writes it, term by term."""
    n_in, n_out = max(usage.input, 0), max(usage.output, 0)
    cached = min(max(usage.cached, 0), n_in)
    reasoning = min(max(usage.reasoning, 0), n_out)
    p_cached = price.input if price.cached_input is None else price.cached_input
    p_reasoning = price.output if price.reasoning is None else price.reasoning
    total = (
        (n_in - cached) * price.input
        + cached * p_cached
        + (n_out - reasoning) * price.output
        + reasoning * p_reasoning
    )
    return total / Decimal(1_000_000)


@given(
    st.tuples(*[st.integers(-10, 10**7)] * 4),
    st.sampled_from(["gpt-4.1", "claude-sonnet-4.5", "m", "cheap"]),
)
def test_cost_has_the_formulas_exact_digits(
    counts: tuple[int, int, int, int], model: str
) -> None:
    """Same value and same exponent (same text in a ledger) as the formula."""
    book = PriceBook(
        {
            "m": {"input": "1.1", "output": "4.4", "cached_input": "0.275"},
            "cheap": {"input": "0.1", "output": "0.4", "reasoning": "0.8000"},
        }
    )
    price = book.price(model)
    assert price is not None
    for usage in (TokenUsage(*counts), TokenUsage(counts[0], counts[1])):
        cost = book.cost(model, usage)
        assert cost is not None and str(cost) == str(_four_terms(price, usage))


def test_overrides_dict_and_model_price_objects() -> None:
    price = ModelPrice(Decimal(3), Decimal(4))
    book = PriceBook({"gpt-4.1": {"input": 1, "output": 2}, "x": price})
    assert book.price("gpt-4.1").input == Decimal(1)  # type: ignore[union-attr]
    assert book.price("x") is price
    assert book.max_output_tokens("gpt-4.1") == 32768  # from the catalogue
    assert book.max_output_tokens("x") == DEFAULT_MAX_OUTPUT_TOKENS
    assert "gpt-4.1" in repr(book)


def test_worst_case_cost() -> None:
    book = PriceBook({"cheap": {"input": "1", "output": "1", "max_output_tokens": 10}})
    assert book.worst_case_cost("cheap", 100) == Decimal(110) / 10**6
    assert book.worst_case_cost("gpt-4.1", 1000, 100) == Decimal("0.0104")
    # the max over routes; unpriced routes are skipped; none priced -> None
    both = book.worst_case_cost(["cheap", "gpt-4.1", "nope"], 1000, 100)
    assert both == Decimal("0.0104")
    assert book.worst_case_cost(["nope"], 10, 10) is None
    # cached/reasoning prices above the base price are used for the worst case
    odd = PriceBook({"o": {"input": 1, "output": 1, "cached_input": 5, "reasoning": 7}})
    assert odd.worst_case_cost("o", 1, 1) == Decimal(12) / 10**6


def test_settlement_and_display() -> None:
    book = PriceBook()
    assert book.settlement_currency == "CNY"
    assert book.to_settlement(Decimal("1.5")) == Decimal("1.5")
    assert book.to_settlement(None) is None
    assert format_money(Decimal("0.123456")) == "$0.1235"
    assert format_money(Decimal("1234.5"), "CNY", 2) == "¥1,234.50"
    assert format_money(None) == "unpriced"
    assert format_money(Decimal(1), "EUR", 0) == "1 EUR"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_json_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "p.json",
        json.dumps({"models": {"mine": {"input": "1.5", "output": "3"}}}),
    )
    book = PriceBook.from_file(path)
    assert book.cost("mine", TokenUsage(10**6, 0)) == Decimal("1.5")
    assert book.price("mine").source == str(path)  # type: ignore[union-attr]
    flat = _write(tmp_path, "flat.json", '{"mine": {"input": 1, "output": 2}}')
    assert PriceBook(file=flat).is_priced("mine")


def test_toml_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "p.toml",
        '[models."my-model"]\ninput = "0.5"\noutput = 2\ncached_input = 0.1\n',
    )
    book = PriceBook(file=path)
    assert book.price("my-model").cached_input == Decimal("0.1")  # type: ignore[union-attr]


def test_env_var_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "env.json", '{"models": {"e": {"input": 1, "output": 1}}}')
    monkeypatch.setenv(PRICING_FILE_ENV, str(path))
    assert PriceBook().is_priced("e")
    assert not PriceBook(use_env=False).is_priced("e")
    # explicit overrides win over the env file
    assert PriceBook({"e": {"input": 9, "output": 9}}).price("e").input == 9  # type: ignore[union-attr]
    monkeypatch.setenv(PRICING_FILE_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(PricingError, match=PRICING_FILE_ENV):
        PriceBook()


JSON_BAD_FIELD = """{
  "models": {
    "ok-model": {"input": "1", "output": "2"},
    "gpt-4.1": {
      "input": "8",
      "output": "lots"
    }
  }
}
"""


@pytest.mark.parametrize(
    ("text", "line", "field", "match"),
    [
        (JSON_BAD_FIELD, 6, "models.gpt-4.1.output", "not a number"),
        (JSON_BAD_FIELD.replace('"lots"', '"-3"'), 6, "models.gpt-4.1.output", ">= 0"),
        (
            JSON_BAD_FIELD.replace('"output": "lots"', '"ouptut": 3'),
            6,
            "models.gpt-4.1.ouptut",
            "unknown price field",
        ),
        (
            JSON_BAD_FIELD.replace(',\n      "output": "lots"', ""),
            4,
            "models.gpt-4.1.output",
            "missing 'output'",
        ),
        (JSON_BAD_FIELD.replace('"lots"', '"2",'), 7, None, "not valid JSON"),
        ('{"models": {"a": 5}}', 1, "models.a", "expected a table"),
        ('{"models": {}, "currency": "EUR"}', 1, "currency", "only USD"),
        ("[1, 2]", 1, None, "expected a table"),
    ],
)
def test_broken_json_names_line_and_field(
    tmp_path: Path, text: str, line: int, field: str | None, match: str
) -> None:
    path = _write(tmp_path, "bad.json", text)
    with pytest.raises(PricingError, match=match) as info:
        PriceBook(file=path)
    err = info.value
    assert err.source == str(path)
    assert err.line == line
    assert err.field == field
    assert f"line {line}" in str(err)


def test_broken_toml_names_line_and_field(tmp_path: Path) -> None:
    bad_syntax = _write(tmp_path, "a.toml", "[models.x]\ninput = 1\noutput = = 2\n")
    with pytest.raises(PricingError, match="line 3") as info:
        PriceBook(file=bad_syntax)
    assert info.value.line == 3
    bad_field = _write(
        tmp_path,
        "b.toml",
        '[models."a"]\ninput = 1\noutput = 2\n\n'
        '[models."b"]\ninput = 1\noutput = "x"\n',
    )
    with pytest.raises(PricingError) as info:
        PriceBook(file=bad_field)
    assert (info.value.line, info.value.field) == (7, "models.b.output")


def test_bad_dict_overrides_name_the_field() -> None:
    with pytest.raises(PricingError) as info:
        PriceBook({"m": {"input": "1", "output": None}})
    assert info.value.field == "m.output"
    assert info.value.source == "<dict>"
    with pytest.raises(PricingError, match="positive integer"):
        PriceBook({"m": {"input": 1, "output": 1, "max_output_tokens": -1}})


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_bytes(b'[models."a"]\ninput = 1\noutput = 2\nsource = "caf\xe9"\n')
    with pytest.raises(PricingError, match="not UTF-8 text") as info:
        PriceBook(file=path)
    assert (info.value.source, info.value.line) == (str(path), 4)
    assert "byte 0xe9 at column 14" in str(info.value)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.json", "")
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"m": {"input": 1, "output": 2}}).encode()
    )
    assert PriceBook(file=path).price("m") is not None
