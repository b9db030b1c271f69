import logging
import re
import traceback

import pytest
from langchain_core.load import dumps

from langchain_holysheep import (
    DEFAULT_BASE_URL,
    ChatHolySheep,
    MissingAPIKeyError,
    UnknownModelError,
)
from langchain_holysheep.catalogue import default_catalogue

SECRET = "hs-very-secret-key-123"


def test_missing_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOLYSHEEP_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="HOLYSHEEP_API_KEY"):
        ChatHolySheep(model="gpt-4.1")
    with pytest.raises(MissingAPIKeyError):
        ChatHolySheep(model="gpt-4.1", api_key="   ")


def test_key_and_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOLYSHEEP_API_KEY", f"  {SECRET}\n")
    monkeypatch.delenv("HOLYSHEEP_BASE_URL", raising=False)
    model = ChatHolySheep(model="sonnet")
    assert model.holysheep_api_key is not None
    assert model.holysheep_api_key.get_secret_value() == SECRET
    assert model.holysheep_api_base == DEFAULT_BASE_URL
    assert model.model_name == "claude-sonnet-4.5"
    assert model.stream_usage is True
    assert model.root_client.api_key == SECRET  # whitespace never reaches the wire


def _respelled_catalogue_id() -> tuple[str, str]:
    """A catalogue id with its punctuation changed, and that id.

    `Catalogue.suggest` documents the rule: a name equal to a known id up to case
    and punctuation is a likely typo, so construction rejects it. Derived from
    the catalogue in force, the name stays rejected whatever ids it gains.
    """
    catalogue = default_catalogue()
    for known in catalogue.model_ids():
        respelled = re.sub(r"[^a-zA-Z0-9]", "_", known)
        if respelled != known and catalogue.resolve(respelled) is None:
            return respelled, known
    raise AssertionError("no catalogue id has punctuation to change")


def test_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    model = ChatHolySheep(model="gpt-4.1", api_key=SECRET)
    assert SECRET not in repr(model)
    assert SECRET not in str(model)
    assert SECRET not in dumps(model)
    assert SECRET not in str(model.model_dump())
    assert SECRET not in model.model_dump_json()
    assert SECRET not in caplog.text

    typo, known = _respelled_catalogue_id()
    with pytest.raises(UnknownModelError, match=re.escape(repr(known))) as info:
        ChatHolySheep(model=typo, api_key=SECRET)
    error: BaseException | None = info.value
    while error is not None:  # the error and everything chained to it
        assert SECRET not in str(error) and SECRET not in repr(error)
        assert SECRET not in str(vars(error))
        error = error.__cause__ or error.__context__
    assert SECRET not in "".join(traceback.format_exception(info.value))
    assert SECRET not in caplog.text


def test_typo_fails_at_construction_and_override() -> None:
    with pytest.raises(UnknownModelError, match=r"Did you mean 'gpt-4\.1'"):
        ChatHolySheep(model="gpt-4.1-turbo", api_key=SECRET)
    model = ChatHolySheep(model="gpt-4.1-turbo", api_key=SECRET, validate_model=False)
    assert model.model_name == "gpt-4.1-turbo"


def test_gateway_specifics() -> None:
    model = ChatHolySheep(
        model="deepseek-v3.2", api_key=SECRET, base_url="http://x/v1/"
    )
    assert model._llm_type == "holysheep-chat"
    assert model._get_ls_params()["ls_provider"] == "holysheep"
    assert model.lc_secrets == {"holysheep_api_key": "HOLYSHEEP_API_KEY"}
    assert model.openai_api_base == "http://x/v1"
    assert model._use_responses_api({"tools": [{"type": "web_search"}]}) is False
