from datetime import date
from decimal import Decimal

import pytest
from langchain_core.language_models.model_profile import ModelProfile
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from langchain_holysheep import ChatHolySheep, UnknownModelError, default_catalogue
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


# (context window, max output tokens) as the providers publish them; see each
# entry's spec_source in data/models.json.
PUBLISHED_LIMITS = {
    "gpt-4.1": (1_047_576, 32_768),
    "gpt-4.1-mini": (1_047_576, 32_768),
    "gpt-4.1-nano": (1_047_576, 32_768),
    "gpt-4o": (128_000, 16_384),
    "gpt-4o-mini": (128_000, 16_384),
    "gpt-4-turbo": (128_000, 4_096),
    "gpt-3.5-turbo": (16_385, 4_096),
    "claude-sonnet-4.5": (200_000, 64_000),
    "claude-3-5-sonnet": (200_000, 8_192),
    "gemini-2.5-flash": (1_048_576, 65_536),
    "gemini-2.5-pro": (1_048_576, 65_536),
    "gemini-2.0-flash": (1_048_576, 8_192),
    "gemini-1.5-pro": (2_097_152, 8_192),
    "deepseek-v3.2": (128_000, 8_192),
    "deepseek-reasoner": (128_000, 65_536),
    "moonshot-v1-8k": (8_192, 8_192),
    "moonshot-v1-128k": (131_072, 131_072),
    "step-2-chat": (16_000, 16_000),
}


@pytest.mark.parametrize(("model", "limits"), sorted(PUBLISHED_LIMITS.items()))
def test_published_limits_are_pinned(model: str, limits: tuple[int, int]) -> None:
    info = default_catalogue().get(model)
    assert info is not None
    assert (info.context_window, info.max_output_tokens) == limits


def test_published_capabilities_are_pinned() -> None:
    cat = default_catalogue()
    reasoner = cat.get("deepseek-reasoner")
    assert reasoner is not None and reasoner.capabilities.tools  # since V3.2
    for model in ("deepseek-v3.2", "deepseek-chat"):  # json_object only
        info = cat.get(model)
        assert info is not None and not info.capabilities.structured_output
    gpt = cat.get("gpt-4.1")
    assert gpt is not None and gpt.capabilities.structured_output


def test_every_entry_has_limits_and_a_dated_source() -> None:
    for info in default_catalogue():
        assert isinstance(info.context_window, int) and info.context_window > 0
        assert isinstance(info.max_output_tokens, int)
        assert 0 < info.max_output_tokens <= info.context_window, info.id
        assert info.spec_source.startswith("https://"), info.id
        assert date.fromisoformat(info.spec_checked), info.id


@pytest.mark.parametrize(
    "name",
    [m.id for m in default_catalogue()] + sorted(default_catalogue().aliases()),
)
def test_model_profile_agrees_with_the_catalogue(name: str) -> None:
    info = default_catalogue().get(name)
    assert info is not None
    profile = ChatHolySheep(model=name, api_key=SecretStr("hs-x")).profile
    assert profile is not None
    assert profile.get("max_input_tokens") == info.context_window
    assert profile.get("max_output_tokens") == info.max_output_tokens
    assert profile.get("tool_calling") == info.capabilities.tools
    assert profile.get("structured_output") == info.capabilities.structured_output
    assert profile.get("image_inputs") == info.capabilities.vision
    assert profile.get("reasoning_output") == info.reasoning


def test_profile_in_repr_and_user_profile_kept() -> None:
    key = SecretStr("hs-x")
    assert "'max_input_tokens': 1047576" in repr(ChatHolySheep(api_key=key))
    # an alias gets its target's profile, not that of a model of the same name
    assert ChatHolySheep(model="gpt-4", api_key=key).profile == (
        ChatHolySheep(model="gpt-4.1", api_key=key).profile
    )
    mine: ModelProfile = {"max_input_tokens": 5000}
    assert ChatHolySheep(model="gpt-4.1", api_key=key, profile=mine).profile == mine


@pytest.mark.parametrize(
    "model", [m.id for m in default_catalogue() if m.provider == "openai"]
)
def test_openai_limits_agree_with_langchain_openai_profiles(model: str) -> None:
    """A tripwire: the models.dev data bundled with langchain-openai changed."""
    info = default_catalogue().get(model)
    assert info is not None
    theirs = ChatOpenAI(model=model, api_key=SecretStr("sk-x")).profile
    assert theirs is not None
    assert theirs.get("max_input_tokens") == info.context_window
    assert theirs.get("max_output_tokens") == info.max_output_tokens
