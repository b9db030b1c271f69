"""Command-line options shared by several commands: declared once, each help its own."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Annotated, Any

import typer

from langchain_holysheep.cli.app import UsageError

__all__ = [
    "Format",
    "FormatOption",
    "ledger_option",
    "parse_budget",
    "simulate_option",
]


class Format(str, Enum):
    """Output formats of listing commands."""

    table = "table"
    csv = "csv"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
"""`--format/-f`: table (default), csv or json."""


def simulate_option(help: str) -> Any:
    """`--sim/--live`: the embedded simulator or the real gateway (default: by key)."""
    return typer.Option("--sim/--live", help=help, show_default=False)


def ledger_option(help: str, *, show_default: bool = True) -> Any:
    """`--ledger PATH`: the spend ledger a command records into or reads."""
    return typer.Option("--ledger", help=help, show_default=show_default)


def parse_budget(text: str) -> Decimal:
    """A `--budget` amount in USD (finite, above zero); `UsageError` otherwise."""
    try:
        cap = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"--budget must be an amount in USD, got {text!r}") from None
    if not cap.is_finite() or cap <= 0:
        raise UsageError(f"--budget must be > 0, got {text!r}")
    return cap
