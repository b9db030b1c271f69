"""The error policy: one table that says what to do with each failure.

Every exception a route raises is classified once, here, into an `Action`:

- `RETRY`: try the same route again (after a backoff, honouring `Retry-After`);
- `FALLBACK`: give up on this route and move to the next one;
- `STOP`: raise at once; no other route would do better.

The table builds on LangChain's `langchain_core.exceptions` taxonomy
(`ModelRateLimitError`, `ModelAPIError`, ...) and adds HTTP status codes, the
error body's `code`, the HTTP-client exception underneath, and the
`holysheep_action` attribute our own errors (and the spend module's
`BudgetExceededError`) carry. Users can override any row:

```python
policy = ErrorPolicy(overrides={429: "fallback", MyError: Action.RETRY})
policy.classify(exc)  # Decision(action=<Action.FALLBACK>, reason=..., status=429)
```
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeAlias, cast

from langchain_core.exceptions import (
    ModelNotFoundError,
    ModelRateLimitError,
)

from langchain_holysheep.resilience._error_facts import (
    ErrorInfo,
    extract,
    has_own_action,
    is_auth,
    is_client_error,
    is_connection,
    is_content_policy,
    is_context_overflow,
    is_malformed,
    is_retryable_model_error,
    is_server_error,
    is_silent_timeout,
    is_timeout,
    is_unreachable,
    is_unstatused_api_error,
    parse_retry_after,
)

__all__ = [
    "Action",
    "Decision",
    "ErrorInfo",
    "ErrorPolicy",
    "Matcher",
    "Rule",
    "default_policy",
    "parse_retry_after",
]


class Action(str, Enum):
    """What to do after a failed attempt."""

    RETRY = "retry"
    """Try the same route again after a backoff."""
    FALLBACK = "fallback"
    """Move on to the next route."""
    STOP = "stop"
    """Raise now; no route would do better."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's verdict on one exception.

    Attributes:
        action: retry, fall back or stop.
        reason: a short human reason ("server error", "silent timeout", ...).
        status: the HTTP status, if the error had one.
        retry_after_s: the server's `Retry-After` / `retry-after-ms`, seconds.
        code: the error body's `code` (e.g. "context_length_exceeded").
        message: the provider's message (e.g. a content-policy reason).
        prefer_larger_context: the prompt was too long for this model; prefer a
            fallback with a larger context window.
        silent: a read timeout with nothing received: never retry the route.
        connection_level: the server could not be reached (counts towards a
            gateway-wide outage).
        breaker_failure: whether the failure counts against the route's circuit
            breaker (request-specific errors such as 400 or a context overflow
            do not).
    """

    action: Action
    reason: str
    status: int | None = None
    retry_after_s: float | None = None
    code: str | None = None
    message: str = ""
    prefer_larger_context: bool = False
    silent: bool = False
    connection_level: bool = False
    breaker_failure: bool = True


Matcher: TypeAlias = int | str | type[BaseException] | Callable[[BaseException], bool]
"""What an override matches: an HTTP status, a body `code`, an exception type
(anywhere in the `__cause__` chain), or a predicate on the exception."""


_FACTS = ("status", "retry_after_s", "code", "message")
"""What a `Decision` reports of its error, as `ErrorInfo` holds it."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: a condition, an action and the decision's flags."""

    condition: str
    action: Action
    reason: str
    match: Callable[[ErrorInfo], bool]
    prefer_larger_context: bool = False
    silent: bool = False
    connection_level: bool = False
    breaker_failure: bool = True
    from_exception: bool = False
    """Take `reason` / `silent` from the exception's `holysheep_reason` /
    `holysheep_silent` attributes when it has them."""

    def decide(self, info: ErrorInfo) -> Decision:
        """The decision this rule gives for `info`."""
        reason, silent = self.reason, self.silent
        if self.from_exception:
            reason = getattr(info.exc, "holysheep_reason", None) or reason
            silent = bool(getattr(info.exc, "holysheep_silent", silent))
        return Decision(
            action=self.action,
            reason=reason,
            prefer_larger_context=self.prefer_larger_context,
            silent=silent,
            connection_level=self.connection_level,
            breaker_failure=self.breaker_failure,
            **{fact: getattr(info, fact) for fact in _FACTS},
        )


