"""Per-run and per-thread caps of `SpendLimitMiddleware`, kept in a state store.

Each cap is a `Budget` (window `"total"`) keyed by its run or thread:
`agent-run/<run key>` and `agent-thread/<thread_id>`. Every model call reserves
its worst case in the store atomically, so concurrent runs of one thread, in
one process or in many sharing a SQLite file or a Redis server, share one cap.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from langgraph.config import get_config

from langchain_holysheep.spend import Budget
from langchain_holysheep.spend.budgets._errors import BudgetStoreError
from langchain_holysheep.spend.budgets._settings import resolve_store
from langchain_holysheep.state import (
    MemoryStore,
    StateStore,
    StateStoreUnavailableError,
)

__all__ = ["Caps", "Scope", "new_run_key", "resolve_caps_store", "thread_key"]

_ZERO = Decimal(0)
_WINDOW: Literal["total"] = "total"
_RUN_TTL = 86400.0  # a run's window outlives a run that never ended by a day
_PROCESS_MEMORY = MemoryStore()
_PROCESS_LOCK = threading.Lock()


def resolve_caps_store(state: StateStore | str | None) -> StateStore:
    """The store of the caps: given, named by URL, or `HOLYSHEEP_STATE_URL`.

    `memory://` (the default) is one store for the whole process, so every
    `SpendLimitMiddleware` of the process sees the same runs and threads.
    """
    return resolve_store(
        state, what="SpendLimitMiddleware state", memory=lambda: _PROCESS_MEMORY
    )


def new_run_key() -> str:
    """A fresh identity for one agent run in the store."""
    return uuid.uuid4().hex


def thread_key() -> str | None:
    """The `thread_id` of the running graph's config, if any."""
    try:
        config = get_config()
    except RuntimeError:  # not inside a graph step
        return None
    value = (config.get("configurable") or {}).get("thread_id")
    return None if value is None else str(value)


@dataclass(frozen=True)
class Scope:
    """One capped scope of a model step: its name, limit and store key."""

    name: str  # "run" or "thread"
    limit: Decimal
    key: str  # the budget key in the store, e.g. "agent-thread/t-1"

    @property
    def own_thread(self) -> bool:
        """A run with no `thread_id`: its thread lives as long as the run."""
        return self.key.startswith("agent-thread/run:")

    @property
    def budget_name(self) -> str:
        """The name of its budget (and of its refusals): "agent run"."""
        return f"agent {self.name}"

    @property
    def store_key(self) -> str:
        """The key of its window in the store (`Budget.store_key`)."""
        return f"{self.key}/global"


class Caps:
    """The scopes of one model step and their budgets in the store."""

    def __init__(
        self,
        store: StateStore,
        scopes: list[Scope],
        *,
        strict: bool,
        lease: float,
    ) -> None:
        self.store, self.scopes = store, scopes
        self.budgets: dict[str, Budget] = {
            s.budget_name: Budget(
                s.limit,
                window=_WINDOW,
                thresholds=(),
                on_exceeded="downgrade",
                strict=strict,
                name=s.budget_name,
                key=s.key,
                store=store,
                lease=lease,
                forget_after=_RUN_TTL if s.name == "run" or s.own_thread else None,
            )
            for s in scopes
        }

    def scope(self, budget_name: str) -> Scope | None:
        """The scope whose budget has this name."""
        return next((s for s in self.scopes if s.budget_name == budget_name), None)

    def usage(self, scope: Scope) -> tuple[Decimal, Decimal]:
        """Settled spend and live reservations of a scope, from the store.

        Raises:
            BudgetStoreError: the store cannot be reached (fail closed).
        """
        try:
            usage = self.store.usage(scope.store_key, _WINDOW)
        except StateStoreUnavailableError as exc:
            raise BudgetStoreError(scope.budget_name, _WINDOW, None, exc) from exc
        return usage.spent, usage.reserved

    def exhausted(self) -> tuple[Scope, Decimal] | None:
        """The first scope with nothing left (settled spend), and its spend."""
        for scope in self.scopes:
            spent, _ = self.usage(scope)
            if spent >= scope.limit:
                return scope, spent
        return None

    def spent(self) -> dict[str, Decimal]:
        """Settled spend of each scope, by name ("run", "thread")."""
        return {s.name: plain(self.usage(s)[0]) for s in self.scopes}

    def adopt(self, scope: Scope, known: Decimal) -> None:
        """Count spend the agent state knows of and the store does not.

        A thread checkpointed with its spend outlives a store that forgot it
        (a `memory://` store after a restart): the difference is charged once,
        so the cap still covers what the thread spent before.
        """
        with _PROCESS_LOCK:
            spent, _ = self.usage(scope)
            if known > spent:
                try:
                    self.store.charge(scope.store_key, _WINDOW, known - spent)
                except StateStoreUnavailableError as exc:
                    raise BudgetStoreError(
                        scope.budget_name, _WINDOW, None, exc
                    ) from exc

    def forget(self, scope: Scope) -> None:
        """Drop a finished run's window (best effort)."""
        try:
            self.store.forget(scope.store_key, _WINDOW)
        except Exception:  # the entry is tiny; a store outage must not fail the run
            return


def scopes_of(
    run_limit: Decimal | None,
    thread_limit: Decimal | None,
    run_key: str,
    thread_id: str | None,
) -> list[Scope]:
    """The capped scopes of a step (a run with no thread is its own thread)."""
    scopes = []
    if run_limit is not None:
        scopes.append(Scope("run", run_limit, f"agent-run/{run_key}"))
    if thread_limit is not None:
        tid = thread_id if thread_id is not None else f"run:{run_key}"
        scopes.append(Scope("thread", thread_limit, f"agent-thread/{tid}"))
    return scopes


def plain(amount: Decimal) -> Decimal:
    """An amount without the store's trailing zeros (`0E-9` -> `0`)."""
    if amount == amount.to_integral_value():
        return amount.quantize(Decimal(1))
    return amount.normalize()


def state_spend(state: Any, key: str) -> Decimal:
    """A spend amount from the agent state (0 when absent)."""
    return Decimal(state.get(key) or 0)
