"""`holysheep.toml`: model groups, virtual keys and the server's settings.

Parsed with `tomllib` (`tomli` on Python 3.10) and validated with pydantic. A
broken file fails at start with its path, the line and the field at fault
(`ServeConfigError`). Upstream keys never appear in the file: a route names
the environment variable that holds its key (`api_key_env`, default
`HOLYSHEEP_API_KEY` for gateway routes). Virtual keys are stored as
`sha256:<hex>` hashes (`new_virtual_key()` makes one).

```toml
[server]
ledger = "~/.holysheep/ledger.sqlite3"   # or postgresql://... (several instances)
state_url = "redis://127.0.0.1:6379/0"   # budgets, breakers, limits shared

[groups.smart]
routes = [
  { model = "gpt-4.1", timeout = 30, first_token_timeout = 10 },
  "deepseek-v3.2",
  { model = "qwen2.5-7b", base_url = "http://127.0.0.1:8000/v1",
    api_key_env = "VLLM_API_KEY" },
]

[keys.research]
hash = "sha256:9f86d081..."
groups = ["smart"]
budget = { limit = "5.00", window = "day" }   # lease = 300 (s, crash recovery)
requests_per_minute = 60
tags = ["team:research"]
```
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.resilience._breaker import BreakerConfig
from langchain_holysheep.resilience._ratelimit import RateLimit
from langchain_holysheep.resilience._retry import RetryPolicy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "CONFIG_ENV",
    "BudgetSpec",
    "GroupSpec",
    "KeySpec",
    "RouteSpec",
    "ServeConfig",
    "ServeConfigError",
    "ServerSpec",
    "hash_key",
    "load_config",
    "new_virtual_key",
]

CONFIG_ENV = "HOLYSHEEP_SERVE_CONFIG"
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


class ServeConfigError(ConfigurationError):
    """`holysheep.toml` is missing or invalid; the message names file, line, field."""


Seconds = Annotated[float, Field(gt=0)]
"""A positive number of seconds."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteSpec(_Spec):
    """One route of a group: a gateway model id, or an OpenAI-compatible endpoint.

    Without `base_url` the route is the HolySheep gateway's (its URL from
    `[gateway]`, its key from `HOLYSHEEP_API_KEY`); with one, it is any
    OpenAI-compatible server (a provider's API, a local vLLM) whose key is read
    from `api_key_env` (none: no key sent).

    `first_token_timeout` and `stall_timeout` default to `ChatHolySheep`'s
    (30 s; 120 s to the first token of a reasoning model); `false` turns one
    off. With either on, a non-streaming request is read from the route as a
    stream under them (the client still gets one JSON reply).
    """

    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    first_token_timeout: Seconds | Literal[False] | None = None
    stall_timeout: Seconds | Literal[False] | None = None
    retry: RetryPolicy | None = None
    breaker: BreakerConfig | None = None
    rate_limit: RateLimit | None = None
    context_window: int | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    assistant_prefill: bool | None = None

    @field_validator("first_token_timeout", "stall_timeout", mode="before")
    @classmethod
    def _limit(cls, value: Any) -> Any:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is True or (number and value <= 0):
            raise ValueError("give seconds (> 0), or false to turn this limit off")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return None if value is None else value.rstrip("/")

    @property
    def is_gateway(self) -> bool:
        """A HolySheep gateway route (no `base_url` of its own)."""
        return self.base_url is None


def _route(value: Any) -> Any:
    return {"model": value} if isinstance(value, str) else value