R, F, S = Action.RETRY, Action.FALLBACK, Action.STOP

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        "error carrying holysheep_action='stop' (e.g. budget exceeded)",
        S,
        "stopped by policy",
        has_own_action("stop"),
        breaker_failure=False,
        from_exception=True,
    ),
    Rule(
        "error carrying holysheep_action='fallback' (open circuit, rate-limit "
        "wait beyond the deadline, stream cut/stall/malformed chunk)",
        F,
        "route unavailable",
        has_own_action("fallback"),
        from_exception=True,
    ),
    Rule(
        "error carrying holysheep_action='retry'",
        R,
        "retry requested",
        has_own_action("retry"),
        from_exception=True,
    ),
    Rule(
        "content-policy rejection (code content_policy_violation)",
        S,
        "content policy",
        is_content_policy,
        breaker_failure=False,
    ),
    Rule(
        "context length exceeded (ContextOverflowError, context_length_exceeded)",
        F,
        "context length exceeded",
        is_context_overflow,
        prefer_larger_context=True,
        breaker_failure=False,
    ),
    Rule(
        "404 / ModelNotFoundError (model not served)",
        F,
        "model not found",
        lambda i: i.status == 404 or i.any_instance(ModelNotFoundError),
    ),
    Rule(
        "401/403 from the gateway (bad key, no permission)",
        S,
        "authentication failed",
        lambda i: i.gateway and is_auth(i),
        breaker_failure=False,
    ),
    Rule("401/403 from a non-gateway route", F, "credentials rejected", is_auth),
    Rule(
        "429 / ModelRateLimitError (Retry-After honoured)",
        R,
        "rate limited",
        lambda i: i.status == 429 or i.any_instance(ModelRateLimitError),
        breaker_failure=False,
    ),
    Rule(
        "408 request timeout, 409 conflict",
        R,
        "transient conflict/timeout",
        lambda i: i.status in (408, 409),
    ),
    Rule("5xx / ModelAPIError", R, "server error", is_server_error),
    Rule(
        "read timeout with nothing received (silent route)",
        F,
        "silent timeout",
        is_silent_timeout,
        silent=True,
    ),
    Rule(
        "gateway unreachable: connection refused, DNS failure, connect timeout",
        R,
        "cannot connect",
        is_unreachable,
        connection_level=True,
    ),
    Rule(
        "write/pool timeout",
        R,
        "timeout before the request was sent",
        is_timeout,
    ),
    Rule(
        "connection dropped (reset, protocol error) / ModelConnectionError",
        R,
        "connection error",
        is_connection,
    ),
    Rule(
        "malformed response (invalid JSON, schema mismatch)",
        F,
        "malformed response",
        is_malformed,
    ),
    Rule(
        "400 / other 4xx / ModelInvalidRequestError",
        S,
        "invalid request",
        is_client_error,
        breaker_failure=False,
    ),
    Rule(
        "error event without status (mid-stream provider error)",
        F,
        "provider error",
        is_unstatused_api_error,
    ),
    Rule(
        "other retryable ModelError (is_retryable=True)",
        R,
        "retryable error",
        is_retryable_model_error,
    ),
    Rule(
        "any other exception (programming errors are not retried)",
        S,
        "unexpected error",
        lambda i: True,
        breaker_failure=False,
    ),
)


