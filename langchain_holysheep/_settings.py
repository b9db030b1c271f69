"""Checks of `ChatHolySheep`'s settings, run on the constructor's raw input.

Each check either returns the value in its normal form or raises
`ConfigurationError` with a message that names the setting, the value received
and the accepted form, so a bad setting fails when the model is built rather than
on the first call.

Numbers follow one rule: an `int` or `float`, or a string holding one (`"30"`,
`"2.5"`, as read from an environment variable or a config file), which is
converted. Anything else is rejected: booleans, other strings, NaN and infinity
(pass `None` for "no limit" where the setting allows it).

Header values are never echoed: a header often carries a credential.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from langchain_holysheep.catalogue import default_catalogue
from langchain_holysheep.errors import ConfigurationError

__all__ = [
    "check_constructor_input",
    "check_headers",
    "check_max_retries",
    "check_max_tokens",
    "check_model_id",
    "check_seconds",
    "check_temperature",
    "check_timeout",
    "unsafe_header_character",
]

SECONDS_FIELDS = ("first_token_timeout", "stall_timeout", "deadline")
"""Settings given in seconds that must be > 0 (or `None` for no limit)."""

TEMPERATURE_RANGE = (0.0, 2.0)
"""The sampling temperatures the OpenAI chat-completions format accepts."""

_TIMEOUT_PARTS = ("connect", "read", "write", "pool")
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _describe(value: Any) -> str:
    """`repr` of a (non-secret) setting, with its type when that helps."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    if isinstance(value, (bool, str)) or value is None:
        return text
    return f"{text} ({type(value).__name__})"


