"""`holysheep.toml`: validation errors name the file, the line and the field."""

from __future__ import annotations

import pytest

from langchain_holysheep.serve.config import (
    ServeConfigError,
    hash_key,
    new_virtual_key,
    parse_config,
)

HASH = hash_key("hsv-k")

GOOD = f"""
[groups.smart]
routes = ["gpt-4.1", {{ model = "qwen", base_url = "http://127.0.0.1:8000/v1" }}]

[[groups.big.routes]]
model = "gpt-4.1"

[[groups.big.routes]]
model = "deepseek-v3.2"
timeout = 20

[keys.research]
hash = "{HASH}"
groups = ["smart"]
budget = {{ limit = "5.00", window = "day" }}
"""


def _error(text: str) -> str:
    with pytest.raises(ServeConfigError) as err:
        parse_config(text, "holysheep.toml")
    return str(err.value)


def test_a_good_config() -> None:
    config = parse_config(GOOD)
    assert [r.model for r in config.groups["smart"].routes] == ["gpt-4.1", "qwen"]
    assert config.groups["smart"].routes[1].base_url == "http://127.0.0.1:8000/v1"
    assert config.groups["big"].routes[1].timeout == 20
    assert config.key_by_hash(HASH) == ("research", config.keys["research"])
    assert config.keys["research"].allows("smart")
    assert not config.keys["research"].allows("big")
    budget = config.keys["research"].budget
    assert budget is not None and budget.lease == 300  # the default lease


def test_a_budget_takes_a_lease() -> None:
    text = GOOD.replace('window = "day" }', 'window = "day", lease = 2.5 }')
    budget = parse_config(text).keys["research"].budget
    assert budget is not None and budget.lease == 2.5


def test_new_keys_hash_to_their_line() -> None:
    key, digest = new_virtual_key()
    assert digest == hash_key(key) and digest.startswith("sha256:")
    assert key not in digest


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("timeout = 20", "timeout = -1", "toml:10: groups.big.routes.1.timeout"),
        ('model = "deepseek-v3.2"', "", "groups.big.routes.1.model: Field required"),
        ('"5.00"', '"-5"', "toml:15: keys.research.budget.limit"),
        ('"day"', '"day", lease = 0', "toml:15: keys.research.budget.lease"),
        (f'"{HASH}"', '"abc"', "toml:13: keys.research.hash"),
        ('groups = ["smart"]', 'groups = ["nope"]', "unknown group(s) ['nope']"),
        ("8000/v1", '8000/v1", retries = 3, x = "', "toml:3: groups.smart.routes.1"),
    ],
)  # fmt: skip
def test_errors_name_line_and_field(old: str, new: str, where: str) -> None:
    assert old in GOOD
    assert where in _error(GOOD.replace(old, new, 1))


def test_toml_syntax_errors_name_the_file() -> None:
    assert _error("[groups\n").startswith("holysheep.toml: invalid TOML")


_KEY = f'[keys.k]\nhash = "{HASH}"\ngroups = ["g"]\n'


def test_stream_limits_default_to_chat_holysheeps_and_false_turns_them_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_holysheep._model_routes import (
        DEFAULT_FIRST_TOKEN_TIMEOUT,
        DEFAULT_STALL_TIMEOUT,
        REASONING_FIRST_TOKEN_TIMEOUT,
    )
    from langchain_holysheep.serve._groups import build_groups

    text = """
[groups.g]
routes = [
  "gpt-4.1",
  "deepseek-reasoner",
  { model = "deepseek-v3.2", first_token_timeout = false, stall_timeout = false },
  { model = "qwen", base_url = "http://127.0.0.1:8000/v1", first_token_timeout = 4 },
]

"""
    monkeypatch.setenv("HOLYSHEEP_API_KEY", "hs-test-key")
    groups = build_groups(parse_config(text + _KEY))
    router = groups["g"].router
    limits = [router.limits(r)[1:] for r in router.routes]
    assert limits == [
        (DEFAULT_FIRST_TOKEN_TIMEOUT, DEFAULT_STALL_TIMEOUT),
        (REASONING_FIRST_TOKEN_TIMEOUT, DEFAULT_STALL_TIMEOUT),
        (None, None),
        (4, DEFAULT_STALL_TIMEOUT),
    ]


@pytest.mark.parametrize("value", ["0", "-1", "true", '"soon"'])
def test_a_bad_stream_limit_names_its_field(value: str) -> None:
    text = f'[groups.g]\nroutes = [{{ model = "gpt-4.1", stall_timeout = {value} }}]\n'
    message = _error(text + _KEY)
    assert "stall_timeout" in message and "holysheep.toml" in message
