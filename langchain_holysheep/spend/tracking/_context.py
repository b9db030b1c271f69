"""Tracking with no callbacks passed: `get_holysheep_callback()` and the env switch.

Both rest on LangChain's configure hooks, registered once when this module is
imported (never per `with` block, unlike `get_usage_metadata_callback`, see
langchain issue #32300):

- `with get_holysheep_callback() as cb:` prices every chat-model call made in
  the block, in this thread, in LangChain's executor threads (`batch`,
  callbacks of async runs) and in asyncio tasks created inside it (they copy
  the context), in `threading.Thread`s started inside it and in work submitted
  to any `ThreadPoolExecutor` inside it (see `_threads`). Other threads' calls
  are not its own. `scope="process"` prices every call in the process, in any
  thread, while the block is open.
- `HOLYSHEEP_TRACK_SPEND=1`: every chat-model call in the process (any thread)
  is priced into `global_tracker()`; the report is written at exit to stderr,
  or to the file named by `HOLYSHEEP_SPEND_REPORT` (JSON if it ends in
  `.json`). LangChain creates a new handler per top-level call; they all feed
  the one shared tracker. The hook exists once `langchain_holysheep` has been
  imported (the package imports this module).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from langchain_core.tracers.context import register_configure_hook

from langchain_holysheep.spend.budgets._budget import Budget
from langchain_holysheep.spend.pricing._book import PriceBook
from langchain_holysheep.spend.tracking._callback import HolySheepCallbackHandler
from langchain_holysheep.spend.tracking._sinks import RecordSink, close_sink
from langchain_holysheep.spend.tracking._threads import (
    PROCESS_SCOPE,
    ProcessScopeHandler,
    enter_block,
)
from langchain_holysheep.spend.tracking._tracker import SpendTracker, global_tracker

__all__ = [
    "SPEND_REPORT_ENV",
    "TRACK_SPEND_ENV",
    "EnvSpendHandler",
    "get_holysheep_callback",
    "write_global_report",
]

TRACK_SPEND_ENV = "HOLYSHEEP_TRACK_SPEND"
SPEND_REPORT_ENV = "HOLYSHEEP_SPEND_REPORT"

_block_var: ContextVar[HolySheepCallbackHandler | None] = ContextVar(
    "holysheep_callback", default=None
)
_env_var: ContextVar[HolySheepCallbackHandler | None] = ContextVar(
    "holysheep_track_spend", default=None
)

_atexit_lock = threading.Lock()
_atexit_registered = False


def write_global_report(path: str | None = None) -> None:
    """Write the global report to `path`, `$HOLYSHEEP_SPEND_REPORT` or stderr."""
    tracker = global_tracker()
    report = tracker.report()
    target = path or os.environ.get(SPEND_REPORT_ENV)
    try:
        if target:
            text = (
                json.dumps(report.to_dict(), indent=2) + "\n"
                if target.lower().endswith(".json")
                else report.render(use_rich=False)
            )
            Path(target).write_text(text, encoding="utf-8")
        else:
            sys.stderr.write(report.render())
            sys.stderr.flush()
    finally:
        tracker.close()


def _register_atexit() -> None:
    global _atexit_registered
    with _atexit_lock:
        if not _atexit_registered:
            atexit.register(write_global_report)
            _atexit_registered = True


class EnvSpendHandler(HolySheepCallbackHandler):
    """The handler LangChain creates per top-level call under `HOLYSHEEP_TRACK_SPEND`.

    Feeds `global_tracker()`; the first one registers the at-exit report.
    """

    def __init__(self) -> None:
        super().__init__(tracker=global_tracker())
        _register_atexit()


register_configure_hook(_block_var, True)
register_configure_hook(_env_var, True, EnvSpendHandler, TRACK_SPEND_ENV)
register_configure_hook(PROCESS_SCOPE, True, ProcessScopeHandler)  # type: ignore[arg-type]


def _open_ledger(
    ledger: RecordSink | str | os.PathLike[str] | None,
) -> tuple[RecordSink | None, RecordSink | None]:
    """The sink for `ledger`, and the ledger opened for a path or URL (or `None`)."""
    if ledger is None or not isinstance(ledger, (str, os.PathLike)):
        return ledger, None
    from langchain_holysheep.spend.ledger import open_ledger

    owned = open_ledger(ledger)
    return owned, owned


class _Block(AbstractContextManager[HolySheepCallbackHandler]):
    """The `with` block of `get_holysheep_callback()` (enter it once)."""

    __slots__ = ("_args", "_close", "_handler", "_owned")

    def __init__(
        self,
        budget: Budget | Sequence[Budget] | None,
        ledger: RecordSink | str | os.PathLike[str] | None,
        tracker: SpendTracker | None,
        pricebook: PriceBook | None,
        process: bool,
    ) -> None:
        self._args = (budget, ledger, tracker, pricebook, process)

    def __enter__(self) -> HolySheepCallbackHandler:
        budget, ledger, tracker, pricebook, process = self._args
        sink, owned = _open_ledger(ledger)
        try:
            handler = HolySheepCallbackHandler(
                budget,
                tracker=tracker,
                pricebook=pricebook,
                ledger=sink,
                parent=None if process else _block_var.get(),
            )
        except BaseException:
            if owned is not None:
                close_sink(owned)
            raise
        self._close = (
            PROCESS_SCOPE.open(handler) if process else enter_block(_block_var, handler)
        )
        self._handler, self._owned = handler, owned
        return handler

    def __exit__(self, *exc_info: object) -> None:
        self._close()
        if self._owned is not None:
            self._handler.tracker.remove_sink(self._owned)
            close_sink(self._owned)


def get_holysheep_callback(
    budget: Budget | Sequence[Budget] | None = None,
    ledger: RecordSink | str | os.PathLike[str] | None = None,
    *,
    tracker: SpendTracker | None = None,
    pricebook: PriceBook | None = None,
    scope: Literal["context", "process"] = "context",
) -> AbstractContextManager[HolySheepCallbackHandler]:
    """Price every chat-model call in the block, with no callbacks passed.

    Args:
        budget: budgets enforced for every call in the block.
        ledger: a `RecordSink` (e.g. `SQLiteLedger`), or a path or
            `postgresql://` URL for a new ledger (`open_ledger`; closed when
            the block ends).
        tracker: the tracker to feed (default: a new one).
        pricebook: the prices (default: the tracker's).
        scope: `"context"` prices the calls of this thread and its asyncio
            tasks, and of the threads and executor work started inside the
            block; `"process"` prices every call in the process, whatever
            thread makes it, while the block is open.

    Returns:
        A context manager; `with` gives the handler (`.report()` / `.tracker`
        give the numbers). Nested blocks both see the inner block's calls,
        and both blocks' budgets apply.

    Example:
        ```python
        with get_holysheep_callback(budget=Budget("0.50")) as cb:
            chain.invoke({"question": "..."})
        print(cb.report())
        ```
    """
    if scope not in ("context", "process"):
        raise ValueError(f"scope must be 'context' or 'process', not {scope!r}")
    return _Block(budget, ledger, tracker, pricebook, scope == "process")
