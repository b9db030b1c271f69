"""Tags LangChain and LangGraph add to runs by themselves.

A chat model called inside a chain carries tags that only say where it sits in
the chain (`seq:step:2` for the second step of `prompt | model`, `map:key:...`
inside a `RunnableParallel`, `graph:step:3` in a LangGraph super-step, ...).
They are not the user's tags: the ledger does not store them, and reports by
tag leave them out (ledgers written before they were filtered still hold them).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from fnmatch import fnmatchcase

__all__ = [
    "INTERNAL_TAG_PATTERNS",
    "is_internal_tag",
    "not_internal_sql",
    "user_tags",
]

INTERNAL_TAG_PATTERNS: tuple[str, ...] = (
    "seq:step:[0-9]*",  # RunnableSequence steps (langchain-core, LangGraph)
    "map:key:*",  # RunnableParallel branches
    "graph:step:[0-9]*",  # LangGraph super-steps
    "retry:attempt:[0-9]*",  # RunnableRetry attempts after the first
    "condition:[0-9]*",  # RunnableBranch conditions
    "branch:[0-9]*",  # RunnableBranch branches
    "branch:default",
    "langsmith:hidden",  # LangGraph's internal runs
)
"""Glob patterns of the tags LangChain adds automatically. The same patterns
work in Python (`fnmatch`) and in SQLite (`GLOB`): only `*` and `[0-9]`."""


def is_internal_tag(tag: str) -> bool:
    """Whether `tag` is one LangChain added by itself (e.g. `seq:step:2`)."""
    return any(fnmatchcase(tag, pattern) for pattern in INTERNAL_TAG_PATTERNS)


@functools.lru_cache(maxsize=4096)
def _user_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t for t in tags if not is_internal_tag(t))


def user_tags(tags: Iterable[object]) -> tuple[str, ...]:
    """`tags` as strings, in order, without the ones LangChain added itself."""
    as_text = tuple(str(t) for t in tags)
    return _user_tags(as_text)


def not_internal_sql(column: str) -> str:
    """An SQL condition: `column` is not an internal tag (patterns are literals)."""
    return " AND ".join(f"{column} NOT GLOB '{p}'" for p in INTERNAL_TAG_PATTERNS)