def _number(value: Any) -> float | None:
    """`value` as a finite or non-finite float, or `None` if it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (numbers.Real, Decimal)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def check_seconds(name: str, value: Any, *, example: str = "30") -> float | None:
    """A duration in seconds > 0, or `None` (no limit).

    Raises:
        ConfigurationError: naming `name` and the accepted form.
    """
    if value is None:
        return None
    accepted = (
        f"Pass a number of seconds > 0 (e.g. {name}={example}; a numeric string "
        f"such as '{example}' is converted), or None for no limit."
    )
    return _seconds(name, value, accepted, "limit")


def check_timeout(value: Any) -> Any:
    """The per-attempt `timeout` (`request_timeout`) in one of its valid forms.

    Accepted: `None` (no limit); seconds > 0 (a number or numeric string); an
    `httpx.Timeout` whose set parts are > 0; a `(connect, read)` tuple or list of
    seconds (up to four parts, as `httpx.Timeout` takes them), each > 0 or `None`.

    Raises:
        ConfigurationError: naming `timeout` and the accepted forms.
    """
    forms = (
        "Pass seconds > 0 (e.g. timeout=30), an httpx.Timeout, a (connect, read) "
        "tuple of seconds such as (5, 60), or None for no limit."
    )
    if value is None:
        return None
    if all(hasattr(value, part) for part in _TIMEOUT_PARTS):  # an httpx Timeout
        for part in _TIMEOUT_PARTS:
            limit = getattr(value, part)
            if limit is not None:
                _seconds(f"timeout.{part}", limit, forms)
        return value
    if isinstance(value, (tuple, list)):
        if not 2 <= len(value) <= 4:
            raise ConfigurationError(
                f"timeout as a tuple takes (connect, read) seconds, got "
                f"{_describe(value)}. {forms}"
            )
        names = _TIMEOUT_PARTS[: len(value)]
        return tuple(
            None if v is None else _seconds(f"timeout {n}", v, forms)
            for n, v in zip(names, value, strict=True)
        )
    return _seconds("timeout", value, forms)


def _seconds(name: str, value: Any, forms: str, what: str = "timeout") -> float:
    """`value` as a number of seconds > 0.

    Raises:
        ConfigurationError: naming `name` (a zero or negative `what` fails
            every call), then `forms`.
    """
    seconds = _number(value)
    if seconds is None or math.isnan(seconds):
        raise ConfigurationError(
            f"{name} must be a number of seconds, got {_describe(value)}. {forms}"
        )
    if math.isinf(seconds):
        raise ConfigurationError(
            f"{name} must be a finite number of seconds, got {_describe(value)}. "
            f"{forms}"
        )
    if seconds <= 0:
        raise ConfigurationError(
            f"{name} must be > 0 seconds, got {_describe(value)}: a zero or negative "
            f"{what} fails every call. {forms}"
        )
    return seconds


def _whole(name: str, value: Any, least: int, what: str, advice: str) -> int | None:
    """`value` as a whole number >= `least`, or `None` for `None`.

    Raises:
        ConfigurationError: "`name` must be `what` >= `least`", then `advice`.
    """
    if value is None:
        return None
    number = _number(value)
    if (
        number is None
        or not math.isfinite(number)
        or number != int(number)
        or number < least
    ):
        raise ConfigurationError(
            f"{name} must be {what} >= {least}, got {_describe(value)}. {advice}"
        )
    return int(number)


def check_max_tokens(value: Any) -> int | None:
    """`max_tokens`: a whole number of tokens >= 1, or `None` (model default).

    Raises:
        ConfigurationError: naming `max_tokens` and the accepted form.
    """
    return _whole(
        "max_tokens",
        value,
        1,
        "a whole number of tokens",
        "Pass e.g. max_tokens=1024 (a numeric string such as '1024' is "
        "converted), or None for the model's own limit.",
    )


def check_max_retries(value: Any) -> int | None:
    """`max_retries`: a whole number >= 0, or `None` (the default policy).

    Raises:
        ConfigurationError: naming `max_retries` and the accepted form.
    """
    return _whole(
        "max_retries",
        value,
        0,
        "a whole number",
        "Pass e.g. max_retries=2 (0 turns retries off), or retry=RetryPolicy(...).",
    )


def check_temperature(value: Any) -> float | None:
    """`temperature`: a number from 0 to 2, or `None` (model default).

    Raises:
        ConfigurationError: naming `temperature` and the accepted range.
    """
    if value is None:
        return None
    low, high = TEMPERATURE_RANGE
    temperature = _number(value)
    if temperature is None or not low <= temperature <= high:
        raise ConfigurationError(
            f"temperature must be a number from {low:g} to {high:g}, got "
            f"{_describe(value)}. Pass e.g. temperature=0.7 (a numeric string such "
            "as '0.7' is converted), or None for the model's default."
        )
    return temperature


def check_model_id(value: Any) -> str:
    """The `model` id: a non-empty string, surrounding whitespace removed.

    Raises:
        ConfigurationError: naming `model` and how to find valid ids.
    """
    hint = (
        "Pass a gateway model id or alias such as model='gpt-4.1' or "
        "model='sonnet'; `ChatHolySheep.list_models()` lists the ids."
    )
    if not isinstance(value, str):
        raise ConfigurationError(
            f"model must be a string, got {_describe(value)}. {hint}"
        )
    model = value.strip()
    if not model:
        raise ConfigurationError(f"model must not be empty, got {value!r}. {hint}")
    if any(not ch.isprintable() or ch.isspace() for ch in model):
        raise ConfigurationError(
            f"model {value!r} contains whitespace or a control character. {hint}"
        )
    return model


def unsafe_header_character(text: str, *, spaces_allowed: bool) -> str | None:
    """Describe the first character of `text` an HTTP header cannot carry.

    Header values travel as printable ASCII; spaces and tabs are allowed inside a
    value (`spaces_allowed=True`), never inside a key.

    Returns:
        A phrase such as "a line break", or `None` when `text` is safe.
    """
    for ch in text:
        code = ord(ch)
        if ch in "\r\n":
            return "a line break"
        if ch in " \t":
            if spaces_allowed:
                continue
            return "a space or tab"
        if code < 0x20 or code == 0x7F:
            return "a control character"
        if code > 0x7E:
            if ch.isspace():
                return "a non-ASCII space (such as a non-breaking space)"
            return (
                "a non-ASCII character (such as a typographic quote or an accented "
                "letter)"
            )
    return None


def check_headers(field: str, headers: Any) -> Any:
    """HTTP headers given as settings (`default_headers`): names and values.

    The message names the header at fault, never its value.

    Raises:
        ConfigurationError: a name that is not an HTTP token, a value that is
            not a string or holds a line break, control or non-ASCII character.
    """
    if headers is None:
        return None
    if not isinstance(headers, Mapping):
        raise ConfigurationError(
            f"{field} must be a mapping of header names to string values, got a "
            f"{type(headers).__name__}."
        )
    for name, value in headers.items():
        if not isinstance(name, str) or not name or set(name) - _TOKEN_CHARS:
            raise ConfigurationError(
                f"{field} has an invalid header name {name!r}: use letters, digits "
                "and - (e.g. 'X-Request-Source')."
            )
        if not isinstance(value, str):
            raise ConfigurationError(
                f"{field}[{name!r}] must be a string, got a {type(value).__name__}. "
                "Convert it with str(...)."
            )
        problem = unsafe_header_character(value, spaces_allowed=True)
        if problem is not None:
            raise ConfigurationError(
                f"{field}[{name!r}] contains {problem}: HTTP header values must be "
                "one line of printable ASCII, so every call would fail. Fix the "
                "value (it is not shown here, as headers often carry credentials)."
            )
    return headers


def _first_present(values: Mapping[str, Any], *names: str) -> str | None:
    return next((n for n in names if n in values), None)


def check_constructor_input(values: Any, default_model: str | None = None) -> Any:
    """Check and normalise the settings in a `ChatHolySheep(...)` call.

    Runs before pydantic's own parsing (a `mode="before"` model validator), so
    the message names the setting as the user wrote it. Accepts field names or
    aliases (`model` / `model_name`, `timeout` / `request_timeout`).

    Unless a `profile` is given, the model's LangChain profile is taken from the
    catalogue (for the id an alias resolves to), so the profile shown for the
    model and the catalogue never disagree.

    Args:
        values: the constructor's keyword arguments.
        default_model: the model id used when none is given.

    Returns:
        The input with numbers normalised (e.g. `timeout="30"` -> `30.0`) and
        the catalogue's profile filled in.

    Raises:
        ConfigurationError: the first setting that cannot work.
    """
    if not isinstance(values, dict):
        return values
    out = dict(values)
    key = _first_present(out, "model", "model_name")
    if key is not None:
        out[key] = check_model_id(out[key])
    key = _first_present(out, "timeout", "request_timeout")
    if key is not None:
        out[key] = check_timeout(out[key])
    for name in SECONDS_FIELDS:
        if name in out:
            out[name] = check_seconds(name, out[name])
    if "max_tokens" in out:
        out["max_tokens"] = check_max_tokens(out["max_tokens"])
    if "max_retries" in out:
        out["max_retries"] = check_max_retries(out["max_retries"])
    if "temperature" in out:
        out["temperature"] = check_temperature(out["temperature"])
    if "default_headers" in out:
        check_headers("default_headers", out["default_headers"])
    model = out[key] if (key := _first_present(out, "model", "model_name")) else None
    model = model or default_model
    if out.get("profile") is None and model is not None:
        profile = default_catalogue().profile(model)
        if profile is not None:
            out["profile"] = profile
    return out
