"""Lazy package exports: a name's module is imported when the name is first read.

A package lists its public names once, as the imports of its
`if TYPE_CHECKING:` block, which type checkers and editors read as usual.
`lazy_exports` reads that block from the package's source and returns the
package's module-level `__getattr__` and `__dir__` (PEP 562) and its
`__all__`. Importing the package then costs nothing beyond the package itself,
so a command-line tool that needs only the price catalogue never imports
LangChain or the OpenAI SDK.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]

# The block as `ruff format` writes it: one `from MODULE import ...` statement
# per module, its names on one line or in parentheses, one per line.
_BLOCK = re.compile(r"^if TYPE_CHECKING:\n((?:[ \t]+\S.*\n|\n)+)", re.MULTILINE)
_FROM = re.compile(r"^\s+from\s+([\w.]+)\s+import\s+(\([^)]*\)|.+)$", re.MULTILINE)
_COMMENT = re.compile(r"#.*$", re.MULTILINE)


def declared_exports(source: str) -> dict[str, tuple[str, str]]:
    """`{exported name: (module, attribute)}` from the `if TYPE_CHECKING:` imports.

    Args:
        source: the package `__init__`'s source text.

    Raises:
        ValueError: the source has no `if TYPE_CHECKING:` block of
            `from MODULE import NAMES` statements.
    """
    block = _BLOCK.search(source)
    if block is None:
        raise ValueError(
            "a lazily exporting package lists its names in an "
            "`if TYPE_CHECKING:` block of `from MODULE import NAMES` statements"
        )
    where: dict[str, tuple[str, str]] = {}
    for module, names in _FROM.findall(_COMMENT.sub("", block.group(1))):
        for imported in names.strip("()").replace("\n", " ").split(","):
            attribute, _, alias = imported.strip().partition(" as ")
            if attribute:
                where[alias.strip() or attribute] = (module, attribute)
    return where


def lazy_exports(
    package: str,
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and `__all__` of `package`, from its declared imports.

    Args:
        package: the package's `__name__`; call this from the package's
            `__init__`, after its `if TYPE_CHECKING:` block of imports.

    Returns:
        The two functions to bind as the package's `__getattr__` and `__dir__`,
        and its `__all__` (the declared names, sorted). A name read once is
        stored in the package, so later reads are plain attribute reads.
    """
    path = sys.modules[package].__file__
    if path is None:
        raise ImportError(f"{package} needs its source file to list its exports")
    with open(path, encoding="utf-8") as init:
        where = declared_exports(init.read())

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = where[name]
        value = getattr(importlib.import_module(module), attribute)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
