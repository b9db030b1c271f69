"""The spend tracker's LangChain configure hooks, in place without importing LangChain.

`langchain_holysheep.spend.tracking._context` registers LangChain configure
hooks (`HOLYSHEEP_TRACK_SPEND`, `get_holysheep_callback()` blocks). Importing
it imports LangChain, which a light use of the package (the command line,
the price catalogue) should not pay for. `install()`, run by the package's
`__init__`, keeps the promise that the hooks exist once the package is
imported: when LangChain's hook list (`langchain_core.tracers.context`) is
loaded, by anyone, the list is replaced by one that imports `_context` the
first time LangChain reads it (at the first call's configure), so the hooks
are registered before any call needs them. When LangChain is already loaded,
`_context` is imported right away.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

__all__ = ["install"]

_HOOKS_MODULE = "langchain_core.tracers.context"
_CONTEXT_MODULE = "langchain_holysheep.spend.tracking._context"


class _HookList(list):  # type: ignore[type-arg]
    """LangChain's list of configure hooks; reading it first registers ours."""

    _loaded = False
    _lock = threading.RLock()

    def __iter__(self) -> Iterator[Any]:
        if not _HookList._loaded:
            with _HookList._lock:
                if not _HookList._loaded:
                    importlib.import_module(_CONTEXT_MODULE)  # appends to self
                    _HookList._loaded = True
        return super().__iter__()


def _patch(module: ModuleType) -> None:
    """Swap in the hook list that registers ours on first read."""
    hooks = getattr(module, "_configure_hooks", None)
    if isinstance(hooks, list) and not isinstance(hooks, _HookList):
        module._configure_hooks = _HookList(hooks)  # type: ignore[attr-defined]


class _Loader(importlib.abc.Loader):
    """Runs the real loader, then patches the module it loaded."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _patch(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ...
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds LangChain's hook module as usual, with a patching loader."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _HOOKS_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


_finder = _Finder()


def install() -> None:
    """Make sure the spend hooks are registered before LangChain configures a call."""
    if _CONTEXT_MODULE in sys.modules:
        return
    if _HOOKS_MODULE in sys.modules:
        importlib.import_module(_CONTEXT_MODULE)
    elif _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
