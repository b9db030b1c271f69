"""The simulator's model directory: ids, owners, context windows, reasoning flags.

Defaults come from the package catalogue (`langchain_holysheep.catalogue`); a
small built-in list is used if the catalogue cannot be loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ModelDirectory", "SimModel"]

_FALLBACK = (
    ("gpt-4.1", "openai", 128_000),
    ("gpt-4o", "openai", 128_000),
    ("gpt-4o-mini", "openai", 128_000),
    ("claude-sonnet-4.5", "anthropic", 200_000),
    ("gemini-2.5-flash", "google", 1_048_576),
    ("gemini-2.0-flash", "google", 1_048_576),
    ("deepseek-v3.2", "deepseek", 128_000),
    ("deepseek-reasoner", "deepseek", 128_000),
    ("moonshot-v1-8k", "moonshot", 8_192),
    ("step-2-chat", "stepfun", 16_000),
)
_REASONING = re.compile(
    r"reasoner|-r1\b|(?:^|[-/])o[134](?:$|-)|thinking", re.IGNORECASE
)
DEFAULT_CONTEXT_WINDOW = 128_000


@dataclass(frozen=True, slots=True)
class SimModel:
    """One model the simulator serves."""

    id: str
    owned_by: str = "holysheep"
    context_window: int = DEFAULT_CONTEXT_WINDOW
    reasoning: bool = False


def is_reasoning_id(model: str) -> bool:
    """Whether a model id looks like a reasoning model.

    Matches `reasoner`, `-r1`, `o1`/`o3`/`o4` and `thinking`.
    """
    return bool(_REASONING.search(model))


def _from_catalogue() -> list[SimModel] | None:
    try:
        from langchain_holysheep.catalogue import default_catalogue

        catalogue = default_catalogue()
        out = []
        for mid in catalogue.model_ids():
            info = catalogue.get(mid)
            out.append(
                SimModel(
                    mid,
                    owned_by=getattr(info, "provider", "") or "holysheep",
                    context_window=getattr(info, "context_window", None)
                    or DEFAULT_CONTEXT_WINDOW,
                    reasoning=bool(getattr(info, "reasoning", False))
                    or is_reasoning_id(mid),
                )
            )
        return out
    except (ImportError, AttributeError, OSError, ValueError, KeyError, TypeError):
        return None


class ModelDirectory:
    """The models a simulator serves.

    Args:
        models: model ids to serve (default: the package catalogue).
        accept_any_model: serve any id, known or not (no 404).
    """

    def __init__(
        self, models: Iterable[str] | None = None, *, accept_any_model: bool = False
    ) -> None:
        catalogue = _from_catalogue()
        known = {
            m.id: m
            for m in catalogue
            or [SimModel(i, o, w, is_reasoning_id(i)) for i, o, w in _FALLBACK]
        }
        if models is None:
            self._models = known
        else:
            ids = [models] if isinstance(models, str) else list(models)
            self._models = {
                mid: known.get(mid) or SimModel(mid, reasoning=is_reasoning_id(mid))
                for mid in ids
            }
        self.accept_any_model = accept_any_model
        self.from_catalogue = catalogue is not None

    def ids(self) -> list[str]:
        """The listed model ids, in order."""
        return list(self._models)

    def listed(self) -> list[tuple[str, str]]:
        """`(id, owned_by)` pairs for `GET /v1/models`."""
        return [(m.id, m.owned_by) for m in self._models.values()]

    def __contains__(self, model: object) -> bool:
        return model in self._models

    def get(self, model: str) -> SimModel:
        """The entry for `model` (a default entry for unlisted ids)."""
        found = self._models.get(model)
        return (
            found
            if found is not None
            else SimModel(model, reasoning=is_reasoning_id(model))
        )
