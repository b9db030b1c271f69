"""Settings of `ChatHolySheep` are checked (and numbers normalised) at construction."""

from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from langchain_holysheep import ChatHolySheep, ConfigurationError

KEY = SecretStr("hs-settings-test-key")


def _model(**kw: Any) -> ChatHolySheep:
    return ChatHolySheep(api_key=KEY, **kw)


@pytest.mark.parametrize(
    ("settings", "field", "shown"),
    [
        ({"timeout": "abc"}, "timeout", "'abc'"),
        ({"timeout": 0}, "timeout", "> 0"),
        ({"timeout": -1}, "timeout", "> 0"),
        ({"timeout": True}, "timeout", "True"),
        ({"timeout": float("inf")}, "timeout", "finite"),
        ({"timeout": (5, 0)}, "timeout read", "> 0"),
        ({"timeout": (5,)}, "timeout", "(connect, read)"),
        ({"timeout": httpx2.Timeout(10.0, connect=0)}, "timeout.connect", "> 0"),
        ({"request_timeout": "soon"}, "timeout", "'soon'"),
        ({"model": 123}, "model", "123 (int)"),
        ({"model": ""}, "model", "empty"),
        ({"model": "   "}, "model", "empty"),
        ({"model": "gpt-4.1\nmini"}, "model", "control character"),
        ({"model_name": None}, "model", "None"),
        ({"max_tokens": 0}, "max_tokens", ">= 1"),
        ({"max_tokens": -5}, "max_tokens", "-5"),
        ({"max_tokens": 1.5}, "max_tokens", "1.5"),
        ({"max_tokens": "lots"}, "max_tokens", "'lots'"),
        ({"max_tokens": True}, "max_tokens", "True"),
        ({"max_retries": -1}, "max_retries", ">= 0"),
        ({"temperature": "hot"}, "temperature", "'hot'"),
        ({"temperature": -0.1}, "temperature", "from 0 to 2"),
        ({"temperature": 2.5}, "temperature", "from 0 to 2"),
        ({"temperature": float("nan")}, "temperature", "nan"),
        ({"temperature": True}, "temperature", "True"),
        ({"deadline": "abc"}, "deadline", "'abc'"),
        ({"deadline": 0}, "deadline", "> 0"),
        ({"deadline": float("inf")}, "deadline", "None for no limit"),
        ({"first_token_timeout": "-3"}, "first_token_timeout", "'-3'"),
        ({"stall_timeout": False}, "stall_timeout", "False"),
    ],
)
def test_bad_settings_fail_at_construction_naming_the_field(
    settings: dict[str, Any], field: str, shown: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        _model(**settings)
    message = str(info.value)
    assert message.startswith(field), message
    assert shown in message, message
    assert "Pass " in message  # says what to do


@pytest.mark.parametrize(
    ("settings", "attr", "expected"),
    [
        ({"timeout": "10"}, "request_timeout", 10.0),
        ({"timeout": " 2.5 "}, "request_timeout", 2.5),
        ({"timeout": 7}, "request_timeout", 7.0),
        ({"timeout": [5, 60]}, "request_timeout", (5.0, 60.0)),
        ({"timeout": None}, "request_timeout", None),
        ({"deadline": "10"}, "deadline", 10.0),
        ({"first_token_timeout": "10"}, "first_token_timeout", 10.0),
        ({"stall_timeout": "0.5"}, "stall_timeout", 0.5),
        ({"max_tokens": "512"}, "max_tokens", 512),
        ({"max_tokens": 512.0}, "max_tokens", 512),
        ({"max_retries": "0"}, "max_retries", 0),
        ({"temperature": "0.5"}, "temperature", 0.5),
        ({"temperature": 0}, "temperature", 0.0),
        ({"model": " sonnet "}, "model_name", "claude-sonnet-4.5"),
    ],
)
def test_numeric_strings_are_converted_consistently(
    settings: dict[str, Any], attr: str, expected: Any
) -> None:
    model = _model(**settings)
    value = getattr(model, attr)
    assert value == expected and type(value) is type(expected)


def test_valid_timeout_forms_reach_the_client() -> None:
    timeout = httpx2.Timeout(10.0, connect=5.0)
    assert _model(timeout=timeout).root_client.timeout is timeout
    assert _model(timeout=(5, 60)).root_client.timeout == (5.0, 60.0)
    assert _model(timeout="30").root_client.timeout == 30.0


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X-Foo": "bad\nvalue-SECRET-1"}, "a line break"),
        ({"X-Foo": "bad\rvalue-SECRET-1"}, "a line break"),
        ({"X-Foo": "bad\x00value-SECRET-1"}, "a control character"),
        ({"X-Foo": "b\u00e1d-value-SECRET-1"}, "a non-ASCII character"),
        ({"X-Foo": "\u201cvalue-SECRET-1\u201d"}, "typographic quote"),
    ],
)
def test_unsendable_default_headers_fail_without_echoing_the_value(
    headers: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        _model(default_headers=headers)
    text = str(info.value) + repr(info.value)
    assert "default_headers['X-Foo']" in text and problem in text
    assert "SECRET-1" not in text
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_default_header_names_and_types_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="invalid header name 'X Foo'"):
        _model(default_headers={"X Foo": "v"})
    with pytest.raises(ConfigurationError, match=r"\['X-Retry'\] must be a string"):
        _model(default_headers={"X-Retry": 3})
    model = _model(default_headers={"X-Source": "batch job\t7"})
    assert model.root_client.default_headers["X-Source"] == "batch job\t7"