class GroupSpec(_Spec):
    """A public model name: its route chain, tried in order."""

    routes: list[RouteSpec] = Field(min_length=1)
    deadline: float | None = Field(default=None, gt=0)
    retry: RetryPolicy | None = None

    @field_validator("routes", mode="before")
    @classmethod
    def _routes(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [_route(v) for v in value]
        return value


class BudgetSpec(_Spec):
    """A virtual key's spending cap (USD), enforced by reservations.

    `lease` is how long (seconds) a call's reservation holds without being
    settled: streams renew it as they deliver, so it only needs to outlast
    the longest wait for a reply or first token. A worker that dies
    (`kill -9`, OOM) holds its reservations for at most this long.
    """

    limit: Decimal = Field(gt=0)
    window: Literal["hour", "day", "month", "total"] = "day"
    strict: bool = False
    lease: float = Field(default=300.0, gt=0, allow_inf_nan=False)


class KeySpec(_Spec):
    """A virtual key: its hash, the groups it may use, its limits and tags."""

    hash: str
    groups: list[str] = Field(default_factory=lambda: ["*"])
    budget: BudgetSpec | None = None
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    tags: list[str] = Field(default_factory=list)

    @field_validator("hash")
    @classmethod
    def _hash(cls, value: str) -> str:
        if not _HASH.match(value):
            raise ValueError(
                "must be 'sha256:' and 64 lowercase hex digits; make one with "
                "`holysheep serve-key NAME`"
            )
        return value

    def allows(self, group: str) -> bool:
        """Whether this key may call `group`."""
        return "*" in self.groups or group in self.groups


class ServerSpec(_Spec):
    """`[server]`: listening, limits, where state and spend live."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    state_url: str | None = None
    ledger: str | None = None
    grace_seconds: float = Field(default=10.0, ge=0)
    deadline: float | None = Field(default=None, gt=0)


class GatewaySpec(_Spec):
    """`[gateway]`: the HolySheep gateway behind routes without `base_url`."""

    base_url: str | None = None
    api_key_env: str = "HOLYSHEEP_API_KEY"


class ServeConfig(_Spec):
    """The whole `holysheep.toml`."""

    server: ServerSpec = Field(default_factory=ServerSpec)
    gateway: GatewaySpec = Field(default_factory=GatewaySpec)
    groups: dict[str, GroupSpec] = Field(min_length=1)
    keys: dict[str, KeySpec] = Field(min_length=1)
    source: str = Field(default="<config>", exclude=True)

    @model_validator(mode="after")
    def _names(self) -> ServeConfig:
        for kind, names in (("group", self.groups), ("key", self.keys)):
            for name in names:
                if not _NAME.match(name):
                    raise ValueError(
                        f"{kind} name {name!r}: use letters, digits and ._:/-"
                    )
        for name, key in self.keys.items():
            unknown = [g for g in key.groups if g != "*" and g not in self.groups]
            if unknown:
                raise ValueError(
                    f"key {name!r} allows unknown group(s) {unknown}; define them "
                    "under [groups] or use '*'"
                )
        return self

    def key_by_hash(self, digest: str) -> tuple[str, KeySpec] | None:
        """The key whose hash is `digest` (constant-time comparisons)."""
        found = None
        for name, key in self.keys.items():
            if hmac.compare_digest(key.hash, digest):
                found = (name, key)
        return found


def hash_key(key: str) -> str:
    """The stored form of a virtual key: `sha256:<hex>`."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_virtual_key() -> tuple[str, str]:
    """A fresh virtual key and its hash line: `(key, "sha256:...")`."""
    key = "hsv-" + secrets.token_urlsafe(32)
    return key, hash_key(key)


# -- loading --------------------------------------------------------------------------
def load_config(path: str | os.PathLike[str] | None = None) -> ServeConfig:
    """Read and validate `holysheep.toml` (default `$HOLYSHEEP_SERVE_CONFIG`).

    Raises:
        ServeConfigError: unreadable file, TOML syntax, or an invalid field
            (the message names the file, the line and the field).
    """
    if path is None:
        path = os.environ.get(CONFIG_ENV, "").strip() or "holysheep.toml"
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ServeConfigError(
            f"{source}: cannot read the config file ({exc.strerror or exc}); "
            "pass --config PATH or set HOLYSHEEP_SERVE_CONFIG"
        ) from None
    except UnicodeDecodeError:
        raise ServeConfigError(f"{source}: not UTF-8 text") from None
    return parse_config(text, source)


def parse_config(text: str, source: str = "<config>") -> ServeConfig:
    """Validate the text of a config file; see `load_config`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ServeConfigError(f"{source}: invalid TOML: {exc}") from None
    try:
        config = ServeConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ServeConfigError(_describe(exc, text, source)) from None
    return config


def _describe(exc: ValidationError, text: str, source: str) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = locate(text, loc)
        where = f"{source}:{line}" if line else source
        lines.append(f"{where}: {field}: {err['msg']}")
    more = exc.error_count() - len(lines)
    if more > 0:
        lines.append(f"... and {more} more")
    return "invalid config\n  " + "\n  ".join(lines)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ELEMENT = re.compile(r"^\s*[{\"']")


def _header(row: str) -> list[str] | None:
    m = _HEADER.match(row)
    if m is None:
        return None
    return [p.strip().strip('"') for p in m.group(1).split(".")]


def _table(rows: list[str], loc: Sequence[Any]) -> tuple[int, int]:
    """The line of the deepest table header on `loc`, and how much of it matched.

    An array of tables (`[[a.b]]`) followed by an index picks that element.
    """
    best, used = -1, 0
    seen: dict[tuple[str, ...], int] = {}
    for i, row in enumerate(rows):
        parts = _header(row)
        if parts is None:
            continue
        n = len(parts)
        names = [str(p) for p in loc[:n]]
        if parts != names:
            continue
        index = seen.get(tuple(parts), 0)
        seen[tuple(parts)] = index + 1
        nxt = loc[n] if len(loc) > n else None
        if isinstance(nxt, int):
            if index == nxt and n + 1 > used:
                best, used = i, n + 1
        elif n > used:
            best, used = i, n
    return best, used


def locate(text: str, loc: Sequence[Any]) -> int | None:
    """The line (1-based) of the field at `loc`, found by scanning the TOML text.

    The deepest table header on the path, then each key and array element of
    the rest of the path in turn; `None` when nothing matches.
    """
    rows = text.splitlines()
    pos, used = _table(rows, loc)
    found = pos if pos >= 0 else None
    for part in loc[used:]:
        if isinstance(part, int):
            count = -1
            for i in range(pos, len(rows)):
                if i > pos and _header(rows[i]) is not None:
                    break
                if i > pos and _ELEMENT.match(rows[i]):
                    count += 1
                    if count == part:
                        pos = found = i
                        break
            continue
        pattern = re.compile(rf"(^|[\s{{,]){re.escape(str(part))}\s*=")
        for i in range(max(pos, 0), len(rows)):
            if i > pos and _header(rows[i]) is not None:
                break
            if pattern.search(rows[i]):
                pos = found = i
                break
    return None if found is None else found + 1
