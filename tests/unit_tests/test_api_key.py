"""A key that cannot travel in an HTTP header is refused at construction, unseen."""

import openai
import pytest
from pydantic import SecretStr

from langchain_holysheep import ChatHolySheep, ConfigurationError
from langchain_holysheep._gateway import _models_client, resolve_api_key
from langchain_holysheep.errors import InvalidAPIKeyError
from tests._secret_scan import assert_secret_absent

# (key, a part of it that must never be shown, the kind of character named)
PASTE_ACCIDENTS = [
    ("hs-abc\ndef", "abc", "a line break"),
    ("hs-abc\r\ndef", "abc", "a line break"),
    ("hs-abc def", "abc", "a space or tab"),
    ("hs-abc\tdef", "abc", "a space or tab"),
    ("hs-abc\x00def", "abc", "a control character"),
    ("hs-abc\x7fdef", "abc", "a control character"),
    ("\u201chs-abcdef\u201d", "abcdef", "typographic quote"),
    ("hs-abc\u00a0def", "abc", "a non-ASCII space"),
    ("hs-\u00e4bc-def", "bc-def", "a non-ASCII character"),
]


@pytest.mark.parametrize(("key", "part", "problem"), PASTE_ACCIDENTS)
def test_unsendable_key_fails_at_construction_without_the_key(
    key: str, part: str, problem: str
) -> None:
    with pytest.raises(InvalidAPIKeyError) as info:
        ChatHolySheep(model="gpt-4.1", api_key=SecretStr(key))
    message = str(info.value)
    assert "HOLYSHEEP_API_KEY" in message and problem in message
    assert "given" in message
    assert isinstance(info.value, ConfigurationError)
    assert_secret_absent(info.value, part, key.strip())


@pytest.mark.parametrize(
    ("key", "part", "problem"),
    [case for case in PASTE_ACCIDENTS if "\x00" not in case[0]],  # env: no NUL
)
def test_unsendable_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, key: str, part: str, problem: str
) -> None:
    monkeypatch.setenv("HOLYSHEEP_API_KEY", key)
    with pytest.raises(InvalidAPIKeyError) as info:
        ChatHolySheep(model="gpt-4.1")
    assert "HOLYSHEEP_API_KEY environment variable" in str(info.value)
    assert problem in str(info.value)
    assert_secret_absent(info.value, part)
    with pytest.raises(InvalidAPIKeyError) as listing:  # list_models' key path
        _models_client(openai.OpenAI, None, "http://127.0.0.1:9/v1", 1.0)
    assert_secret_absent(listing.value, part)


def test_surrounding_whitespace_is_still_stripped() -> None:
    assert resolve_api_key(" \ths-abc_DEF-123\r\n").get_secret_value() == (
        "hs-abc_DEF-123"
    )
    assert resolve_api_key(SecretStr("sk-holysheep-x1")).get_secret_value() == (
        "sk-holysheep-x1"
    )
