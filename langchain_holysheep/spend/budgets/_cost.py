"""What a budget reserves for one call: a hard bound (default) or a heuristic.

`call_shape` reads a chat-model call before it is sent (its messages, tools,
schemas, output limit and the routes it may take, with each route's most
attempts); `call_cost` prices it for one budget.

With `Budget(estimate="bound")` (the default) the reservation can never be
below what the call can be billed:

- prompt: `bound_prompt_tokens` (UTF-8 bytes of the request plus framing, per
  image a worst case) plus the budget's `extra_prompt_tokens`;
- output: `max_tokens`, else the route's `max_output_tokens` from the
  catalogue, times the answers asked for (`n`);
- at the highest input and output prices of each route;
- times every attempt each route can make, summed over the routes.

Why every attempt, reserved up front: any attempt that reached the provider
can be billed (a stream cut after content, a read timeout or a dropped
connection after the provider did the work), so a hard bound must cover all
the attempts a call can make (`ChatHolySheep.max_upstream_attempts()`: every
retry of every route). The reservation is made in `on_chat_model_start`, the
one moment the spend side sees before any request; reserving again between
attempts would need a store round trip inside the route loop and could refuse
a call half-way, after earlier attempts were billed. Reserving the whole call
at once is never below the bound, and costs nothing in the common case: when
the call ends, the reservation settles to what was billed and the rest is free
at once. Plain chat models (no routes) count their SDK's retries
(`max_retries`, OpenAI's default 2).

With `estimate="heuristic"` the prompt is `estimate_prompt_tokens` (about 3
letters per token) and one attempt on the most expensive route is reserved:
more calls fit, but a gateway's hidden prompt, unusual text or billed retries
can make real spend pass the cap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from langchain_holysheep._contract import (
    DEADLINE_PARAM,
    ROUTE_LIMITS_PARAM,
    ROUTES_PARAM,
)
from langchain_holysheep.spend.budgets._estimate import (
    bound_prompt_tokens,
    estimate_prompt_tokens,
)
from langchain_holysheep.spend.pricing._book import PriceBook

if TYPE_CHECKING:
    from langchain_holysheep.spend.budgets._budget import Budget

__all__ = [
    "CallShape",
    "RouteCosts",
    "RouteShape",
    "call_cost",
    "call_lease",
    "call_shape",
    "combined",
    "route_choices",
]

_OPENAI_SDK_RETRIES = 2
_PER_TOKENS = Decimal(1_000_000)  # prices are per 1M tokens
LEASE_MARGIN = 30.0
"""Seconds a reservation's lease outlasts a call's deadline."""


@dataclass(frozen=True)
class RouteShape:
    """One route a call may take: its model, most attempts and output limit."""

    model: str
    attempts: int
    max_tokens: int | None


@dataclass(frozen=True)
class CallShape:
    """What budgets need to know of a chat-model call before it is sent.

    The prompt sizes are worked out when first read (a budget needs one).

    Attributes:
        routes: the routes the call may take, in order.
        messages: the prompts of the run (one list of messages each).
        tools: the request's tools; `schema`: its response format.
        deadline: the call's overall deadline in seconds, if it has one.
        choices: answers asked for (`n`): each may use the whole output limit.
    """

    routes: tuple[RouteShape, ...]
    messages: Sequence[Sequence[Any]] = ()
    tools: Any = None
    schema: Any = None
    deadline: float | None = None
    choices: int = 1

    @cached_property
    def prompt_bound(self) -> int:
        """`bound_prompt_tokens` of the request (an upper bound)."""
        return sum(
            bound_prompt_tokens(batch, tools=self.tools, response_format=self.schema)
            for batch in self.messages
        )

    @cached_property
    def prompt_estimate(self) -> int:
        """`estimate_prompt_tokens` of the request (the heuristic)."""
        return sum(
            estimate_prompt_tokens(batch, tools=self.tools, response_format=self.schema)
            for batch in self.messages
        )

    @property
    def attempts(self) -> int:
        """The most requests the call can make, over every route."""
        return sum(r.attempts for r in self.routes)

    def lease(self, minimum: float) -> float:
        """A reservation lease that outlasts the call: `minimum`, or longer."""
        return call_lease(minimum, self.deadline)


def call_lease(minimum: float, deadline: float | None) -> float:
    """A lease that outlasts a call with `deadline`: `minimum`, or longer."""
    if deadline is None:
        return minimum
    return max(minimum, deadline + LEASE_MARGIN)


def _whole(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _max_tokens(params: Mapping[str, Any]) -> int | None:
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        found = _whole(params.get(key))
        if found is not None:
            return found
    return None


def _plain_attempts(serialized: Any) -> int:
    """Requests a plain chat model's own client may make for one call."""
    if not isinstance(serialized, Mapping):
        return 1
    kwargs = serialized.get("kwargs")
    retries = kwargs.get("max_retries") if isinstance(kwargs, Mapping) else None
    if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0:
        return 1 + retries
    path = serialized.get("id")
    if isinstance(path, list) and any("openai" in str(p).lower() for p in path):
        return 1 + _OPENAI_SDK_RETRIES
    return 1


