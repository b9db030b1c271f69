"""Spend of the proxy: budgets reserved per virtual key, every attempt priced.

Before a call is sent, its virtual key's budget reserves the worst case over
every attempt of every route of its group (the same hard bound as
`ChatHolySheep`'s budgets, `spend.budgets.call_cost`). When the call ends,
each request that went upstream becomes one `CallRecord` (priced with the
`PriceBook`; a stream cut after content without usage is estimated, never
zero) written to the ledger and the metrics with the key's *name* (never the
key), the group, the served model and the key's tags; the reservation then
settles to the sum of their costs. While a stream delivers, its reservation's
lease is renewed (`LeaseRenewal`), so the lease only bounds how long a dead
worker's reservations outlive it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from langchain_holysheep._contract import ATTEMPT_EVENT
from langchain_holysheep.resilience._events import Event
from langchain_holysheep.serve._groups import Group
from langchain_holysheep.serve._relay import WireAttempt
from langchain_holysheep.serve.config import KeySpec
from langchain_holysheep.spend.budgets._budget import Budget
from langchain_holysheep.spend.budgets._cost import (
    CallShape,
    RouteCosts,
    RouteShape,
    call_cost,
    call_lease,
)
from langchain_holysheep.spend.budgets._estimate import (
    bound_prompt_tokens,
    estimate_prompt_tokens,
    estimate_text_tokens,
)
from langchain_holysheep.spend.budgets._reservation import Reservation
from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.records import (
    CallRecord,
    Outcome,
    TokenUsage,
    make_call_record,
)
from langchain_holysheep.spend.tracking._extract import usage_from_openai

__all__ = ["CallSpend", "LeaseRenewal", "Spend"]

_logger = logging.getLogger(__name__)
_PLANS = 4_096  # (group, max_tokens, n) plans kept; then forgotten all at once


class CallSpend:
    """What one proxied call needs for its records: who, what, and its attempts."""

    __slots__ = ("events", "group", "key_name", "request", "requested", "tags")

    def __init__(
        self, key_name: str, tags: tuple[str, ...], group: str, request: Mapping
    ) -> None:
        self.key_name = key_name
        self.tags = tags
        self.group = group
        self.requested = group
        self.request = request
        self.events: list[dict[str, Any]] = []

    def take(self, events: list[Event]) -> None:
        """Keep the call's attempt events (one per request sent, in order)."""
        for event in events:
            if event.name == ATTEMPT_EVENT:
                self.events.append(event.data)
        events.clear()


class LeaseRenewal:
    """Keeps a streamed call's reservation held: renews it a third of the way.

    Args:
        reservation: the call's reservation (`None`, or nothing held: no-op).
    """

    __slots__ = ("_every", "_next", "_reservation")

    def __init__(self, reservation: Reservation | None) -> None:
        held = reservation.held if reservation is not None else None
        self._reservation = reservation
        self._every = None if held is None else held.lease_seconds / 3
        self._next = time.monotonic() + (self._every or 0.0)

    def tick(self) -> None:
        """Note progress; renews the lease when a third of it has passed."""
        if self._every is None:
            return
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._every
            self._reservation.extend()  # type: ignore[union-attr]


