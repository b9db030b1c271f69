"""Scoped changes to the config that a model call inside an agent node will use.

`create_agent` invokes the model as `model.invoke(messages)` with no config: the
config comes from LangChain's context variable (the model node's run). Setting
that variable around `handler(request)` adds tags (e.g. `nostream`, which keeps
an attempt's tokens out of `stream_mode="messages"`) or callback handlers (to
price every attempt) to exactly the calls made inside the block. Context
variables are per thread and per asyncio task, so concurrent runs do not mix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.callbacks.manager import (
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.runnables.config import var_child_runnable_config

from langchain_holysheep.spend.tracking._logfilter import quiet_budget_refusals

__all__ = [
    "NOSTREAM_TAG",
    "RETRY_EVENT",
    "aemit_events",
    "emit_events",
    "quiet_budget_refusals",
    "scoped_config",
]

NOSTREAM_TAG = "nostream"
"""LangGraph's tag for chat-model runs whose tokens `stream_mode="messages"` skips."""


def _with_handlers(callbacks: Any, handlers: Sequence[BaseCallbackHandler]) -> Any:
    if not handlers:
        return callbacks
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        for handler in handlers:
            manager.add_handler(handler, inherit=True)
        return manager
    return [*(callbacks or []), *handlers]


@contextmanager
def scoped_config(
    *,
    tags: Sequence[str] = (),
    handlers: Sequence[BaseCallbackHandler] = (),
) -> Iterator[None]:
    """Add `tags` and callback `handlers` to the runs started inside the block."""
    if not tags and not handlers:
        yield
        return
    config: dict[str, Any] = dict(var_child_runnable_config.get() or {})
    if tags:
        config["tags"] = [*config.get("tags", []), *tags]
    config["callbacks"] = _with_handlers(config.get("callbacks"), handlers)
    token = var_child_runnable_config.set(config)  # type: ignore[arg-type]
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


RETRY_EVENT = "holysheep_retry"


def _event(event: Any) -> tuple[str, Any]:
    if event.name != "retry":
        return event.name, event.data
    state = event.data  # tenacity's RetryCallState
    outcome = getattr(state, "outcome", None)
    exc = outcome.exception() if outcome is not None else None
    return RETRY_EVENT, {
        "attempt": getattr(state, "attempt_number", None),
        "error": None if exc is None else f"{type(exc).__name__}: {exc}"[:300],
        "wait_s": getattr(getattr(state, "next_action", None), "sleep", None),
    }


def emit_events(events: list[Any]) -> None:
    """Dispatch resilience events as LangChain custom events, then clear the list.

    Retries become `holysheep_retry`; attempts, fallbacks and circuit changes
    keep their names (`holysheep_attempt`, ...). Outside a run there is nobody
    to tell: they are dropped.
    """
    pending = list(events)
    events.clear()
    for event in pending:
        try:
            dispatch_custom_event(*_event(event))
        except RuntimeError:
            continue


async def aemit_events(events: list[Any]) -> None:
    """Async version of `emit_events`."""
    pending = list(events)
    events.clear()
    for event in pending:
        try:
            await adispatch_custom_event(*_event(event))
        except RuntimeError:
            continue