def _routes(
    params: Mapping[str, Any], requested: str, serialized: Any
) -> tuple[RouteShape, ...]:
    call_max = _max_tokens(params)
    limits = params.get(ROUTE_LIMITS_PARAM)
    if isinstance(limits, Sequence) and limits:
        shapes = []
        for item in limits:
            gateway = bool(item.get("gateway", True))
            own = _whole(item.get("max_tokens"))
            shapes.append(
                RouteShape(
                    str(item["model"]),
                    _whole(item.get("attempts")) or 1,
                    call_max if gateway else own,
                )
            )
        return tuple(shapes)
    names = params.get(ROUTES_PARAM) or [requested]
    attempts = _plain_attempts(serialized) if not params.get(ROUTES_PARAM) else 1
    return tuple(RouteShape(str(n), attempts, call_max) for n in names)


def call_shape(
    messages: Sequence[Sequence[Any]],
    params: Mapping[str, Any],
    requested: str,
    serialized: Any = None,
) -> CallShape:
    """Read a chat-model call (`on_chat_model_start`'s arguments) before it is sent.

    Args:
        messages: the prompts of the run (one list of messages each).
        params: the run's invocation params.
        requested: the model the caller asked for.
        serialized: the chat model's serialized form (for its SDK retries).
    """
    deadline = params.get(DEADLINE_PARAM)
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        deadline = None
    return CallShape(
        _routes(params, requested, serialized),
        messages,
        params.get("tools"),
        params.get("response_format"),
        deadline,
        _whole(params.get("n")) or 1,
    )


def call_cost(
    budget: Budget, shape: CallShape, pricebook: PriceBook
) -> tuple[list[tuple[str, Decimal | None]], Literal["max", "sum"]]:
    """The costs per route to reserve in `budget`, and how they combine.

    Returns:
        `(model, cost)` per route (`None`: unpriced) and `"sum"` (a hard bound:
        every attempt of every route may be billed) or `"max"` (heuristic: one
        attempt on the most expensive route).
    """

    def output(r: RouteShape) -> int:
        limit = r.max_tokens or pricebook.max_output_tokens(r.model)
        return limit * shape.choices

    if budget.estimate == "heuristic":
        prompt = shape.prompt_estimate + budget.extra_prompt_tokens
        return [
            (r.model, pricebook.worst_case_cost(r.model, prompt, output(r)))
            for r in shape.routes
        ], "max"
    prompt = shape.prompt_bound + budget.extra_prompt_tokens
    costs: list[tuple[str, Decimal | None]] = []
    for r in shape.routes:  # `worst_case_cost`: a pricebook may override it
        one = pricebook.worst_case_cost(r.model, prompt, output(r))
        costs.append((r.model, None if one is None else one * r.attempts))
    return costs, "sum"


class RouteCosts:
    """The hard bound of each route of a call, for any prompt size.

    Everything but the prompt (each route's prices, output limit and most
    attempts) is worked out once, so a caller that sees the same routes again
    (a proxy's model group) keeps one and prices each call by its prompt. It
    reads `PriceBook.worst_case_rates`: for a pricebook of the package's own
    class, the same amounts as `call_cost`, digit for digit.

    Args:
        routes: the routes the call may take, in order.
        choices: answers asked for (`n`): each may use the whole output limit.
        pricebook: the prices.
    """

    __slots__ = ("_terms", "names")

    def __init__(
        self, routes: Sequence[RouteShape], choices: int, pricebook: PriceBook
    ) -> None:
        self.names = tuple(r.model for r in routes)
        self._terms = [
            (
                r.model,
                pricebook.worst_case_rates(
                    r.model,
                    (r.max_tokens or pricebook.max_output_tokens(r.model)) * choices,
                ),
                r.attempts,
            )
            for r in routes
        ]

    def costs(self, prompt_tokens: int) -> list[tuple[str, Decimal | None]]:
        """`(model, cost)` per route (`None`: unpriced): `call_cost`'s hard bound.

        Each cost is `worst_case_cost` of the route times its attempts.
        """
        prompt = max(prompt_tokens, 0)
        return [
            (model, None if r is None else (prompt * r[0] + r[1]) / _PER_TOKENS * n)
            for model, r, n in self._terms
        ]


def route_choices(
    routes: Sequence[tuple[str, Decimal | None]], combine: Literal["max", "sum"]
) -> list[tuple[Decimal, tuple[str, ...]]]:
    """What to try reserving, in order: every route, then without the dearest.

    The first choice is every route at once; each next one drops the most
    expensive priced route left (a downgrade), down to the cheapest alone.
    Unpriced routes count 0 in the first choice and are dropped after it.
    """
    priced = sorted(((c, m) for m, c in routes if c is not None), key=lambda p: p[0])
    costs = [c for c, _ in priced]
    choices = [(combined(costs, combine), tuple(m for m, _ in routes))]
    for keep in range(len(priced) - 1, 0, -1):
        choices.append(
            (combined(costs[:keep], combine), tuple(m for _, m in priced[:keep]))
        )
    return choices


def combined(costs: Sequence[Decimal], combine: Literal["max", "sum"]) -> Decimal:
    """What routes of these costs reserve together (`costs` sorted, cheapest first)."""
    if not costs:
        return Decimal(0)
    return sum(costs, Decimal(0)) if combine == "sum" else max(costs)
