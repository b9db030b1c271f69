"""Which threads a tracking block reaches: carried context and the process scope.

Python 3.10-3.13 threads start with an empty context, so the context variable
that names the open tracking block does not reach a `threading.Thread` or a
`ThreadPoolExecutor` worker. Two mechanisms close that gap:

- `carry_into_threads(var)` installs, once per process, a wrapper of
  `threading.Thread.start` and `concurrent.futures.ThreadPoolExecutor.submit`.
  The wrappers read the carried variables when the thread is started or the
  work is submitted; when one is set, the new thread's `run` (or the submitted
  callable) runs with the same value, and the value is reset when it returns,
  so an executor's pooled threads never keep it for later work. Only the
  variables passed to `carry_into_threads` are carried, nothing else of the
  caller's context. When none of them is set (no tracking block open), the
  wrappers cost one `ContextVar.get` per start or submit. While `submit` runs,
  the variables are cleared in the submitting context, so the worker threads
  the executor starts for itself do not carry them for their whole life.
- `PROCESS_SCOPE`, registered with LangChain's configure hooks, hands every
  chat-model call in the process, in any thread, to the tracking blocks opened
  with `scope="process"` while they are open.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

from langchain_holysheep.spend.tracking._callback import HolySheepCallbackHandler

__all__ = [
    "PROCESS_SCOPE",
    "ProcessScope",
    "ProcessScopeHandler",
    "carry_into_threads",
    "carried_variables",
    "enter_block",
]

_T = TypeVar("_T")
_Values = tuple[tuple[ContextVar[Any], Any], ...]

_install_lock = threading.Lock()
_carried: tuple[ContextVar[Any], ...] = ()
_original_start: Callable[[threading.Thread], None] | None = None
_original_submit: Callable[..., Future[Any]] | None = None
# Executors that run callables in another interpreter cannot take a wrapper
# holding a handler; nothing is carried into them.
_NOT_CARRIED: tuple[type, ...] = tuple(
    cls
    for cls in (getattr(concurrent.futures, "InterpreterPoolExecutor", None),)
    if isinstance(cls, type)
)
_MISSING = object()


def _capture() -> _Values:
    """The carried variables that are set in the caller's context."""
    found: list[tuple[ContextVar[Any], Any]] = []
    for var in _carried:
        value = var.get(None)
        if value is not None:
            found.append((var, value))
    return tuple(found)


def _run_carried(values: _Values, fn: Callable[..., _T], *args: Any, **kw: Any) -> _T:
    """Run `fn` with the carried values set, and reset them afterwards."""
    tokens = [(var, var.set(value)) for var, value in values]
    try:
        return fn(*args, **kw)
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def _start(self: threading.Thread) -> None:
    """`Thread.start` that runs the thread with the caller's carried values."""
    assert _original_start is not None
    values = _capture()
    if not values:
        _original_start(self)
        return
    previous = self.__dict__.get("run", _MISSING)
    run = self.run

    def run_carried() -> None:
        try:
            _run_carried(values, run)
        finally:
            _restore_run(self, run_carried, previous)

    self.run = run_carried  # type: ignore[method-assign]
    try:
        _original_start(self)
    except BaseException:
        _restore_run(self, run_carried, previous)
        raise


def _restore_run(thread: threading.Thread, ours: object, previous: object) -> None:
    """Undo the instance-level `run` set by `_start` (if it is still ours)."""
    if thread.__dict__.get("run") is ours:
        if previous is _MISSING:
            del thread.__dict__["run"]
        else:
            thread.__dict__["run"] = previous


def _submit(
    self: ThreadPoolExecutor, fn: Callable[..., _T], /, *args: Any, **kwargs: Any
) -> Future[_T]:
    """`ThreadPoolExecutor.submit` that runs `fn` with the carried values."""
    assert _original_submit is not None
    values = _capture()
    if not values or isinstance(self, _NOT_CARRIED):
        return _original_submit(self, fn, *args, **kwargs)
    # Worker threads started by this submit must not keep the values.
    cleared = [(var, var.set(None)) for var, _ in values]
    try:
        return _original_submit(
            self, functools.partial(_run_carried, values, fn), *args, **kwargs
        )
    finally:
        for var, token in reversed(cleared):
            var.reset(token)


def carry_into_threads(*variables: ContextVar[Any]) -> None:
    """Carry `variables` into threads and executor work started from now on.

    Installs the `Thread.start` / `ThreadPoolExecutor.submit` wrappers on the
    first call (once per process; later calls only add variables). Idempotent
    and thread-safe. A variable whose value is `None` is not carried.
    """
    global _carried, _original_start, _original_submit
    if all(var in _carried for var in variables):
        return
    with _install_lock:
        if _original_start is None:
            _original_start = threading.Thread.start
            _original_submit = ThreadPoolExecutor.submit
            threading.Thread.start = _start  # type: ignore[method-assign]
            ThreadPoolExecutor.submit = _submit  # type: ignore[method-assign,assignment]
        _carried += tuple(var for var in variables if var not in _carried)


def carried_variables() -> tuple[ContextVar[Any], ...]:
    """The variables carried into threads (empty until the first block opens)."""
    return _carried


def enter_block(var: ContextVar[_T | None], value: _T) -> Callable[[], None]:
    """Set `var` to `value` here and in the threads started from here.

    Returns:
        The function that resets `var` (call it in the same context).
    """
    if var not in _carried:  # once per variable
        carry_into_threads(var)
    return functools.partial(var.reset, var.set(value))


class ProcessScopeHandler(HolySheepCallbackHandler):
    """The handler LangChain adds to every call while a process-wide block is open.

    One is built from the open blocks (their budgets, trackers and prices)
    each time a process-wide block opens or closes. A run that already carries
    one (from its parent run) keeps it, so a call is never counted twice.
    """


class ProcessScope:
    """The open `scope="process"` tracking blocks, as a LangChain configure hook.

    LangChain reads configure hooks with `.get()` on every call, in whatever
    thread makes it; this object answers with the handler of the process-wide
    blocks open now (or `None`), so it reaches threads a `ContextVar` cannot.
    """

    name = "holysheep_process_scope"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[HolySheepCallbackHandler] = []
        self._head: ProcessScopeHandler | None = None

    def get(
        self, default: ProcessScopeHandler | None = None
    ) -> ProcessScopeHandler | None:
        """The handler for a call made now, or `default` when no block is open."""
        head = self._head
        return default if head is None else head

    def open(self, block: HolySheepCallbackHandler) -> Callable[[], None]:
        """Send every call in the process to `block` until the returned closer runs.

        `block` contributes its budgets, tracker and prices; it should be
        built with no parent block.
        """
        with self._lock:
            self._open.append(block)
            self._head = self._build()
        closed = False

        def close() -> None:
            nonlocal closed
            with self._lock:
                if closed:
                    return
                closed = True
                self._open = [b for b in self._open if b is not block]
                self._head = self._build()

        return close

    def _build(self) -> ProcessScopeHandler | None:
        head: ProcessScopeHandler | None = None
        for block in self._open:
            head = ProcessScopeHandler(
                block.budgets,
                tracker=block.tracker,
                pricebook=block.pricebook,
                parent=head,
            )
        return head


#: The one process-wide scope, registered as a configure hook by `_context`.
PROCESS_SCOPE = ProcessScope()
