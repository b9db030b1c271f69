"""Budget reservations held by chat-model runs in flight, shared process-wide.

A budget reachable from two handlers of one run (metadata budgets, nested
blocks, the env-var handler) is reserved once; if a later handler refuses the
run, everything reserved for it is released. Routers read the routes a run may
use after a budget downgrade with `allowed_routes(run_id)`.
"""

from __future__ import annotations

import threading
from uuid import UUID

from langchain_holysheep.spend.budgets._budget import Budget
from langchain_holysheep.spend.budgets._reservation import Reservation

__all__ = ["RESERVATIONS", "allowed_routes"]


class _Reservations:
    """Reservations per run id, then per budget."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[UUID, dict[int, Reservation]] = {}

    def has(self, run_id: UUID, budget: Budget) -> bool:
        with self._lock:
            return id(budget) in self._runs.get(run_id, {})

    def add(self, run_id: UUID, budget: Budget, res: Reservation) -> None:
        with self._lock:
            self._runs.setdefault(run_id, {})[id(budget)] = res

    def held(self, run_id: UUID) -> list[Reservation]:
        with self._lock:
            return list(self._runs.get(run_id, {}).values())

    def holds(self, run_id: UUID) -> bool:
        """Whether anything is reserved for the run (no lock: a hint)."""
        return run_id in self._runs

    def pop(self, run_id: UUID) -> list[Reservation]:
        if run_id not in self._runs:  # most runs reserve nothing: no lock
            return []
        with self._lock:
            return list(self._runs.pop(run_id, {}).values())

    def models(self, run_id: UUID) -> tuple[str, ...] | None:
        with self._lock:
            found = list(self._runs.get(run_id, {}).values())
        allowed: tuple[str, ...] | None = None
        for res in found:
            if res.models:
                allowed = (
                    res.models
                    if allowed is None
                    else tuple(m for m in allowed if m in res.models)
                )
        return allowed


RESERVATIONS = _Reservations()


def allowed_routes(run_id: UUID) -> tuple[str, ...] | None:
    """Routes a run may use after budget downgrades (`None`: no restriction).

    For routers: a budget with `on_exceeded="downgrade"` that could not fit the
    worst case of every route reserved for the cheapest one only.
    """
    return RESERVATIONS.models(run_id)
