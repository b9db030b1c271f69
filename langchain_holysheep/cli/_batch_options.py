"""The options of one `holysheep batch` job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["BatchOptions"]


@dataclass(frozen=True)
class BatchOptions:
    """What `holysheep batch` was asked to do (its options, as given)."""

    input_file: Path
    output: Path
    prompt: str
    system: str | None
    chain: str | None
    model: str
    fallbacks: list[str]
    concurrency: int
    budget: str | None
    max_tokens: int
    id_field: str
    limit: int | None
    retry_errors: bool
    ledger: str | None
    simulate: bool | None
