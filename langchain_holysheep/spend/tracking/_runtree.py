"""`RunTree`: which top-level run each LangChain run belongs to.

A budget with `window="run"` counts everything one top-level run spends (a
chain, an agent turn, ...); the handler finds a chat-model run's top-level run
through the chain, tool and retriever runs it has seen start. Every entry is
removed when its run ends or fails.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from langchain_holysheep.spend.budgets._budget import Budget

__all__ = ["RunTree"]

_MAX_RUNS = 100_000
"""Runs remembered at most: past it, runs that never ended are forgotten.

A top-level run is not remembered: a run whose parent is not known has that
parent for root.
"""


class RunTree(BaseCallbackHandler):
    """The run-tree half of a spend handler.

    Each run's root, and the budgets whose `"run"` window ends with that root.
    """

    # events a spend handler has no use for: LangChain skips dispatching them
    ignore_agent = True
    ignore_retry = True

    def __init__(self) -> None:
        super().__init__()
        self._roots: dict[UUID, UUID] = {}
        self._root_budgets: dict[UUID, set[Budget]] = {}

    def _enter(self, run_id: UUID, parent_run_id: UUID | None) -> UUID:
        if parent_run_id is None:  # a top-level run: its own root, kept nowhere
            return run_id
        roots = self._roots
        root = roots.get(parent_run_id, parent_run_id)
        if len(roots) > _MAX_RUNS:  # runs that never ended: forget them
            roots.clear()
        roots[run_id] = root
        return root

    def _leave(self, run_id: UUID) -> None:
        if self._roots:
            self._roots.pop(run_id, None)
        if self._root_budgets:
            for budget in self._root_budgets.pop(run_id, ()):
                budget.end_run(str(run_id))

    def _run_start(
        self, *args: Any, run_id: UUID, parent_run_id: UUID | None = None, **kw: Any
    ) -> None:
        """Remember the run's place in the run tree (chains, tools, retrievers)."""
        self._enter(run_id, parent_run_id)

    def _run_end(self, *args: Any, run_id: UUID, **kwargs: Any) -> None:
        """Forget the run: it ended or failed."""
        self._leave(run_id)

    on_chain_start = on_tool_start = on_retriever_start = _run_start
    on_chain_end = on_tool_end = on_retriever_end = _run_end
    on_chain_error = on_tool_error = on_retriever_error = _run_end
