"""Report attempts, retries, fallbacks and circuit transitions through callbacks.

Inside a chat model, `_generate` / `_agenerate` receive the LLM run's
`CallbackManagerForLLMRun`; LangChain (1.7) gives `_stream` / `_astream` none.
For streams, the chat model's `stream()` / `astream()` open a `live_stream`
scope: it fixes the run id in advance, configures the same handlers LangChain
will configure, and passes a short string token through the call's kwargs; the
router turns it back into a run manager with `pop_stream_scope(kwargs)`.

Events (all with the LLM run's id):

- retries: `on_retry(retry_state)` (tenacity's `RetryCallState`);
- `on_custom_event("holysheep_attempt", {...})` after every attempt;
- `on_custom_event("holysheep_fallback", {...})` when a route is left;
- `on_custom_event("holysheep_circuit", {...})` on breaker transitions caused by
  the call.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.callbacks.manager import ahandle_event, handle_event
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.utils.uuid import uuid7
from tenacity import RetryCallState

from langchain_holysheep._contract import ATTEMPT_EVENT, CIRCUIT_EVENT, FALLBACK_EVENT

__all__ = [
    "LiveStreamMixin",
    "ATTEMPT_EVENT",
    "CIRCUIT_EVENT",
    "FALLBACK_EVENT",
    "STREAM_KWARG",
    "StreamScope",
    "aemit",
    "emit",
    "live_stream",
    "pop_stream_scope",
]

STREAM_KWARG = "_holysheep_stream"
"""The kwarg carrying a live-stream token from `stream()` to `_stream()`."""

AnyRunManager = CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun


@dataclass(frozen=True)
class Event:
    """A pending report: a retry (`data` is the retry state) or a custom event."""

    name: str
    data: Any


def _take(run_manager: AnyRunManager | None, events: list[Event]) -> list[Event]:
    """The events to deliver now (the list is cleared either way)."""
    pending = list(events) if run_manager is not None and run_manager.handlers else []
    events.clear()
    return pending


def _custom(run_manager: AnyRunManager, event: Event) -> tuple[tuple, dict]:
    """`(args, kwargs)` of `handle_event` for a custom event of the run."""
    args = (
        run_manager.handlers,
        "on_custom_event",
        "ignore_custom_event",
        event.name,
        event.data,
    )
    kwargs = {
        "run_id": run_manager.run_id,
        "tags": run_manager.tags,
        "metadata": run_manager.metadata,
    }
    return args, kwargs


def emit(run_manager: CallbackManagerForLLMRun | None, events: list[Event]) -> None:
    """Deliver `events` to a sync run manager's handlers, then clear the list."""
    if not events:
        return
    for event in _take(run_manager, events):
        assert run_manager is not None
        if event.name == "retry":
            run_manager.on_retry(event.data)
        else:
            args, kwargs = _custom(run_manager, event)
            handle_event(*args, **kwargs)


async def aemit(run_manager: AnyRunManager | None, events: list[Event]) -> None:
    """Deliver `events` to a run manager (sync or async), then clear the list."""
    if not events:
        return
    if isinstance(run_manager, CallbackManagerForLLMRun):
        emit(run_manager, events)
        return
    for event in _take(run_manager, events):
        assert run_manager is not None
        if event.name == "retry":
            await run_manager.on_retry(event.data)
        else:
            args, kwargs = _custom(run_manager, event)
            await ahandle_event(*args, **kwargs)


def retry_event(retry_state: RetryCallState) -> Event:
    """The pending report of a retry."""
    return Event("retry", retry_state)


# -- live streams ------------------------------------------------------------------
@dataclass
class StreamScope:
    """What `_stream` needs from `stream()`: the run manager, and "live" mode."""

    run_manager: CallbackManagerForLLMRun | None
    async_run_manager: AsyncCallbackManagerForLLMRun | None


_SCOPES: dict[str, StreamScope] = {}
_SCOPES_LOCK = threading.Lock()
_COUNTER = itertools.count(1)


def _run_managers(
    model: Any, config: RunnableConfig, run_id: Any, *, is_async: bool
) -> StreamScope:
    args = (
        config.get("callbacks"),
        getattr(model, "callbacks", None),
        bool(getattr(model, "verbose", False)),
        config.get("tags"),
        getattr(model, "tags", None),
        config.get("metadata"),
        getattr(model, "metadata", None),
    )
    manager = (AsyncCallbackManager if is_async else CallbackManager).configure(*args)
    fields = {
        "run_id": run_id,
        "handlers": manager.handlers,
        "inheritable_handlers": manager.inheritable_handlers,
        "parent_run_id": manager.parent_run_id,
        "tags": manager.tags,
        "inheritable_tags": manager.inheritable_tags,
        "metadata": manager.metadata,
        "inheritable_metadata": manager.inheritable_metadata,
    }
    if is_async:
        return StreamScope(None, AsyncCallbackManagerForLLMRun(**fields))
    return StreamScope(CallbackManagerForLLMRun(**fields), None)


@contextmanager
def live_stream(
    model: Any, config: RunnableConfig | None, *, is_async: bool = False
) -> Iterator[tuple[RunnableConfig, dict[str, str]]]:
    """Open a live-stream scope for one `stream()` / `astream()` call.

    Yields the config to pass on (with a fixed `run_id`) and the extra kwargs
    (a token) to pass to `BaseChatModel.stream`; `_stream` recovers the scope
    with `pop_stream_scope(kwargs)`. Use `is_async=True` from `astream()`.

    Example:
        ```python
        def stream(self, input, config=None, *, stop=None, **kwargs):
            with live_stream(self, config) as (config, extra):
                yield from super().stream(input, config, stop=stop, **extra, **kwargs)
        ```
    """
    cfg = ensure_config(config)
    run_id = cfg.get("run_id") or uuid7()
    cfg = {**cfg, "run_id": run_id}  # type: ignore[assignment]
    scope = _run_managers(model, cfg, run_id, is_async=is_async)
    token = f"hs-stream-{next(_COUNTER)}"
    with _SCOPES_LOCK:
        _SCOPES[token] = scope
    try:
        yield cfg, {STREAM_KWARG: token}
    finally:
        with _SCOPES_LOCK:
            _SCOPES.pop(token, None)


class LiveStreamMixin:
    """`stream()` / `astream()` that open a `live_stream` scope for a routed model.

    Put it before the chat-model base class; the model's `_stream` / `_astream`
    then learn that they serve a real stream (not an invoke) and get the run's
    callbacks, which LangChain does not pass to them.
    """

    def stream(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Stream the answer; fails over invisibly until the first content."""
        with live_stream(self, config) as (cfg, extra):
            yield from super().stream(  # type: ignore[misc]
                input, cfg, stop=stop, **extra, **kwargs
            )

    async def astream(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Async `stream`."""
        with live_stream(self, config, is_async=True) as (cfg, extra):
            async for chunk in super().astream(  # type: ignore[misc]
                input, cfg, stop=stop, **extra, **kwargs
            ):
                yield chunk


def pop_stream_scope(kwargs: dict[str, Any]) -> StreamScope | None:
    """Remove the live-stream token from `kwargs`; its scope, if still open."""
    token = kwargs.pop(STREAM_KWARG, None)
    if token is None:
        return None
    return _SCOPES.get(token)
