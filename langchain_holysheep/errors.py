"""The exceptions raised by `langchain_holysheep`: one hierarchy.

Every error says what went wrong and what to do next. None of them ever contains
an API key: messages are built from model ids, URLs and server reasons only.
Every public exception is importable from the package root
(`from langchain_holysheep import CircuitOpenError`)::

    HolySheepError
    ├── ConfigurationError                 a setting cannot work (at construction)
    │   ├── MissingAPIKeyError             no key given, HOLYSHEEP_API_KEY unset
    │   ├── InvalidAPIKeyError             a key that cannot be sent (line break...)
    │   ├── InvalidHeaderError             a header value that cannot be sent
    │   ├── UnknownModelError              unknown id, or a likely typo of one
    │   │   └── ModelNotServedError        the gateway answered 404 for the model
    │   └── PricingError                   a price file or override is invalid
    ├── GatewayAuthenticationError         401/403 from the gateway
    ├── ResponseFormatError                a reply that is not a usable completion
    ├── LedgerError                        the spend ledger cannot be read/written
    │   └── LedgerClosedError
    ├── ResilienceError                    raised by the router
    │   ├── AllRoutesFailedError           every route failed or was skipped
    │   ├── StreamInterruptedError         a live stream broke after content
    │   ├── CircuitOpenError               (per route) its breaker is open
    │   ├── RateLimitTimeoutError          (per route) no slot before the deadline
    │   ├── DeadlineExceededError          the call's deadline passed (TimeoutError)
    │   ├── AttemptTimeoutError            one attempt passed its timeout
    │   ├── RetriesExhaustedError          (per route) retries used up
    │   └── StreamFailureError             (per route) a stream cut/stalled/malformed
    │       ├── FirstTokenTimeoutError
    │       └── StreamStallError
    └── BudgetError                        spend limits (never retried)
        ├── BudgetExceededError            a call does not fit a budget
        ├── BudgetCheckError               a call's worst case could not be reserved
        │   └── BudgetStoreError           the budget's state store is down
        ├── SpendLimitExceededError        an agent's run/thread limit (from
        │                                  langchain_holysheep.middleware)
        └── UnpricedCallError              an unpriced model under a money cap

Per-route errors are what the router records in `failures`; what reaches the
caller is `AllRoutesFailedError` (or, for a chain of one route, the route's own
error, so `except openai.RateLimitError` keeps working).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.exceptions import ModelAuthenticationError, ModelNotFoundError


class HolySheepError(Exception):
    """Base class of every error raised by `langchain_holysheep`."""


class ConfigurationError(HolySheepError):
    """A setting given at construction time cannot work; the message says why.

    Raised as is from constructors (not wrapped in pydantic's `ValidationError`),
    so that `except UnknownModelError:` works.
    """


class MissingAPIKeyError(ConfigurationError):
    """No API key was given and `HOLYSHEEP_API_KEY` is not set."""

    def __init__(self, env_var: str = "HOLYSHEEP_API_KEY") -> None:
        super().__init__(
            f"No HolySheep API key found. Set the {env_var} environment variable "
            f"(export {env_var}=hs-...) or pass api_key=... to ChatHolySheep. "
            "To try the package without a key, run it against the embedded "
            "simulator: `from langchain_holysheep.simulator import GatewaySimulator`."
        )


class InvalidAPIKeyError(ConfigurationError):
    """The API key holds a character an HTTP header cannot carry.

    Usually a paste accident: a line break, a space or a typographic quote inside
    the key. The message says which kind of character, never the key.
    """

    def __init__(
        self, problem: str, *, from_env: bool, env_var: str = "HOLYSHEEP_API_KEY"
    ) -> None:
        where = f"in the {env_var} environment variable" if from_env else "given"
        super().__init__(
            f"The HolySheep API key {where} contains {problem}, so it cannot be "
            "sent in an HTTP header and every call would fail. Copy the key again "
            "from the HolySheep dashboard as a single line (letters, digits, '-' "
            f"and '_'; no spaces or quotes) and set {env_var} (export "
            f"{env_var}=hs-...) or pass api_key=... to ChatHolySheep. The key is "
            "not shown here."
        )


class InvalidHeaderError(ConfigurationError):
    """A request header value holds a line break, control or non-ASCII character.

    Raised instead of the HTTP client's error (whose message would quote the
    value, and a header value is often a credential). Never retried: every
    attempt would fail the same way.
    """

    holysheep_action = "stop"
    holysheep_reason = "invalid request header"

    def __init__(self) -> None:
        super().__init__(
            "A request header could not be sent: a header value contains a line "
            "break, a control character or a non-ASCII character. Check "
            "HOLYSHEEP_API_KEY and the headers you pass (default_headers=, "
            "extra_headers=): each value must be one line of printable ASCII. "
            "The value is not shown here, as headers often carry credentials."
        )


class UnknownModelError(ConfigurationError):
    """A model id is not known to the gateway (or looks like a typo of one).

    Attributes:
        model: the id that was asked for.
        suggestions: known ids that look like what was meant.
    """

    def __init__(
        self,
        model: str,
        suggestions: Sequence[str] = (),
        *,
        detail: str | None = None,
        hint_override: bool = True,
    ) -> None:
        self.model = model
        self.suggestions = list(suggestions)
        parts = [f"Unknown HolySheep model {model!r}."]
        if detail:
            parts.append(detail)
        if self.suggestions:
            quoted = ", ".join(repr(s) for s in self.suggestions)
            parts.append(f"Did you mean {quoted}?")
        parts.append(
            "Run `ChatHolySheep.list_models()` (or `holysheep models`) to see the "
            "ids the gateway serves."
        )
        if hint_override:
            parts.append(
                "If this is a new gateway model, pass validate_model=False to use "
                "it as is."
            )
        super().__init__(" ".join(parts))


class ModelNotServedError(UnknownModelError, ModelNotFoundError):
    """The gateway answered 404 for a model id: it does not serve that model."""

    def __init__(self, model: str, suggestions: Sequence[str] = (), **kw: Any):
        super().__init__(
            model,
            suggestions,
            detail="The gateway answered 404: it does not serve this model.",
            hint_override=False,
            **kw,
        )


class GatewayAuthenticationError(HolySheepError, ModelAuthenticationError):
    """The gateway rejected the API key (HTTP 401/403)."""

    def __init__(self, status: int | None = None, reason: str | None = None):
        self.status = status
        self.reason = reason
        code = f" ({status})" if status else ""
        super().__init__(
            f"The HolySheep gateway rejected the API key{code}. Check "
            "HOLYSHEEP_API_KEY: HolySheep keys start with 'hs_', 'hs-' or "
            "'sk-holysheep-' (an OpenAI 'sk-...' key does not work here); "
            "surrounding whitespace is already stripped. Create or copy a key "
            "from the HolySheep dashboard."
        )


class PricingError(ConfigurationError):
    """A pricing file or price override cannot be read.

    Attributes:
        source: where the prices came from (a path or "<dict>").
        line: the line at fault, when known.
        field: the dotted field path at fault, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "<dict>",
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.field = field
        where = source
        if line is not None:
            where += f", line {line}"
        if field:
            where += f", field {field!r}"
        super().__init__(f"Invalid pricing data ({where}): {message}")


class ResponseFormatError(HolySheepError):
    """The server's reply could not be understood (malformed JSON, broken SSE).

    Attributes:
        model: the model that sent the reply.
        body_excerpt: the first characters of what was received.
    """

    def __init__(self, message: str, *, model: str | None = None, body: Any = None):
        self.model = model
        self.body_excerpt = None if body is None else str(body)[:200]
        super().__init__(message)
