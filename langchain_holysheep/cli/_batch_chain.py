"""The runnable a batch item goes through: prompt | ChatHolySheep, or --chain."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from langchain_holysheep.cli._batch_options import BatchOptions
from langchain_holysheep.cli._results import Item
from langchain_holysheep.cli._target import Target
from langchain_holysheep.cli.app import UsageError

__all__ = ["build_runnable", "check_fields"]


def _load_chain(spec: str, model: Any) -> Any:
    """`module:attr` -> a Runnable (`attr` may be a factory taking the model)."""
    from langchain_core.runnables import Runnable

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"--chain must look like module:attribute, got {spec!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")  # modules in the current directory
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot load --chain {spec}: {exc}") from None
    if not isinstance(obj, Runnable) and callable(obj):
        obj = obj(model)
    if not isinstance(obj, Runnable):
        raise UsageError(f"--chain {spec} is not a Runnable (nor returns one)")
    return obj


def build_runnable(target: Target, opts: BatchOptions) -> Any:
    """The runnable each item goes through: prompt | ChatHolySheep, or --chain."""
    from langchain_core.prompts import ChatPromptTemplate

    from langchain_holysheep import ChatHolySheep

    kwargs: dict[str, Any] = {"model": opts.model, "max_tokens": opts.max_tokens}
    if opts.fallbacks:
        kwargs["fallbacks"] = opts.fallbacks
    llm = ChatHolySheep(**kwargs, **target.model_kwargs())
    if opts.chain:
        return _load_chain(opts.chain, llm)
    messages = [("system", opts.system)] if opts.system else []
    return ChatPromptTemplate.from_messages([*messages, ("human", opts.prompt)]) | llm


def check_fields(runnable: Any, items: list[Item]) -> None:
    """Raise `UsageError` for the first item without a field the prompt uses."""
    wanted = set(getattr(runnable, "input_schema", None).model_fields)  # type: ignore[union-attr]
    for item in items:
        missing = wanted - item.data.keys()
        if missing:
            raise UsageError(
                f"input line {item.line} (id {item.id!r}) has no field "
                f"{', '.join(sorted(missing))} used by the prompt"
            )