class Spend:
    """Budgets and records of every proxied call.

    Args:
        keys: the virtual keys (name -> spec).
        pricebook: prices of the served models.
        sinks: where records go (the ledger, the metrics), each with `record_many`.
        store: the state store of the budgets (`None`: `HOLYSHEEP_STATE_URL`).
    """

    def __init__(
        self,
        keys: Mapping[str, KeySpec],
        pricebook: PriceBook,
        sinks: Sequence[Any],
        store: Any = None,
    ) -> None:
        self.pricebook = pricebook
        self.sinks = list(sinks)
        self.budgets: dict[str, Budget] = {}
        for name, spec in keys.items():
            if spec.budget is not None:
                self.budgets[name] = Budget(
                    spec.budget.limit,
                    window=spec.budget.window,
                    strict=spec.budget.strict,
                    name=f"key {name}",
                    key=f"serve-key/{name}",
                    store=store,
                    thresholds=(),
                    lease=spec.budget.lease,
                )
        self._plans: dict[tuple[int, Any, int], tuple[Group, RouteCosts]] = {}

    # -- before --------------------------------------------------------------------
    def shape(self, group: Group, body: Mapping[str, Any]) -> CallShape:
        """The worst case of a request on `group` (every attempt of every route)."""
        call_max, choices = _limits(body)
        return CallShape(
            _route_shapes(group, call_max),
            [body.get("messages") or []],
            body.get("tools"),
            body.get("response_format"),
            group.router.deadline,
            choices,
        )

    def _route_costs(self, group: Group, body: Mapping[str, Any]) -> RouteCosts:
        """The routes' costs of a request on `group`, but for its prompt (kept)."""
        call_max, choices = _limits(body)
        key = (id(group), call_max, choices)
        plan = self._plans.get(key)
        if plan is None or plan[0] is not group:
            if len(self._plans) >= _PLANS:
                self._plans.clear()
            costs = RouteCosts(_route_shapes(group, call_max), choices, self.pricebook)
            plan = self._plans[key] = (group, costs)
        return plan[1]

    def reserve(
        self, key_name: str, group: Group, body: Mapping[str, Any]
    ) -> Reservation | None:
        """Reserve the call's worst case on the key's budget (`None`: no budget).

        Raises:
            BudgetExceededError: it does not fit; nothing was reserved.
            UnpricedCallError: a strict budget and an unpriced route.
            BudgetStoreError: the state store is unreachable (fail closed).
        """
        budget = self.budgets.get(key_name)
        if budget is None:
            return None
        if budget.estimate != "bound":
            shape = self.shape(group, body)
            costs, combine = call_cost(budget, shape, self.pricebook)
            return budget.reserve_routes(
                costs, combine=combine, lease=shape.lease(budget.lease)
            )
        # `call_cost` of `shape(group, body)`, with what the group fixes kept
        prompt = bound_prompt_tokens(
            body.get("messages") or [],
            tools=body.get("tools"),
            response_format=body.get("response_format"),
        )
        routes = self._route_costs(group, body).costs(
            prompt + budget.extra_prompt_tokens
        )
        lease = call_lease(budget.lease, group.router.deadline)
        return budget.reserve_routes(routes, combine="sum", lease=lease)

    # -- after ---------------------------------------------------------------------
    def finish(
        self,
        call: CallSpend,
        attempts: Sequence[WireAttempt],
        reservation: Reservation | None,
    ) -> Decimal | None:
        """Record every attempt of a finished call and settle its reservation."""
        records = self.records(call, attempts)
        total: Decimal | None = Decimal(0)
        for rec in records:
            if rec.cost is None:
                total = None if rec.usage.total else total
            elif total is not None:
                total += rec.cost
        if reservation is not None:
            if total:
                reservation.settle(total)
            else:
                reservation.release()
        for sink in self.sinks:
            try:
                sink.record_many(records)
            except Exception:  # spend must never break serving
                _logger.exception("could not record the spend of a proxied call")
        return total

    def records(
        self, call: CallSpend, attempts: Sequence[WireAttempt]
    ) -> list[CallRecord]:
        """One `CallRecord` per request sent upstream, in order."""
        out: list[CallRecord] = []
        if not attempts:
            return out
        first = attempts[0].route.name
        run_id = f"serve:{id(call):x}:{call.key_name}"
        metadata = (("key", call.key_name), ("group", call.group))
        events = call.events
        cost = self.pricebook.cost
        prev = None
        for i, attempt in enumerate(attempts):
            outcome, error = _outcome(events[i] if i < len(events) else None)
            usage, estimated = self._usage(call, attempt)
            served = attempt.route.name
            started, first_token = attempt.started, attempt.first_token
            end = attempt.ended or time.perf_counter()
            out.append(
                make_call_record(
                    timestamp=time.time(),
                    run_id=run_id,
                    requested_model=call.requested,
                    served_model=served,
                    outcome=outcome,
                    usage=usage,
                    cost=cost(served, usage, warn=False),
                    currency="USD",
                    latency_ms=(end - started) * 1000,
                    ttft_ms=None
                    if first_token is None
                    else (first_token - started) * 1000,
                    attempt=i + 1,
                    is_retry=prev == served,
                    is_fallback=served != first,
                    error=error,
                    tags=call.tags,
                    metadata=metadata,
                    estimated=estimated,
                    key_name=call.key_name,
                    model_group=call.group,
                )
            )
            prev = served
        return out

    def _usage(self, call: CallSpend, attempt: WireAttempt) -> tuple[TokenUsage, bool]:
        if attempt.usage:
            return usage_from_openai(attempt.usage), False
        if not attempt.delivered:
            return TokenUsage(), False
        prompt = estimate_prompt_tokens(
            call.request.get("messages") or [], tools=call.request.get("tools")
        )
        output = estimate_text_tokens("".join(attempt.delivered))
        return TokenUsage(input=prompt, output=output), True


def _limits(body: Mapping[str, Any]) -> tuple[int | None, int]:
    """A request's own output limit (`None`: the routes') and answers asked for."""
    requested = body.get("max_completion_tokens") or body.get("max_tokens")
    call_max = requested if isinstance(requested, int) and requested > 0 else None
    n = body.get("n")
    return call_max, n if isinstance(n, int) and n > 0 else 1


def _route_shapes(group: Group, call_max: int | None) -> tuple[RouteShape, ...]:
    """Every route of `group`: its model, most attempts and output limit."""
    router = group.router
    return tuple(
        RouteShape(route.name, router.retry_policy(route).max_attempts, call_max or own)
        for route, own in zip(router.routes, group.max_tokens, strict=True)
    )


def _outcome(event: Mapping[str, Any] | None) -> tuple[Outcome, str | None]:
    if event is None:
        return "cancelled", "cancelled"
    if event.get("action") == "success":
        return "ok", None
    error = str(event.get("error") or "error").split(":", 1)[0]
    status = event.get("status")
    return "error", f"{error} ({status})" if status else error
