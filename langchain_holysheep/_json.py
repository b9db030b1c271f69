"""JSON for the wire: orjson when present (LangChain brings it), else the stdlib."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads"]


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


loads: Callable[[bytes | str], Any] = json.loads
_fast_dumps: Callable[[Any], bytes] | None = None
try:  # orjson comes with LangChain (through langsmith); the standard library serves
    import orjson

    loads = orjson.loads
    _fast_dumps = orjson.dumps
except ImportError:  # pragma: no cover - exercised where orjson is absent
    pass


def dumps(obj: Any) -> bytes:
    """Serialise a request body (compact JSON, UTF-8)."""
    if _fast_dumps is not None:
        try:
            return _fast_dumps(obj)
        except TypeError:  # e.g. keys that are not strings: the slow path knows them
            pass
    return _std_dumps(obj)