def _override_match(
    matcher: Matcher,
) -> tuple[str, str, Callable[[ErrorInfo], bool]]:
    """`(condition, reason, predicate)` of an override's matcher."""
    if isinstance(matcher, bool):
        raise TypeError("an override matcher cannot be a bool")
    if isinstance(matcher, int):
        return f"HTTP {matcher}", f"HTTP {matcher}", lambda i: i.status == matcher
    if isinstance(matcher, str):
        return f"code {matcher!r}", matcher, lambda i: i.code == matcher
    if isinstance(matcher, type) and issubclass(matcher, BaseException):
        name = matcher.__name__
        return name, name, lambda i: i.any_instance(matcher)
    if callable(matcher):
        pred = cast(Callable[[BaseException], bool], matcher)
        name = getattr(pred, "__name__", "predicate")
        return f"{name}(exc)", name, lambda i: bool(pred(i.exc))
    raise TypeError(f"cannot match errors with {matcher!r}")


def _override_rule(matcher: Matcher, action: Action | str) -> Rule:
    act = Action(action)
    condition, reason, match = _override_match(matcher)
    return Rule(f"[override] {condition}", act, f"{reason} (override)", match)


Override: TypeAlias = tuple[Matcher, Action | str] | Rule
"""An override: `(matcher, action)`, or a whole `Rule` (its flags too, e.g. a
fall-over that does not count against the route's circuit breaker)."""


@dataclass(frozen=True)
class ErrorPolicy:
    """The classification table: exception -> retry / fall back / stop.

    Overrides are checked first, in order, then the default rows.

    Args:
        overrides: `{matcher: action}` or `[(matcher, action) or Rule, ...]`;
            a matcher is an HTTP status (`429`), a body code
            (`"model_overloaded"`), an exception type (matched anywhere in the
            `__cause__` chain) or a predicate `exc -> bool`; an action is an
            `Action` or its value.

    Example:
        ```python
        policy = ErrorPolicy(overrides={429: "fallback"})
        decision = policy.classify(exc)
        if decision.action is Action.RETRY:
            ...
        for condition, action in policy.describe():
            print(f"| {condition} | {action} |")
        ```
    """

    overrides: Mapping[Any, Action | str] | Iterable[Override] = ()
    rules: tuple[Rule, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        items = (
            self.overrides.items()
            if isinstance(self.overrides, Mapping)
            else self.overrides
        )
        extra = tuple(
            item if isinstance(item, Rule) else _override_rule(*item) for item in items
        )
        object.__setattr__(self, "rules", extra + DEFAULT_RULES)

    def with_overrides(
        self,
        overrides: Mapping[Any, Action | str] | Iterable[Override],
    ) -> ErrorPolicy:
        """A copy with more overrides, checked before this policy's own."""
        new = list(overrides.items() if isinstance(overrides, Mapping) else overrides)
        old = list(
            self.overrides.items()
            if isinstance(self.overrides, Mapping)
            else self.overrides
        )
        return ErrorPolicy(overrides=new + old)

    def classify(self, exc: BaseException, *, gateway: bool = True) -> Decision:
        """Classify `exc` (raised by a route; `gateway`: the route is a gateway one)."""
        info = extract(exc, gateway=gateway)
        for rule in self.rules:
            if rule.match(info):
                return rule.decide(info)
        raise AssertionError("unreachable: the last rule matches everything")

    def should_retry(self, exc: BaseException) -> bool:
        """Whether `exc` is worth retrying on the same route."""
        return self.classify(exc).action is Action.RETRY

    def describe(self) -> list[tuple[str, str]]:
        """The table as `(condition, action)` rows, in the order applied."""
        rows = []
        for rule in self.rules:
            note = rule.action.value.upper()
            if rule.prefer_larger_context:
                note += " (prefer a route with a larger context window)"
            if rule.silent:
                note += " (never retried on the same route)"
            if rule.action is Action.STOP and rule.reason == "content policy":
                note += " (the provider's reason is kept)"
            rows.append((rule.condition, note))
        return rows


_DEFAULT = ErrorPolicy()


def default_policy() -> ErrorPolicy:
    """The built-in table (shared, immutable)."""
    return _DEFAULT
