"""`Reserving`: a spend handler's budgets, reserved before a call is sent.

Budgets attached to the handler, or to a run through
`config={"metadata": {"holysheep_budget": budget}}`, reserve the call's worst
case in `on_chat_model_start`; a refusal raises `BudgetExceededError` there, so
nothing is sent. A long stream renews its reservations' leases as it goes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from langchain_holysheep.spend.budgets._budget import Budget
from langchain_holysheep.spend.budgets._cost import CallShape, call_cost, call_shape
from langchain_holysheep.spend.budgets._errors import BudgetError
from langchain_holysheep.spend.budgets._inflight import RESERVATIONS
from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.records import TokenUsage
from langchain_holysheep.spend.tracking._attempts import RunState
from langchain_holysheep.spend.tracking._runtree import RunTree
from langchain_holysheep.spend.tracking._tracker import SpendTracker

__all__ = [
    "BUDGET_METADATA_KEY",
    "METADATA_KEYS",
    "Reserving",
    "budgets_in",
    "run_metadata",
]

_logger = logging.getLogger("langchain_holysheep.spend.tracking._callback")

#: Run metadata key under which a `Budget` (or a list of them) may be attached.
BUDGET_METADATA_KEY = "holysheep_budget"
METADATA_KEYS = frozenset(
    ("user", "user_id", "thread_id", "session_id", "tenant", "team")
)


def run_metadata(
    metadata: Mapping[str, Any], budgets: list[Budget]
) -> tuple[tuple[str, str], ...]:
    """The run metadata a record keeps: user, thread, ... and budget scopes."""
    keys = METADATA_KEYS
    if budgets:
        keys = keys | {b.scope for b in budgets}
    return tuple(
        [
            (k, str(v))
            for k, v in metadata.items()
            if k in keys and isinstance(v, (str, int))
        ]
    )


def budgets_in(metadata: Mapping[str, Any] | None) -> list[Budget]:
    """The budgets a run's metadata attaches (`holysheep_budget`)."""
    value = (metadata or {}).get(BUDGET_METADATA_KEY)
    if value is None:
        return []
    if isinstance(value, Budget):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return [b for b in value if isinstance(b, Budget)]
    return []


class Reserving(RunTree):
    """The budget half of a spend handler: reserve, renew, refuse."""

    budgets: list[Budget]
    pricebook: PriceBook
    _trackers: list[SpendTracker]

    def _reserve(
        self,
        run_id: UUID,
        root: UUID,
        budgets: list[Budget],
        request: tuple[list[list[Any]], Any],
        params: Mapping[str, Any],
        requested: str,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
    ) -> CallShape | None:
        try:
            shape = call_shape(request[0], params, requested, request[1])
            costs = {id(b): call_cost(b, shape, self.pricebook) for b in budgets}
            for m in {
                m for routes, _ in costs.values() for m, c in routes if c is None
            }:
                self.pricebook.cost(m, TokenUsage())  # the one-time warning
        except Exception:
            _logger.exception("HolySheep spend: could not estimate the call's cost")
            return None
        for budget in budgets:
            if RESERVATIONS.has(run_id, budget):
                continue
            routes, combine = costs[id(budget)]
            try:
                res = budget.reserve_routes(
                    routes,
                    budget.scope_key(tags, metadata),
                    run_key=str(root),
                    combine=combine,
                    lease=shape.lease(budget.lease),
                )
            except BudgetError:
                for held in RESERVATIONS.pop(run_id):
                    held.release()
                self._leave(run_id)
                for tracker in self._trackers:
                    tracker.record_rejected()
                raise
            RESERVATIONS.add(run_id, budget, res)
            if budget.window == "run":
                self._root_budgets.setdefault(root, set()).add(budget)
        return shape

    def _renew(self, run_id: UUID, run: RunState) -> None:
        """Renew the leases of a long stream's reservations (a third of the way)."""
        now = time.perf_counter()
        lease = min(b.lease for b in run.budgets)
        if now - run.renewed < lease / 3:
            return
        run.renewed = now
        for res in RESERVATIONS.held(run_id):
            res.extend()
