"""Lazy package exports: a name's module is imported when the name is first read.

A package lists its public names by module; `lazy_exports` returns the
package's module-level `__getattr__` and `__dir__` (PEP 562). Importing the
package then costs nothing beyond the package itself, so a command-line tool
that needs only the price catalogue never imports LangChain or the OpenAI SDK.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, which exports names by module.

    Args:
        package: the package's `__name__`.
        exports: `{module name: the names it provides}`.

    Returns:
        The two functions to bind as the package's `__getattr__` and `__dir__`.
        A name read once is stored in the package, so later reads are plain
        attribute reads.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
