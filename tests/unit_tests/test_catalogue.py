from decimal import Decimal

import pytest

from langchain_holysheep import UnknownModelError, default_catalogue
from langchain_holysheep.catalogue import catalogue_from_dict
from langchain_holysheep.errors import PricingError


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("gpt4", "gpt-4.1"),
        ("gpt-4", "gpt-4.1"),
        ("GPT-4.1", "gpt-4.1"),
        ("claude", "claude-sonnet-4.5"),
        ("sonnet", "claude-sonnet-4.5"),
        ("deepseek-v3.2", "deepseek-v3.2"),
    ],
)
def test_aliases_resolve(alias: str, canonical: str) -> None:
    assert default_catalogue().check(alias) == canonical


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("gpt4.1", "gpt-4.1"),
        ("gpt-4.1-turbo", "gpt-4.1"),
        ("gtp-4.1", "gpt-4.1"),
        ("claude-sonet-4.5", "claude-sonnet-4.5"),
        ("deepseek-v3.2-chat", "deepseek-v3.2"),
    ],
)
def test_likely_typos_fail_with_suggestion(typo: str, expected: str) -> None:
    with pytest.raises(UnknownModelError) as info:
        default_catalogue().check(typo)
    assert expected in info.value.suggestions
    assert f"Did you mean {expected!r}" in str(info.value) or expected in str(
        info.value
    )
    assert "validate_model=False" in str(info.value)


@pytest.mark.parametrize(
    "new_id",
    ["qwen-max", "llama-3.3-70b", "gpt-5", "deepseek-v3.3", "gemini-2.5-flash-lite"],
)
def test_new_ids_that_resemble_nothing_are_accepted(new_id: str) -> None:
    assert default_catalogue().check(new_id) == new_id


def test_documented_prices_are_decimal_with_source() -> None:
    cat = default_catalogue()
    expected = {
        "gpt-4.1": ("8.00", "24.00"),
        "claude-sonnet-4.5": ("15.00", "75.00"),
        "gemini-2.5-flash": ("2.50", "10.00"),
        "deepseek-v3.2": ("0.42", "1.68"),
    }
    for model, (inp, out) in expected.items():
        price = cat.price(model)
        assert price is not None
        assert price.input == Decimal(inp) and price.output == Decimal(out)
        assert price.source and price.effective


def test_undocumented_models_are_unpriced_not_zero() -> None:
    cat = default_catalogue()
    assert cat.price("moonshot-v1-8k") is None
    assert cat.price("some-new-model") is None


def test_capabilities_and_context_windows() -> None:
    cat = default_catalogue()
    assert cat.get("moonshot-v1-8k").context_window == 8192  # type: ignore[union-attr]
    assert cat.get("claude-sonnet-4.5").capabilities.assistant_prefill  # type: ignore[union-attr]
    assert not cat.get("deepseek-v3.2").capabilities.vision  # type: ignore[union-attr]


def test_broken_price_names_the_field() -> None:
    data = {"models": [{"id": "m", "pricing": {"input": "abc", "output": "1"}}]}
    with pytest.raises(PricingError) as info:
        catalogue_from_dict(data, source="x.json")
    assert "models[0].pricing.input" in str(info.value)
    with pytest.raises(PricingError, match="missing 'output'"):
        catalogue_from_dict(
            {"models": [{"id": "m", "pricing": {"input": 1}}]}, source="x"
        )
    with pytest.raises(PricingError, match=">= 0"):
        catalogue_from_dict(
            {"models": [{"id": "m", "pricing": {"input": -1, "output": 1}}]}, source="x"
        )
